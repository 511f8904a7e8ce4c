//! The webhook event made from a decision on `transactions_result`.
//!
//! Body (Standard Webhooks layout: `type`, `timestamp`, `data`):
//! ```json
//! {"type":"transaction.approved","timestamp":"2026-06-01T10:00:00.5Z",
//!  "data":{"id":"…","account_id":"shop-1","status":"approved","error_message":"",
//!          "amount_cents":1050,"amount":"10.50","card_brand":"visa",
//!          "card_masked":"411111******1111","created_at":"…","processed_at":"…"}}
//! ```
//! The decision and the masked card only: the results topic carries no card
//! data, and a `card_masked` that shows more than ten digits is dropped.

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use transaction_model::{AccountId, CardBrand, ResultMessage, Status};

pub const EVENT_APPROVED: &str = "transaction.approved";
pub const EVENT_REJECTED: &str = "transaction.rejected";
/// Every event type an endpoint may subscribe to.
pub const EVENT_TYPES: [&str; 2] = [EVENT_APPROVED, EVENT_REJECTED];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("the result has no valid account_id")]
    NoMerchant,
}

/// One event, ready to record for each of the merchant's endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `webhook-id`: derived from the transaction id, so a result read
    /// twice is the same event.
    pub id: String,
    pub event_type: &'static str,
    pub account: AccountId,
    pub transaction_id: String,
    pub payload: String,
    pub decided_at: OffsetDateTime,
}

pub fn event_type(status: Status) -> &'static str {
    match status {
        Status::Approved => EVENT_APPROVED,
        Status::Rejected => EVENT_REJECTED,
    }
}

/// `evt_` + 32 hex digits of SHA-256 over the transaction id.
pub fn event_id(transaction_id: &str) -> String {
    let digest = Sha256::new().chain_update(b"transaction-decision:").chain_update(transaction_id).finalize();
    format!("evt_{}", &hex::encode(digest)[..32])
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    timestamp: OffsetDateTime,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    id: &'a str,
    account_id: &'a str,
    status: Status,
    error_message: &'a str,
    amount_cents: Option<i64>,
    amount: Option<&'a str>,
    card_brand: Option<CardBrand>,
    card_masked: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    processed_at: OffsetDateTime,
}

/// Masked as the processor masks (at most 6 + 4 digits shown), or nothing.
fn safe_mask(masked: &str) -> Option<&str> {
    let digits = masked.bytes().filter(u8::is_ascii_digit).count();
    let only_digits_and_stars = masked.bytes().all(|b| b.is_ascii_digit() || b == b'*');
    (digits <= 10 && only_digits_and_stars).then_some(masked)
}

pub fn event_of(result: &ResultMessage) -> Result<Event, EventError> {
    let account =
        result.account_id.as_deref().and_then(|a| AccountId::try_from(a).ok()).ok_or(EventError::NoMerchant)?;
    let kind = event_type(result.status);
    let body = Body {
        kind,
        timestamp: result.processed_at,
        data: Data {
            id: &result.id,
            account_id: account.as_str(),
            status: result.status,
            error_message: &result.error_message,
            amount_cents: result.amount_cents,
            amount: result.amount.as_deref(),
            card_brand: result.card_brand,
            card_masked: result.card_masked.as_ref().and_then(|m| safe_mask(m.as_str())),
            created_at: result.created_at,
            processed_at: result.processed_at,
        },
    };
    // Strings, numbers and times only: serialising cannot fail.
    let payload = serde_json::to_string(&body).unwrap_or_default();
    Ok(Event {
        id: event_id(&result.id),
        event_type: kind,
        account,
        transaction_id: result.id.clone(),
        payload,
        decided_at: result.processed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use transaction_model::MaskedCard;

    fn result(masked: &str) -> ResultMessage {
        ResultMessage {
            id: "tx-1".into(),
            status: Status::Rejected,
            error_message: "invalid credit card cvv".into(),
            account_id: Some("shop-1".into()),
            amount_cents: Some(1050),
            amount: Some("10.50".into()),
            card_brand: Some(CardBrand::Visa),
            card_masked: Some(MaskedCard::from_stored(masked.into())),
            created_at: datetime!(2026-06-01 10:00 UTC),
            processed_at: datetime!(2026-06-01 10:00:01 UTC),
        }
    }

    #[test]
    fn payload_holds_the_decision_and_the_masked_card() {
        let e = event_of(&result("411111******1111")).unwrap();
        assert_eq!(e.event_type, EVENT_REJECTED);
        assert_eq!(e.id, event_id("tx-1"));
        let v: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(v["type"], "transaction.rejected");
        assert_eq!(v["data"]["card_masked"], "411111******1111");
        assert_eq!(v["data"]["error_message"], "invalid credit card cvv");
        assert_eq!(v["data"]["amount_cents"], 1050);
        let keys: Vec<_> = v["data"].as_object().unwrap().keys().cloned().collect();
        assert!(!keys.iter().any(|k| k.contains("cvv") || k == "credit_card_number"), "{keys:?}");
    }

    #[test]
    fn an_unmasked_number_never_reaches_the_payload() {
        let e = event_of(&result("4111111111111111")).unwrap();
        assert!(!e.payload.contains("4111111111111111"), "{}", e.payload);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(event_id("a"), event_id("a"));
        assert_ne!(event_id("a"), event_id("b"));
        assert_eq!(event_id("a").len(), 36);
    }

    #[test]
    fn a_result_without_merchant_makes_no_event() {
        let mut r = result("411111******1111");
        r.account_id = None;
        assert_eq!(event_of(&r), Err(EventError::NoMerchant));
    }
}
