//! Opens the sealed card fields of a `transactions` message, in memory only,
//! and tells a sealed message from a plaintext one (a legacy producer).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use card_envelope::cvv::open_cvv;
use card_envelope::{is_sealed, open, Binding, Field, Keyring, OpenError, SharedKeyring};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use transaction_model::message::json_string;
use transaction_model::RawTransaction;

use crate::decode::DeadLetterReason;

/// At most one warning about plaintext card data per this interval.
const PLAINTEXT_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Reads the card fields of messages for the rules: opens sealed ones, and
/// lets plaintext ones through or refuses them, as configured.
pub struct CardReader {
    keyring: SharedKeyring,
    cvv_keyring: SharedKeyring,
    allow_plaintext: bool,
    last_warning: Mutex<Option<Instant>>,
}

impl CardReader {
    pub fn new(keyring: SharedKeyring, cvv_keyring: SharedKeyring, allow_plaintext: bool) -> Self {
        CardReader { keyring, cvv_keyring, allow_plaintext, last_warning: Mutex::new(None) }
    }

    /// The opened fields, or why the message goes to the dead-letter topic:
    /// a sealed field that does not open (unknown key, moved, damaged), or
    /// card data in clear where that is refused. A CVV whose key is gone is
    /// not a dead letter: the transaction is decided (rejected).
    pub fn read(&self, raw: &RawTransaction<'_>) -> Result<Opened, DeadLetterReason> {
        let rings = Rings { card: &self.keyring.get(), cvv: &self.cvv_keyring.get() };
        let opened = unseal(rings, raw, OffsetDateTime::now_utc()).map_err(|e| DeadLetterReason::new(e.to_string()))?;
        if opened.plaintext {
            self.warn_plaintext();
            if !self.allow_plaintext {
                return Err(DeadLetterReason::new("card data in clear refused (ALLOW_PLAINTEXT_CARDS=false)"));
            }
        }
        Ok(opened)
    }

    fn warn_plaintext(&self) {
        let Ok(mut last) = self.last_warning.lock() else { return };
        if last.is_none_or(|at| at.elapsed() >= PLAINTEXT_WARNING_INTERVAL) {
            *last = Some(Instant::now());
            tracing::warn!(
                allowed = self.allow_plaintext,
                "a producer writes card data in clear to the transactions topic (counted in processor_plaintext_card_messages_total)"
            );
        }
    }
}

/// The opened fields, owned; a field that was not sealed stays as it came.
#[derive(Default)]
pub struct Opened {
    fields: [Option<Box<RawValue>>; 5],
    /// A card field came in clear.
    pub plaintext: bool,
    /// The CVV was sealed under a CVV key that has been destroyed (or is
    /// past its lifetime): the authorization window has passed.
    pub cvv_destroyed: bool,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("plaintext", &self.plaintext)
            .field("cvv_destroyed", &self.cvv_destroyed)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("sealed {field} unreadable: {error}")]
pub struct UnsealError {
    pub field: &'static str,
    pub error: OpenError,
}

/// The two keyrings a message's fields open with.
#[derive(Clone, Copy)]
pub struct Rings<'a> {
    /// Card number, name, expiry.
    pub card: &'a Keyring,
    /// The CVV's short-lived keys.
    pub cvv: &'a Keyring,
}

/// Opens every sealed card field of `raw`: the CVV with the CVV keyring
/// (its key's age judged at `now`), the others with the card keyring.
pub fn unseal(rings: Rings<'_>, raw: &RawTransaction<'_>, now: OffsetDateTime) -> Result<Opened, UnsealError> {
    let account = json_string(raw.account_id);
    let binding = Binding { transaction_id: &raw.id, account_id: account.as_deref().unwrap_or("") };
    let mut opened = Opened::default();
    for (slot, field) in Field::ALL.into_iter().enumerate() {
        let Some(value) = card_field(raw, field) else { continue };
        match json_string(Some(value)) {
            Some(text) if is_sealed(&text) => {
                let plain = match field {
                    Field::Cvv => open_cvv(rings.cvv, binding, &text, now),
                    _ => open(rings.card, binding, field, &text),
                };
                let plain = match plain {
                    Ok(plain) => plain,
                    // Destroyed by design, not damaged: the CVV is simply
                    // no longer there to check.
                    Err(OpenError::UnknownKey(_) | OpenError::Expired(_)) if field == Field::Cvv => {
                        opened.cvv_destroyed = true;
                        continue;
                    }
                    Err(error) => return Err(UnsealError { field: field.name(), error }),
                };
                // The sealed plaintext is the field's JSON text; anything
                // else is treated as a field the rules cannot read.
                let json = std::str::from_utf8(&plain).ok().and_then(|t| RawValue::from_string(t.to_owned()).ok());
                opened.fields[slot] = Some(json.unwrap_or_else(unreadable));
            }
            _ => opened.plaintext = true,
        }
    }
    Ok(opened)
}

