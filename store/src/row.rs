//! What a transactions row may hold, checked before any statement runs, so
//! that a value no store can keep is refused the same way on SQLite and
//! MySQL (a permanent error naming the row), never by a panic or a
//! driver-specific failure halfway through a batch.

use transaction_model::ProcessedTransaction;

use crate::timestamp::storable_utc;
use crate::StoreError;

/// Column widths of `transactions` (characters), as in the migrations.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 255;
const MAX_CARD_MASKED_CHARS: usize = 19;
const MAX_CARD_HASH_CHARS: usize = 64;
const MAX_CARD_HASH_KEY_ID_CHARS: usize = 32;

/// Ok when every column of `t` fits both stores.
pub fn check_storable(t: &ProcessedTransaction) -> Result<(), StoreError> {
    let refuse = |reason: &str| StoreError::Unstorable { id: t.id.to_string(), reason: reason.to_owned() };
    if storable_utc(t.created_at).is_none() {
        return Err(refuse("created_at is outside the years 1000-9999 (UTC)"));
    }
    if storable_utc(t.processed_at).is_none() {
        return Err(refuse("processed_at is outside the years 1000-9999 (UTC)"));
    }
    if t.error_message.chars().count() > MAX_ERROR_MESSAGE_CHARS {
        return Err(refuse("error_message is too long"));
    }
    if t.card_masked.as_ref().is_some_and(|m| m.as_str().chars().count() > MAX_CARD_MASKED_CHARS) {
        return Err(refuse("card_masked is too long"));
    }
    if t.card_hash.as_ref().is_some_and(|h| h.chars().count() > MAX_CARD_HASH_CHARS) {
        return Err(refuse("card_hash is too long"));
    }
    if t.card_hash_key_id.as_ref().is_some_and(|k| k.chars().count() > MAX_CARD_HASH_KEY_ID_CHARS) {
        return Err(refuse("card_hash_key_id is too long"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use transaction_model::{Status, TransactionId};

    use super::*;

    fn row() -> ProcessedTransaction {
        ProcessedTransaction {
            id: TransactionId::try_from("t1").unwrap(),
            account_id: None,
            amount: None,
            status: Status::Rejected,
            error_message: "invalid amount".into(),
            card_brand: None,
            card_masked: None,
            card_hash: None,
            card_hash_key_id: None,
            created_at: datetime!(2026-01-01 00:00 UTC),
            processed_at: datetime!(2026-01-01 00:00 UTC),
        }
    }

    #[test]
    fn refuses_what_a_store_cannot_hold() {
        assert!(check_storable(&row()).is_ok());
        let mut late = row();
        late.created_at = datetime!(9999-12-31 23:59:59 -23:59);
        assert!(matches!(check_storable(&late), Err(StoreError::Unstorable { .. })));
        let mut early = row();
        early.processed_at = datetime!(0000-01-01 00:00:00 +00:01);
        assert!(check_storable(&early).is_err());
        let mut long = row();
        long.error_message = "x".repeat(256);
        assert!(check_storable(&long).is_err());
    }
}
