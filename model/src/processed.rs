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
}
