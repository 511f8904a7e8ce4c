//! Turning a Kafka payload into something the rules can judge, or a reason
//! to send it to the dead-letter topic.

use serde_json::Value;
use transaction_model::{MaskedCard, RawTransaction, TransactionId};

/// Longest reason put in a dead-letter header.
const MAX_REASON_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterReason(String);

impl DeadLetterReason {
    pub fn new(text: impl Into<String>) -> Self {
        let mut text = text.into();
        if text.len() > MAX_REASON_LEN {
            let mut cut = MAX_REASON_LEN;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        DeadLetterReason(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message whose id can be read, with its id checked.
pub fn decode(payload: Option<&[u8]>) -> Result<(TransactionId, RawTransaction<'_>), DeadLetterReason> {
    let payload = payload.filter(|p| !p.is_empty()).ok_or_else(|| DeadLetterReason::new("empty payload"))?;
    let raw = RawTransaction::from_slice(payload)
        .map_err(|e| DeadLetterReason::new(format!("unreadable transaction: {e}")))?;
    let id = TransactionId::try_from(raw.id.as_ref()).map_err(|e| DeadLetterReason::new(format!("invalid id: {e}")))?;
    Ok((id, raw))
}

/// The payload to keep in the dead-letter topic. A JSON object loses its
/// CVV and all but first 6 / last 4 of its card number; anything else is
/// kept as it came, since it cannot be read to find card data in it.
pub fn redact_for_dead_letter(payload: &[u8]) -> Vec<u8> {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(payload) else {
        return payload.to_vec();
    };
    if let Some(cvv) = object.get_mut("credit_card_cvv") {
        *cvv = Value::String("[redacted]".into());
    }
    if let Some(number) = object.get_mut("credit_card_number") {
        let masked = number.as_str().and_then(MaskedCard::from_untrusted);
        *number = Value::String(masked.map(|m| m.as_str().to_owned()).unwrap_or_else(|| "[redacted]".into()));
    }
    serde_json::to_vec(&Value::Object(object)).unwrap_or_else(|_| payload.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_messages_get_a_reason() {
        assert_eq!(decode(None).unwrap_err().as_str(), "empty payload");
        assert_eq!(decode(Some(b"")).unwrap_err().as_str(), "empty payload");
        assert!(decode(Some(b"{oops")).unwrap_err().as_str().starts_with("unreadable transaction"));
        assert!(decode(Some(br#"{"amount":1}"#)).unwrap_err().as_str().contains("missing field `id`"));
        assert!(decode(Some(br#"{"id":""}"#)).unwrap_err().as_str().starts_with("invalid id"));
        assert!(decode(Some(&[0xff, 0xfe])).is_err());
        let (id, _) = decode(Some(br#"{"id":"abc"}"#)).unwrap();
        assert_eq!(id.as_str(), "abc");
    }

    #[test]
    fn reasons_are_bounded() {
        let long = format!(r#"{{"id":"{}"}}"#, "é".repeat(500));
        assert!(decode(Some(long.as_bytes())).unwrap_err().as_str().len() <= MAX_REASON_LEN);
    }

    #[test]
    fn dead_letters_lose_card_data() {
        let out =
            redact_for_dead_letter(br#"{"credit_card_number":"4111111111111111","credit_card_cvv":123,"amount":5}"#);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("411111******1111") && !text.contains("4111111111111111"), "{text}");
        assert!(!text.contains("123"), "{text}");
        assert_eq!(redact_for_dead_letter(b"not json"), b"not json");
    }
}
