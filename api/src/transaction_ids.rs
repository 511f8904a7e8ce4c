//! Where a new transaction's id and time come from.
//!
//! Without an Idempotency-Key: a fresh UUID v7 (time-ordered) and now.
//! Under a key: both derived from the key's first use, so every attempt
//! under the key sends the very same transactions. A retry after an unclear
//! failure (no delivery report in time, a crashed replica) then re-sends a
//! transaction the broker may already hold, and the processor, which keeps
//! the first decision per id, stores and decides it once.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use transaction_model::{AccountId, TransactionId};
use transaction_store::truncate_to_micros;

/// An attempt under an Idempotency-Key: the key and when it was first used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyedAttempt {
    pub key: String,
    pub since: OffsetDateTime,
}

/// Ids and `created_at` for the transactions of one request.
pub struct TransactionIds<'a> {
    account: &'a AccountId,
    attempt: Option<&'a KeyedAttempt>,
    created_at: OffsetDateTime,
}

impl<'a> TransactionIds<'a> {
    pub fn new(account: &'a AccountId, attempt: Option<&'a KeyedAttempt>) -> Self {
        let created_at = attempt.map_or_else(|| truncate_to_micros(OffsetDateTime::now_utc()), |a| a.since);
        TransactionIds { account, attempt, created_at }
    }

    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// The id of the request's `index`-th transaction.
    pub fn id(&self, index: usize) -> TransactionId {
        let uuid = match self.attempt {
            None => uuid::Uuid::now_v7(),
            Some(attempt) => derived(self.account, attempt, index),
        };
        // A hyphenated UUID is 36 printable characters: always a valid id.
        TransactionId::try_from(uuid.to_string()).unwrap_or_else(|_| unreachable!("a UUID is a valid transaction id"))
    }
}

/// UUID v8 from SHA-256 of (account, key, first use, index), each field
/// length-prefixed so that no two inputs share an encoding.
fn derived(account: &AccountId, attempt: &KeyedAttempt, index: usize) -> uuid::Uuid {
    let mut hash = Sha256::new();
    for field in [account.as_str().as_bytes(), attempt.key.as_bytes()] {
        hash.update((field.len() as u64).to_be_bytes());
        hash.update(field);
    }
    hash.update(attempt.since.unix_timestamp_nanos().to_be_bytes());
    hash.update((index as u64).to_be_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(key: &str, second: i64) -> KeyedAttempt {
        KeyedAttempt { key: key.into(), since: OffsetDateTime::from_unix_timestamp(1_800_000_000 + second).unwrap() }
    }

    #[test]
    fn an_attempt_under_a_key_always_gives_the_same_ids_and_time() {
        let account = AccountId::try_from("m1").unwrap();
        let a = attempt("k", 0);
        let (first, retry) = (TransactionIds::new(&account, Some(&a)), TransactionIds::new(&account, Some(&a)));
        assert_eq!(first.id(0), retry.id(0));
        assert_eq!(first.id(7), retry.id(7));
        assert_eq!(first.created_at(), a.since);
        assert_ne!(first.id(0), first.id(1), "each item of a batch has its own id");
    }

    #[test]
    fn ids_differ_by_account_key_and_first_use() {
        let (m1, m2) = (AccountId::try_from("m1").unwrap(), AccountId::try_from("m2").unwrap());
        let (a, b, later) = (attempt("k", 0), attempt("k2", 0), attempt("k", 1));
        let id = |m, at| TransactionIds::new(m, Some(at)).id(0);
        assert_ne!(id(&m1, &a), id(&m2, &a), "keys are per merchant");
        assert_ne!(id(&m1, &a), id(&m1, &b));
        assert_ne!(id(&m1, &a), id(&m1, &later), "a key reused after it expired is a new transaction");
    }

    #[test]
    fn without_a_key_every_id_is_new() {
        let account = AccountId::try_from("m1").unwrap();
        let ids = TransactionIds::new(&account, None);
        assert_ne!(ids.id(0), ids.id(0));
        assert_eq!(ids.id(0).as_str().len(), 36);
    }
}