impl Opened {
    /// `raw` with its sealed fields replaced by their opened values.
    pub fn apply<'b>(&'b self, raw: &RawTransaction<'b>) -> RawTransaction<'b> {
        let pick = |slot: usize, original: Option<&'b RawValue>| self.fields[slot].as_deref().or(original);
        RawTransaction {
            id: raw.id.clone(),
            account_id: raw.account_id,
            credit_card_number: pick(0, raw.credit_card_number),
            credit_card_name: pick(1, raw.credit_card_name),
            credit_card_expiration_month: pick(2, raw.credit_card_expiration_month),
            credit_card_expiration_year: pick(3, raw.credit_card_expiration_year),
            credit_card_cvv: pick(4, raw.credit_card_cvv),
            amount: raw.amount,
            created_at: raw.created_at,
        }
    }
}

fn card_field<'a>(raw: &RawTransaction<'a>, field: Field) -> Option<&'a RawValue> {
    match field {
        Field::CardNumber => raw.credit_card_number,
        Field::CardName => raw.credit_card_name,
        Field::ExpirationMonth => raw.credit_card_expiration_month,
        Field::ExpirationYear => raw.credit_card_expiration_year,
        Field::Cvv => raw.credit_card_cvv,
    }
}

/// `null`: a field every rule rejects.
fn unreadable() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    use card_envelope::{seal, DataKey, KeyId};
    use transaction_model::message::{json_integer, json_number_text};

    static CARD: LazyLock<Keyring> =
        LazyLock::new(|| Keyring::single(KeyId::try_from("k1").unwrap(), DataKey::from_bytes([5; 32])));
    static CVV: LazyLock<Keyring> =
        LazyLock::new(|| Keyring::single(KeyId::try_from("c1").unwrap(), DataKey::from_bytes([6; 32])));

    fn rings() -> Rings<'static> {
        Rings { card: &CARD, cvv: &CVV }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// Sealed as the API does: the CVV under the CVV keyring.
    fn sealed(field: Field, json: &str, tx: &str, account: &str) -> String {
        let ring = if field == Field::Cvv { &*CVV } else { &*CARD };
        let value = seal(ring, Binding { transaction_id: tx, account_id: account }, field, json.as_bytes());
        serde_json::to_string(&value).unwrap()
    }

    #[test]
    fn sealed_fields_open_to_what_the_rules_read() {
        let payload = format!(
            r#"{{"id":"t1","account_id":"a1","credit_card_number":{},"credit_card_name":{},"credit_card_expiration_month":{},"credit_card_expiration_year":{},"credit_card_cvv":{},"amount":10.5}}"#,
            sealed(Field::CardNumber, r#""4111111111111111""#, "t1", "a1"),
            sealed(Field::CardName, r#""Ada""#, "t1", "a1"),
            sealed(Field::ExpirationMonth, "12", "t1", "a1"),
            sealed(Field::ExpirationYear, "2030", "t1", "a1"),
            sealed(Field::Cvv, r#""123""#, "t1", "a1"),
        );
        assert!(!payload.contains("4111"));
        let raw = RawTransaction::from_slice(payload.as_bytes()).unwrap();
        let opened = unseal(rings(), &raw, now()).unwrap();
        assert!(!opened.plaintext);
        let view = opened.apply(&raw);
        assert_eq!(json_string(view.credit_card_number).as_deref(), Some("4111111111111111"));
        assert_eq!(json_string(view.credit_card_name).as_deref(), Some("Ada"));
        assert_eq!(json_integer(view.credit_card_expiration_month), Some(12));
        assert_eq!(json_integer(view.credit_card_expiration_year), Some(2030));
        assert_eq!(json_number_text(view.credit_card_cvv).as_deref(), Some("123"));
        assert_eq!(json_number_text(view.amount).as_deref(), Some("10.5"));
    }

    #[test]
    fn plaintext_is_told_apart_and_kept() {
        let raw = RawTransaction::from_slice(br#"{"id":"t1","credit_card_number":"4111111111111111"}"#).unwrap();
        let opened = unseal(rings(), &raw, now()).unwrap();
        assert!(opened.plaintext);
        assert_eq!(json_string(opened.apply(&raw).credit_card_number).as_deref(), Some("4111111111111111"));
        let none = RawTransaction::from_slice(br#"{"id":"t1","amount":5}"#).unwrap();
        assert!(!unseal(rings(), &none, now()).unwrap().plaintext, "no card field: nothing in clear");
    }

    #[test]
    fn a_field_moved_from_another_message_or_account_fails() {
        let moved =
            format!(r#"{{"id":"t2","account_id":"a1","credit_card_cvv":{}}}"#, sealed(Field::Cvv, "123", "t1", "a1"));
        let raw = RawTransaction::from_slice(moved.as_bytes()).unwrap();
        let err = unseal(rings(), &raw, now()).unwrap_err();
        assert_eq!((err.field, err.error), ("credit_card_cvv", OpenError::Forged));
        let other_account =
            format!(r#"{{"id":"t1","account_id":"a2","credit_card_cvv":{}}}"#, sealed(Field::Cvv, "123", "t1", "a1"));
        let raw = RawTransaction::from_slice(other_account.as_bytes()).unwrap();
        assert!(unseal(rings(), &raw, now()).is_err());
    }

    #[test]
    fn a_sealed_value_that_is_not_json_is_unreadable_not_a_crash() {
        let payload =
            format!(r#"{{"id":"t1","credit_card_number":{}}}"#, sealed(Field::CardNumber, "not json", "t1", ""));
        let raw = RawTransaction::from_slice(payload.as_bytes()).unwrap();
        let opened = unseal(rings(), &raw, now()).unwrap();
        assert_eq!(opened.apply(&raw).credit_card_number.map(RawValue::get), Some("null"));
    }

    #[test]
    fn a_cvv_under_a_destroyed_key_is_gone_while_the_card_number_still_opens() {
        use card_envelope::cvv::rotate;
        use transaction_model::TransactionId;

        use crate::card_hash::CardHasher;
        use crate::rules::decide as decide_opened;

        // The CVV keyring as the rotation keeps it: a key made now seals.
        let made = now();
        let mut cvv_text = rotate("", made).unwrap();
        let cvv_ring = Keyring::parse(&cvv_text).unwrap();
        let b = Binding { transaction_id: "t1", account_id: "a1" };
        let field =
            |f: Field, ring: &Keyring, json: &str| serde_json::to_string(&seal(ring, b, f, json.as_bytes())).unwrap();
        let payload = format!(
            r#"{{"id":"t1","account_id":"a1","credit_card_number":{},"credit_card_name":{},"credit_card_expiration_month":{},"credit_card_expiration_year":{},"credit_card_cvv":{},"amount":10.5}}"#,
            field(Field::CardNumber, &CARD, r#""4111111111111111""#),
            field(Field::CardName, &CARD, r#""Ada""#),
            field(Field::ExpirationMonth, &CARD, "12"),
            field(Field::ExpirationYear, &CARD, &(made.year() + 1).to_string()),
            field(Field::Cvv, &cvv_ring, r#""123""#),
        );
        let raw = RawTransaction::from_slice(payload.as_bytes()).unwrap();
        let hasher = CardHasher::new(b"0123456789abcdef").unwrap();
        let decide = |opened: &Opened| {
            decide_opened(
                TransactionId::try_from("t1").unwrap(),
                &opened.apply(&raw),
                made,
                &hasher,
                opened.cvv_destroyed,
            )
            .0
        };

        // Within the window: the CVV opens and the transaction is approved.
        let opened = unseal(Rings { card: &CARD, cvv: &cvv_ring }, &raw, made).unwrap();
        assert_eq!(json_number_text(opened.apply(&raw).credit_card_cvv).as_deref(), Some("123"));
        assert_eq!(decide(&opened).error_message, "");

        // Four rotations later (an hour), the key is destroyed: the CVV can
        // no longer be had, the card number still opens, the transaction
        // is rejected with a reason that says why.
        for m in [15, 30, 45, 60] {
            cvv_text = rotate(&cvv_text, made + time::Duration::minutes(m)).unwrap();
        }
        let later = made + time::Duration::minutes(60);
        let rotated = Keyring::parse(&cvv_text).unwrap();
        let opened = unseal(Rings { card: &CARD, cvv: &rotated }, &raw, later).unwrap();
        assert!(opened.cvv_destroyed);
        let view = opened.apply(&raw);
        assert_eq!(json_string(view.credit_card_number).as_deref(), Some("4111111111111111"));
        let cvv_value = json_string(view.credit_card_cvv).unwrap_or_default();
        assert!(cvv_value.starts_with("enc:v1:cvv-") && !cvv_value.contains("123"), "{cvv_value}");
        let cvv_text = cvv_value.into_owned();
        assert!(open_cvv(&rotated, b, &cvv_text, later).is_err());
        let decided = decide(&opened);
        assert_eq!(decided.error_message, "credit card cvv expired: the authorization window has passed");
        assert_eq!(decided.card_masked.map(|m| m.as_str().to_owned()).as_deref(), Some("411111******1111"));
    }
}
