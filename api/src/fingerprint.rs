//! The fingerprint of a request body for Idempotency-Key matching.
//!
//! It is computed over the parsed transaction (so `10.5` and `"10.50"` are
//! the same body) in a canonical JSON encoding. Bodies hold card numbers and
//! card numbers, and a plain SHA-256 of them could be brute-forced from the
//! database (card numbers have little entropy), so it is HMAC-SHA256 under a
//! key derived for this purpose alone from the operator's key (never the
//! key that hashes merchant secrets itself). The CVV is left out entirely,
//! invalid items included: nothing stored may depend on it.

/// What the fingerprint key is derived for.
pub const FINGERPRINT_PURPOSE: &str = "idempotency-fingerprint-v2";

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
    Valid(&'a str, &'a str, u32, i32, i64),
    Invalid(String),
}

pub fn fingerprint(hasher: &SecretHasher, kind: BodyKind, items: &[Item<'_>]) -> String {
    let items: Vec<_> = items
        .iter()
        .map(|item| match item {
            Item::Valid(t) => {
                Canonical::Valid(&t.card_number, &t.card_name, t.expiration_month, t.expiration_year, t.amount.cents())
            }
            Item::Invalid(raw) => Canonical::Invalid(without_cvv(raw)),
        })
        .collect();
    let kind = match kind {
        BodyKind::Single => "single",
        BodyKind::Batch => "batch",
    };
    // Strings, integers and tuples only: serialisation cannot fail; if it
    // did, an empty canonical form would still be keyed by `kind`.
    let canonical = serde_json::to_string(&("idempotency-v2", kind, items)).unwrap_or_default();
    hasher.hash(&canonical)
}

/// An invalid item's JSON text without its `credit_card_cvv` (an object's
/// keys re-serialised in order), or as it came when it is not an object.
fn without_cvv(raw: &str) -> String {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw) {
        Ok(mut object) => {
            object.remove("credit_card_cvv");
            serde_json::to_string(&object).unwrap_or_default()
        }
        Err(_) => raw.to_owned(),
    }
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
        assert_ne!(b, fingerprint(&h, BodyKind::Batch, &[Item::Valid(&t100), Item::Invalid(r#"{"amount":1}"#)]));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn the_cvv_changes_nothing() {
        let h = SecretHasher::new(b"0123456789abcdef").unwrap();
        let (t, mut other_cvv) = (tx(100), tx(100));
        other_cvv.cvv = "999".into();
        assert_eq!(
            fingerprint(&h, BodyKind::Single, &[Item::Valid(&t)]),
            fingerprint(&h, BodyKind::Single, &[Item::Valid(&other_cvv)])
        );
        let invalid = |cvv: &str| format!(r#"{{"amount":"x","credit_card_cvv":"{cvv}"}}"#);
        assert_eq!(
            fingerprint(&h, BodyKind::Batch, &[Item::Invalid(&invalid("123"))]),
            fingerprint(&h, BodyKind::Batch, &[Item::Invalid(&invalid("456"))])
        );
    }
}
