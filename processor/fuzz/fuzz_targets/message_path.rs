//! decode → card fields opened (plaintext allowed) → rules → row → result message, and the dead-letter redaction,
//! over any bytes a producer can put on `transactions`.
//!
//! Crashes on: any panic on the path; a decision a store cannot hold or the
//! result format cannot write; a result that does not read back as itself;
//! a `created_at` outside the window around receipt; a dead letter (payload
//! or reason) that still holds a run of 12 or more digits, a CVV-like field,
//! or more than the size bound.

#![no_main]

use std::sync::OnceLock;

use card_envelope::{KeyPurpose, KeySource, SharedKeyring};
use libfuzzer_sys::fuzz_target;
use processor::card_hash::CardHasher;
use processor::created_at::{MAX_AGE, MAX_AHEAD};
use processor::decode::decode;
use processor::redact::{redact_payload, MAX_PAYLOAD_BYTES};
use processor::rules;
use processor::unseal::CardReader;
use serde_json::Value;
use time::macros::datetime;
use time::OffsetDateTime;
use transaction_model::ResultMessage;
use transaction_store::row::check_storable;

const RECEIVED_AT: OffsetDateTime = datetime!(2026-06-15 12:00:00 UTC);

/// A run of 12 or more ASCII digits, single spaces or dashes between them.
fn has_card_run(bytes: &[u8]) -> bool {
    let mut digits = 0;
    let mut last_separator = false;
    for &b in bytes {
        match b {
            b'0'..=b'9' => {
                digits += 1;
                last_separator = false;
                if digits >= 12 {
                    return true;
                }
            }
            b' ' | b'-' if digits > 0 && !last_separator => last_separator = true,
            _ => {
                digits = 0;
                last_separator = false;
            }
        }
    }
    false
}

/// A CVV-like field whose value is still there.
fn has_cvv_key(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, v)| {
            let k = k.to_ascii_lowercase();
            let cvv_like = ["cvv", "cvc", "csc", "cid", "security_code", "securitycode", "card_code"]
                .iter()
                .any(|c| k.contains(c));
            // Redacted from the bytes, a CVV-like name may stay, its value not.
            (cvv_like && v.as_str() != Some("[redacted]")) || has_cvv_key(v)
        }),
        Value::Array(items) => items.iter().any(has_cvv_key),
        _ => false,
    }
}

fn cards() -> &'static CardReader {
    static CARDS: OnceLock<CardReader> = OnceLock::new();
    CARDS.get_or_init(|| {
        let ring = |purpose| SharedKeyring::load(KeySource::development(purpose)).expect("development keyring");
        CardReader::new(ring(KeyPurpose::Card), ring(KeyPurpose::Cvv), true)
    })
}

fuzz_target!(|data: &[u8]| {
    let hasher = CardHasher::new(b"fuzz-card-hash-key-0123456789").expect("static key");
    match decode(Some(data)).and_then(|(id, raw)| Ok((id, cards().read(&raw)?, raw))) {
        Ok((id, opened, raw)) => {
            let (t, _) = rules::decide(id, &opened.apply(&raw), RECEIVED_AT, &hasher, opened.cvv_destroyed);
            if let Err(e) = check_storable(&t) {
                panic!("a decision no store can hold: {e}");
            }
            assert!(t.created_at >= RECEIVED_AT - MAX_AGE && t.created_at <= RECEIVED_AT + MAX_AHEAD);
            let result = t.to_result_message();
            let json = result.to_json().expect("every decision serialises");
            let back: ResultMessage = serde_json::from_slice(&json).expect("a result reads back");
            assert_eq!(back, result);
            let masked = result.card_masked.as_ref().map_or("", |m| m.as_str());
            assert!(!has_card_run(masked.as_bytes()), "card number in a result");
        }
        Err(reason) => assert!(!has_card_run(reason.as_str().as_bytes()), "card number in a reason"),
    }
    let dead = redact_payload(data);
    assert!(dead.len() <= MAX_PAYLOAD_BYTES);
    assert!(!has_card_run(&dead), "card number in a dead letter");
    if let Ok(v) = serde_json::from_slice::<Value>(&dead) {
        assert!(!has_cvv_key(&v), "CVV-like field in a dead letter");
    }
});
