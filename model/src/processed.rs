use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::{AccountId, Amount, CardBrand, MaskedCard, ResultMessage, Status, TransactionId};

/// A decided transaction, as stored and published. Holds no card number and
/// no CVV: only the brand, the masked number and a keyed hash of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedTransaction {
    pub id: TransactionId,
    pub account_id: Option<AccountId>,
    pub amount: Option<Amount>,
    pub status: Status,
    pub error_message: String,
    pub card_brand: Option<CardBrand>,
    pub card_masked: Option<MaskedCard>,
    /// Hex HMAC-SHA256 of the card digits under the operator's key.
    pub card_hash: Option<String>,
    /// The id of the hash key `card_hash` was made with (`CARD_HASH_KEY_ID`),
    /// so the key can rotate; `None` for rows older than the column.
    pub card_hash_key_id: Option<String>,
    /// The instant the rules were evaluated at.
    pub created_at: OffsetDateTime,
    pub processed_at: OffsetDateTime,
}

impl ProcessedTransaction {
    pub fn to_result_message(&self) -> ResultMessage {
        ResultMessage {
            id: self.id.as_str().to_owned(),
            status: self.status,
            error_message: self.error_message.clone(),
            account_id: self.account_id.as_ref().map(|a| a.as_str().to_owned()),
            amount_cents: self.amount.map(Amount::cents),
            amount: self.amount.map(|a| a.to_string()),
            card_brand: self.card_brand,
            card_masked: self.card_masked.clone(),
            created_at: self.created_at,
            processed_at: self.processed_at,
        }
    }

    /// The result message's JSON, written to the end of `out` straight from
    /// the decision: the same bytes as `to_result_message().to_json()`
    /// without copying a field into an owned message first (the processor
    /// publishes every decision). On error `out` may hold a partial
    /// message; the caller cuts it back.
    pub fn write_result_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(
            out,
            &ResultRef {
                id: self.id.as_str(),
                status: self.status,
                error_message: &self.error_message,
                account_id: self.account_id.as_ref().map(AccountId::as_str),
                amount_cents: self.amount.map(Amount::cents),
                amount: self.amount,
                card_brand: self.card_brand,
                card_masked: self.card_masked.as_ref(),
                created_at: self.created_at,
                processed_at: self.processed_at,
            },
        )
    }
}

/// [`ResultMessage`] borrowed: field for field the same names, order and
/// formats (a test compares the bytes).
#[derive(Serialize)]
struct ResultRef<'a> {
    id: &'a str,
    status: Status,
    error_message: &'a str,
    account_id: Option<&'a str>,
    amount_cents: Option<i64>,
    #[serde(serialize_with = "dollars")]
    amount: Option<Amount>,
    card_brand: Option<CardBrand>,
    card_masked: Option<&'a MaskedCard>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    processed_at: OffsetDateTime,
}

/// `"10.50"` written through `Display`, with no intermediate `String`.
fn dollars<S: Serializer>(amount: &Option<Amount>, s: S) -> Result<S::Ok, S::Error> {
    match amount {
        Some(a) => s.collect_str(a),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::CardNumber;

    fn decided() -> ProcessedTransaction {
        let card = CardNumber::try_from("4111111111111111").unwrap();
        ProcessedTransaction {
            id: TransactionId::try_from("t-\"quoted\"-é").unwrap(),
            account_id: Some(AccountId::try_from("merchant-1").unwrap()),
            amount: Some(Amount::from_cents(-5)),
            status: Status::Rejected,
            error_message: "the amount must be greater than 1".into(),
            card_brand: Some(card.brand()),
            card_masked: Some(card.masked()),
            card_hash: Some("ab".repeat(32)),
            card_hash_key_id: Some("h1".into()),
            created_at: datetime!(2026-06-01 10:00:00.123456 UTC),
            processed_at: datetime!(2026-06-01 10:00:01 +02:00),
        }
    }

    #[test]
    fn borrowed_result_json_is_the_result_message_json() {
        let full = decided();
        let bare = ProcessedTransaction {
            account_id: None,
            amount: None,
            status: Status::Approved,
            error_message: String::new(),
            card_brand: None,
            card_masked: None,
            card_hash: None,
            card_hash_key_id: None,
            ..decided()
        };
        for t in [full, bare] {
            let mut out = b"prefix".to_vec();
            t.write_result_json(&mut out).unwrap();
            assert_eq!(&out[..6], b"prefix", "appends");
            let expected = t.to_result_message().to_json().unwrap();
            assert_eq!(String::from_utf8_lossy(&out[6..]), String::from_utf8_lossy(&expected));
        }
    }

    #[test]
    fn an_unwritable_time_is_an_error_not_a_panic() {
        let t = ProcessedTransaction { created_at: datetime!(2026-06-01 10:00:00 +00:00:30), ..decided() };
        assert!(t.write_result_json(&mut Vec::new()).is_err());
    }
}
