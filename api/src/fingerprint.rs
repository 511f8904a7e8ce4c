//! The fingerprint of a request body for Idempotency-Key matching.
//!
//! It is computed over the parsed transaction (so `10.5` and `"10.50"` are
//! the same body) in a canonical JSON encoding. Bodies hold card numbers and
//! CVVs, and a plain SHA-256 of them could be brute-forced from the database
//! (card numbers have little entropy), so it is HMAC-SHA256 under the
//! operator's key instead.

use transaction_model::SecretHasher;

use crate::new_transaction::NewTransaction;

/// Which endpoint: a key reused across endpoints is a different body.
#[derive(Clone, Copy, Debug)]
pub enum BodyKind {
    Single,
    Batch,
}

/// A batch item: parsed, or kept as its raw JSON text when invalid.
#[derive(Clone, Copy, Debug)]
pub enum Item<'a> {
    Valid(&'a NewTransaction),
    Invalid(&'a str),
}

#[derive(serde::Serialize)]
enum Canonical<'a> {
    Valid(&'a str, &'a str, u32, i32, &'a str, i64),
    Invalid(&'a str),
}

pub fn fingerprint(hasher: &SecretHasher, kind: BodyKind, items: &[Item<'_>]) -> String {
    let items: Vec<_> = items
        .iter()
        .map(|item| match item {
            Item::Valid(t) => Canonical::Valid(
                &t.card_number,
                &t.card_name,
                t.expiration_month,
                t.expiration_year,
                &t.cvv,
                t.amount.cents(),
            ),
            Item::Invalid(raw) => Canonical::Invalid(raw),
        })
        .collect();
    let kind = match kind {
        BodyKind::Single => "single",
        BodyKind::Batch => "batch",
    };
    // Strings, integers and tuples only: serialisation cannot fail; if it
    // did, an empty canonical form would still be keyed by `kind`.
    let canonical = serde_json::to_string(&("idempotency-v1", kind, items)).unwrap_or_default();
    hasher.hash(&canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use transaction_model::Amount;

    fn tx(cents: i64) -> NewTransaction {
        NewTransaction {
            card_number: "4111111111111111".into(),
            card_name: "Ada".into(),
            expiration_month: 12,
            expiration_year: 2030,
            cvv: "123".into(),
            amount: Amount::from_cents(cents),
        }
    }

    #[test]
    fn same_transactions_same_fingerprint() {
        let h = SecretHasher::new(b"0123456789abcdef").unwrap();
        let (t100, t101) = (tx(100), tx(101));
        let a = fingerprint(&h, BodyKind::Single, &[Item::Valid(&t100)]);
        assert_eq!(a, fingerprint(&h, BodyKind::Single, &[Item::Valid(&tx(100))]));
        assert_ne!(a, fingerprint(&h, BodyKind::Single, &[Item::Valid(&t101)]));
        assert_ne!(a, fingerprint(&h, BodyKind::Batch, &[Item::Valid(&t100)]));
        let other = SecretHasher::new(b"fedcba9876543210").unwrap();
        assert_ne!(a, fingerprint(&other, BodyKind::Single, &[Item::Valid(&t100)]));
        let b = fingerprint(&h, BodyKind::Batch, &[Item::Valid(&t100), Item::Invalid("{}")]);
        assert_ne!(b, fingerprint(&h, BodyKind::Batch, &[Item::Valid(&t100), Item::Invalid("{ }")]));
        assert_eq!(a.len(), 64);
    }
}
