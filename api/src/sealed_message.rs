//! The `transactions` message as the API produces it: the same fields as
//! [`TransactionMessage`], with every card field sealed (card-envelope) so
//! the broker never holds card data in clear.

use card_envelope::{seal, Binding, Field, Keyring};
use serde::Serialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use transaction_model::TransactionMessage;

#[derive(Serialize)]
struct Sealed<'a> {
    id: &'a str,
    account_id: &'a str,
    credit_card_number: String,
    credit_card_name: String,
    credit_card_expiration_month: String,
    credit_card_expiration_year: String,
    credit_card_cvv: String,
    amount: Box<RawValue>,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    created_at: Option<OffsetDateTime>,
}

/// The JSON payload of `message` with its card fields sealed under the
/// current key of the card keyring, and the CVV under the current key of
/// the CVV's short-lived keyring (destroyed after the authorization
/// window). Each sealed plaintext is the field's own JSON text, so the
/// processor reads it exactly as it would the clear field.
pub fn sealed_payload(
    ring: &Keyring,
    cvv_ring: &Keyring,
    message: &TransactionMessage,
) -> Result<Vec<u8>, serde_json::Error> {
    let binding = Binding { transaction_id: &message.id, account_id: &message.account_id };
    let field = |field: Field, json: String| {
        let ring = if field == Field::Cvv { cvv_ring } else { ring };
        seal(ring, binding, field, json.as_bytes())
    };
    let sealed = Sealed {
        id: &message.id,
        account_id: &message.account_id,
        credit_card_number: field(Field::CardNumber, serde_json::to_string(&message.credit_card_number)?),
        credit_card_name: field(Field::CardName, serde_json::to_string(&message.credit_card_name)?),
        credit_card_expiration_month: field(Field::ExpirationMonth, message.credit_card_expiration_month.to_string()),
        credit_card_expiration_year: field(Field::ExpirationYear, message.credit_card_expiration_year.to_string()),
        credit_card_cvv: field(Field::Cvv, serde_json::to_string(&message.credit_card_cvv)?),
        amount: RawValue::from_string(message.amount.to_string())?,
        created_at: message.created_at,
    };
    serde_json::to_vec(&sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use card_envelope::{open, DataKey, KeyId};
    use transaction_model::{Amount, RawTransaction};

    #[test]
    fn every_card_field_is_sealed_and_opens_to_its_json_text() {
        let ring = Keyring::single(KeyId::try_from("k1").unwrap(), DataKey::from_bytes([3; 32]));
        let cvv_ring = Keyring::single(KeyId::try_from("c1").unwrap(), DataKey::from_bytes([4; 32]));
        let message = TransactionMessage {
            id: "tx-9".into(),
            account_id: "acc-9".into(),
            credit_card_number: "4111111111111111".into(),
            credit_card_name: "Ada Lovelace".into(),
            credit_card_expiration_month: 12,
            credit_card_expiration_year: 2030,
            credit_card_cvv: "123".into(),
            amount: Amount::from_cents(1050),
            created_at: None,
        };
        let payload = sealed_payload(&ring, &cvv_ring, &message).unwrap();
        let text = String::from_utf8(payload.clone()).unwrap();
        for clear in ["4111111111111111", "Ada", "123", "2030"] {
            assert!(!text.contains(clear), "{clear} in clear: {text}");
        }
        assert!(text.contains(r#""amount":10.50"#) && text.contains(r#""id":"tx-9""#), "{text}");

        let raw = RawTransaction::from_slice(&payload).unwrap();
        let binding = Binding { transaction_id: "tx-9", account_id: "acc-9" };
        let opened = |field: Field, raw: Option<&RawValue>| {
            let sealed: String = serde_json::from_str(raw.unwrap().get()).unwrap();
            let ring = if field == Field::Cvv { &cvv_ring } else { &ring };
            String::from_utf8(open(ring, binding, field, &sealed).unwrap().to_vec()).unwrap()
        };
        assert_eq!(opened(Field::CardNumber, raw.credit_card_number), r#""4111111111111111""#);
        assert_eq!(opened(Field::CardName, raw.credit_card_name), r#""Ada Lovelace""#);
        assert_eq!(opened(Field::ExpirationMonth, raw.credit_card_expiration_month), "12");
        assert_eq!(opened(Field::ExpirationYear, raw.credit_card_expiration_year), "2030");
        assert_eq!(opened(Field::Cvv, raw.credit_card_cvv), r#""123""#);
        // The CVV names the CVV key and does not open under the card key.
        let cvv: String = serde_json::from_str(raw.credit_card_cvv.unwrap().get()).unwrap();
        assert!(cvv.starts_with("enc:v1:c1:"), "{cvv}");
        assert!(open(&ring, binding, Field::Cvv, &cvv).is_err());
    }
}
