//! Turning a Kafka payload into something the rules can judge, or a reason
//! to send it to the dead-letter topic.

use transaction_model::{RawTransaction, TransactionId};

use crate::redact::redact_text;

/// Longest reason put in a dead-letter header.
const MAX_REASON_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterReason(String);

impl DeadLetterReason {
    /// A reason with every long digit run masked (a parser's error may
    /// quote the value it choked on, such as a card number), bounded.
    pub fn new(text: impl Into<String>) -> Self {
        let masked = redact_text(text.into().as_bytes(), usize::MAX);
        let mut text = String::from_utf8_lossy(&masked).into_owned();
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
    fn reasons_never_quote_a_card_number() {
        let reason = decode(Some(br#"{"id":4111111111111111}"#)).unwrap_err();
        assert!(!reason.as_str().contains("4111111111111111"), "{}", reason.as_str());
    }
}
