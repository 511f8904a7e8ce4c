//! The JSON formats on the `transactions` and `transactions_result` topics.
//!
//! Field names are those of the gateway this product grows out of, so its
//! producers and consumers keep working.

use std::borrow::Cow;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::{Amount, CardBrand, MaskedCard, Status};

/// A message from `transactions`, decoded leniently: only `id` must be a
/// string; every other field is kept as raw JSON so that a missing or
/// ill-typed field becomes a rejection by the rules, not a decode failure.
#[derive(Deserialize)]
pub struct RawTransaction<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub account_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub credit_card_number: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub credit_card_name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub credit_card_expiration_month: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub credit_card_expiration_year: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub credit_card_cvv: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub amount: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub created_at: Option<&'a RawValue>,
}

impl<'a> RawTransaction<'a> {
    pub fn from_slice(payload: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

/// A JSON string field's text, borrowed when it has no escapes.
pub fn json_string<'a>(raw: Option<&'a RawValue>) -> Option<Cow<'a, str>> {
    let text = raw?.get();
    // Not a string: answered without building a parser error, which
    // allocates (every message has numeric fields asked for as strings).
    if !text.starts_with('"') {
        return None;
    }
    if let Ok(s) = serde_json::from_str::<&'a str>(text) {
        return Some(Cow::Borrowed(s));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// A whole number given as a JSON integer or as a string of ASCII digits.
pub fn json_integer(raw: Option<&RawValue>) -> Option<i64> {
    let text = raw?.get();
    if !text.starts_with('"') {
        return serde_json::from_str::<i64>(text).ok();
    }
    let s = json_string(raw)?;
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Text of a field given as a JSON string or as a bare JSON number (`10.5`,
/// `123`), without going through a float.
pub fn json_number_text<'a>(raw: Option<&'a RawValue>) -> Option<Cow<'a, str>> {
    let raw = raw?;
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => json_string(Some(raw)),
        Some(b'-' | b'0'..=b'9') => Some(Cow::Borrowed(text)),
        _ => None,
    }
}

/// A transaction as producers (the API, tests, benchmarks) write it to
/// `transactions`.
#[derive(Clone, Serialize)]
pub struct TransactionMessage {
    pub id: String,
    pub account_id: String,
    pub credit_card_number: String,
    pub credit_card_name: String,
    pub credit_card_expiration_month: u32,
    pub credit_card_expiration_year: i32,
    pub credit_card_cvv: String,
    /// Dollars, written as a JSON number with two decimals (`10.50`).
    #[serde(serialize_with = "amount_as_json_number")]
    pub amount: Amount,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<OffsetDateTime>,
}

fn amount_as_json_number<S: Serializer>(amount: &Amount, s: S) -> Result<S::Ok, S::Error> {
    let raw = RawValue::from_string(amount.to_string()).map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}

/// Kafka header carrying the API's request id through the pipeline.
pub const REQUEST_ID_HEADER: &str = "request_id";

/// What the processor publishes to `transactions_result` for each id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultMessage {
    pub id: String,
    pub status: Status,
    /// Empty when approved.
    pub error_message: String,
    pub account_id: Option<String>,
    pub amount_cents: Option<i64>,
    /// The same amount in dollars with two decimals, for humans.
    pub amount: Option<String>,
    pub card_brand: Option<CardBrand>,
    pub card_masked: Option<MaskedCard>,
    /// The instant the rules were evaluated at.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub processed_at: OffsetDateTime,
}

impl ResultMessage {
    /// The message as published. Fails only for a time the result format
    /// cannot write (RFC 3339 needs a four-digit year and an offset in whole
    /// minutes), which the processor's `created_at` window rules out.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn lenient_decode_keeps_fields_raw() {
        let payload =
            br#"{"id":"t1","amount":"10.5","credit_card_expiration_month":"7","credit_card_cvv":123,"extra":[1,2]}"#;
        let raw = RawTransaction::from_slice(payload).unwrap();
        assert_eq!(raw.id, "t1");
        assert_eq!(json_number_text(raw.amount).as_deref(), Some("10.5"));
        assert_eq!(json_integer(raw.credit_card_expiration_month), Some(7));
        assert_eq!(json_number_text(raw.credit_card_cvv).as_deref(), Some("123"));
        assert!(raw.credit_card_number.is_none());
    }

    #[test]
    fn id_is_required_and_must_be_a_string() {
        assert!(RawTransaction::from_slice(br#"{"amount":1}"#).is_err());
        assert!(RawTransaction::from_slice(br#"{"id":7}"#).is_err());
        assert!(RawTransaction::from_slice(b"not json").is_err());
        assert!(RawTransaction::from_slice(br#"{"id":"a\u00e9"}"#).is_ok());
    }

    #[test]
    fn producer_message_writes_amount_as_exact_number() {
        let msg = TransactionMessage {
            id: "t1".into(),
            account_id: "acc".into(),
            credit_card_number: "4111111111111111".into(),
            credit_card_name: "Ada".into(),
            credit_card_expiration_month: 12,
            credit_card_expiration_year: 2030,
            credit_card_cvv: "123".into(),
            amount: Amount::from_cents(1050),
            created_at: Some(datetime!(2026-01-02 03:04:05 UTC)),
        };
        let json = serde_json::to_string(&msg).unwrap();
        assert!(json.contains(r#""amount":10.50"#), "{json}");
        assert!(json.contains(r#""created_at":"2026-01-02T03:04:05Z""#), "{json}");
        let back = RawTransaction::from_slice(json.as_bytes()).unwrap();
        assert_eq!(json_number_text(back.amount).as_deref(), Some("10.50"));
    }

    #[test]
    fn a_result_outside_rfc3339_is_an_error_not_a_panic() {
        let mut r = ResultMessage {
            id: "t1".into(),
            status: Status::Approved,
            error_message: String::new(),
            account_id: None,
            amount_cents: None,
            amount: None,
            card_brand: None,
            card_masked: None,
            created_at: datetime!(2026-01-02 03:04:05 UTC),
            processed_at: datetime!(2026-01-02 03:04:05 UTC),
        };
        assert!(r.to_json().is_ok());
        // 0000-01-01T00:00:00+00:01 in UTC: the year -1.
        r.created_at = datetime!(-0001-12-31 23:59:00 UTC);
        assert!(r.to_json().is_err());
        r.created_at = datetime!(2026-01-01 00:00:00 +00:00:30);
        assert!(r.to_json().is_err());
    }

    #[test]
    fn non_numeric_json_is_not_number_text() {
        let raw: &RawValue = serde_json::from_str("true").unwrap();
        assert_eq!(json_number_text(Some(raw)), None);
        let raw: &RawValue = serde_json::from_str("[1]").unwrap();
        assert_eq!(json_number_text(Some(raw)), None);
        let raw: &RawValue = serde_json::from_str("1.5").unwrap();
        assert_eq!(json_integer(Some(raw)), None);
    }
}
