use proptest::prelude::*;
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;
use transaction_model::{CardBrand, RawTransaction, RejectionReason, Status, TransactionId};

use super::evaluate;
use crate::card_hash::CardHasher;

const AT: OffsetDateTime = datetime!(2026-06-15 12:00:00 UTC);

fn hasher() -> CardHasher {
    CardHasher::new(b"test-key-0123456789").unwrap()
}

fn valid() -> Value {
    json!({
        "id": "t1",
        "account_id": "merchant-1",
        "credit_card_number": "4111111111111111",
        "credit_card_name": "Ada Lovelace",
        "credit_card_expiration_month": 12,
        "credit_card_expiration_year": 2028,
        "credit_card_cvv": 123,
        "amount": 10.5,
        "created_at": "2026-06-15T12:00:00Z"
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut v = valid();
    v[field] = value;
    v
}

fn without(field: &str) -> Value {
    let mut v = valid();
    v.as_object_mut().unwrap().remove(field);
    v
}

fn decide(v: &Value) -> (Status, String) {
    let bytes = serde_json::to_vec(v).unwrap();
    let raw = RawTransaction::from_slice(&bytes).unwrap();
    let t = evaluate(TransactionId::try_from(raw.id.as_ref()).unwrap(), &raw, AT, &hasher());
    (t.status, t.error_message)
}

fn decide_at(v: &Value, at: OffsetDateTime) -> (Status, String) {
    let bytes = serde_json::to_vec(v).unwrap();
    let raw = RawTransaction::from_slice(&bytes).unwrap();
    let t = evaluate(TransactionId::try_from(raw.id.as_ref()).unwrap(), &raw, at, &hasher());
    (t.status, t.error_message)
}

fn rejected(v: &Value) -> RejectionReason {
    let (status, message) = decide(v);
    assert_eq!(status, Status::Rejected, "{v}");
    RejectionReason::from_message(&message).unwrap_or_else(|| panic!("unknown message {message:?}"))
}

fn approved(v: &Value) {
    assert_eq!(decide(v), (Status::Approved, String::new()), "{v}");
}

#[test]
fn a_valid_transaction_is_approved_with_an_empty_message() {
    approved(&valid());
}

#[test]
fn amount_boundaries_in_cents() {
    use RejectionReason::*;
    assert_eq!(rejected(&with("amount", json!(0.99))), BelowMinimum);
    approved(&with("amount", json!(1.00)));
    approved(&with("amount", json!("1")));
    approved(&with("amount", json!(1000.00)));
    approved(&with("amount", json!("1000.00")));
    assert_eq!(rejected(&with("amount", json!(1000.01))), OverLimit);
    assert_eq!(rejected(&with("amount", json!("1000.01"))), OverLimit);
    assert_eq!(rejected(&with("amount", json!(-5))), BelowMinimum);
    assert_eq!(rejected(&with("amount", json!(0))), BelowMinimum);
    assert_eq!(rejected(&with("amount", json!("10.555"))), InvalidAmount);
    assert_eq!(rejected(&with("amount", json!("abc"))), InvalidAmount);
    assert_eq!(rejected(&with("amount", json!(true))), InvalidAmount);
    assert_eq!(rejected(&with("amount", json!(null))), InvalidAmount);
    assert_eq!(rejected(&without("amount")), InvalidAmount);
    assert_eq!(rejected(&with("amount", json!("1e400"))), InvalidAmount);
}

#[test]
fn amount_is_exact_not_float() {
    // 0.1 + 0.2 style inputs must come out as exact cents.
    let bytes = br#"{"id":"t","credit_card_number":"4111111111111111","credit_card_name":"A","credit_card_expiration_month":12,"credit_card_expiration_year":2030,"credit_card_cvv":"123","amount":999.99}"#;
    let raw = RawTransaction::from_slice(bytes).unwrap();
    let t = evaluate(TransactionId::try_from("t").unwrap(), &raw, AT, &hasher());
    assert_eq!(t.amount.unwrap().cents(), 99_999);
    assert_eq!(t.status, Status::Approved);
}

#[test]
fn card_number_rules() {
    use RejectionReason::*;
    approved(&with("credit_card_number", json!("4111 1111 1111 1111")));
    assert_eq!(rejected(&with("credit_card_number", json!("4111111111111112"))), InvalidCardNumber);
    assert_eq!(rejected(&with("credit_card_number", json!("4111-1111-1111-1111"))), InvalidCardNumber);
    assert_eq!(rejected(&with("credit_card_number", json!(4111111111111111u64))), InvalidCardNumber);
    assert_eq!(rejected(&with("credit_card_number", json!(""))), InvalidCardNumber);
    assert_eq!(rejected(&without("credit_card_number")), InvalidCardNumber);
}

#[test]
fn card_rule_comes_first() {
    let mut v = with("credit_card_number", json!("123"));
    v["amount"] = json!(5000);
    v["credit_card_cvv"] = json!("x");
    assert_eq!(rejected(&v), RejectionReason::InvalidCardNumber);
}

#[test]
fn month_and_year_edges() {
    use RejectionReason::*;
    for m in [0, 13, -1] {
        assert_eq!(rejected(&with("credit_card_expiration_month", json!(m))), InvalidExpirationMonth, "{m}");
    }
    assert_eq!(rejected(&with("credit_card_expiration_month", json!("twelve"))), InvalidExpirationMonth);
    assert_eq!(rejected(&without("credit_card_expiration_month")), InvalidExpirationMonth);
    approved(&with("credit_card_expiration_month", json!(1)));
    approved(&with("credit_card_expiration_month", json!("12")));

    // Transaction in June 2026.
    let card = |m: i64, y: i64| {
        let mut v = valid();
        v["credit_card_expiration_month"] = json!(m);
        v["credit_card_expiration_year"] = json!(y);
        v
    };
    approved(&card(6, 2026));
    approved(&card(12, 2026));
    assert_eq!(rejected(&card(5, 2026)), InvalidExpirationMonth);
    assert_eq!(rejected(&card(12, 2025)), InvalidExpirationYear);
    approved(&card(1, 2046));
    assert_eq!(rejected(&card(1, 2047)), InvalidExpirationYear);
    assert_eq!(rejected(&card(13, 2025)), InvalidExpirationMonth, "month is checked before year");
    assert_eq!(rejected(&without("credit_card_expiration_year")), InvalidExpirationYear);
    assert_eq!(rejected(&with("credit_card_expiration_year", json!(26))), InvalidExpirationYear);
}

#[test]
fn rules_run_at_created_at_inside_the_window() {
    // Created in the last hour of May (inside the window), decided in June:
    // a card that expired in May is still valid at its created_at.
    let june = datetime!(2026-06-01 00:30:00 UTC);
    let mut v = valid();
    v["created_at"] = json!("2026-05-31T23:50:00Z");
    v["credit_card_expiration_year"] = json!(2026);
    v["credit_card_expiration_month"] = json!(5);
    let (status, _) = decide_at(&v, june);
    assert_eq!(status, Status::Approved);
    // Without created_at the time of processing counts.
    let mut v = without("created_at");
    v["credit_card_expiration_year"] = json!(2026);
    v["credit_card_expiration_month"] = json!(5);
    assert_eq!(decide_at(&v, june).1, RejectionReason::InvalidExpirationMonth.message());
}

#[test]
fn a_backdated_created_at_cannot_approve_an_expired_card() {
    // Valid in 2019, expired now: a created_at outside the window is ignored.
    let mut v = valid();
    v["created_at"] = json!("2019-03-01T10:00:00Z");
    v["credit_card_expiration_year"] = json!(2020);
    v["credit_card_expiration_month"] = json!(1);
    assert_eq!(rejected(&v), RejectionReason::InvalidExpirationYear);
    let bytes = serde_json::to_vec(&v).unwrap();
    let raw = RawTransaction::from_slice(&bytes).unwrap();
    let t = evaluate(TransactionId::try_from("t").unwrap(), &raw, AT, &hasher());
    assert_eq!(t.created_at, AT, "stored as decided: at the time of receipt");
}

#[test]
fn calendar_edges_in_created_at_are_ignored() {
    for edge in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+00:01", "0000-01-01T00:00:00Z"] {
        let v = with("created_at", json!(edge));
        let bytes = serde_json::to_vec(&v).unwrap();
        let raw = RawTransaction::from_slice(&bytes).unwrap();
        let t = evaluate(TransactionId::try_from("t").unwrap(), &raw, AT, &hasher());
        assert_eq!(t.created_at, AT, "{edge}");
        assert!(t.to_result_message().to_json().is_ok());
        assert!(transaction_store::row::check_storable(&t).is_ok());
    }
}

#[test]
fn cvv_rules() {
    use RejectionReason::*;
    approved(&with("credit_card_cvv", json!("123")));
    approved(&with("credit_card_cvv", json!("0123")));
    approved(&with("credit_card_cvv", json!(1234)));
    for bad in [json!("12"), json!("12345"), json!("12a"), json!(12), json!(-123), json!(null), json!(1.5)] {
        assert_eq!(rejected(&with("credit_card_cvv", bad.clone())), InvalidCvv, "{bad}");
    }
    assert_eq!(rejected(&without("credit_card_cvv")), InvalidCvv);
}

#[test]
fn name_rules() {
    use RejectionReason::*;
    approved(&with("credit_card_name", json!("x".repeat(100))));
    approved(&with("credit_card_name", json!("é".repeat(100))));
    assert_eq!(rejected(&with("credit_card_name", json!("x".repeat(101)))), InvalidName);
    assert_eq!(rejected(&with("credit_card_name", json!("   "))), InvalidName);
    assert_eq!(rejected(&with("credit_card_name", json!(""))), InvalidName);
    assert_eq!(rejected(&with("credit_card_name", json!(42))), InvalidName);
    assert_eq!(rejected(&without("credit_card_name")), InvalidName);
}

#[test]
fn stores_only_masked_card_and_keyed_hash() {
    let bytes = serde_json::to_vec(&valid()).unwrap();
    let raw = RawTransaction::from_slice(&bytes).unwrap();
    let t = evaluate(TransactionId::try_from("t1").unwrap(), &raw, AT, &hasher());
    assert_eq!(t.card_masked.as_ref().unwrap().as_str(), "411111******1111");
    assert_eq!(t.card_brand, Some(CardBrand::Visa));
    assert_eq!(t.card_hash.as_deref().unwrap().len(), 64);
    let all = format!("{t:?}");
    assert!(!all.contains("4111111111111111") && !all.contains("123,"), "{all}");
    // An invalid but digit-shaped number is masked too, never kept whole.
    let bytes = serde_json::to_vec(&with("credit_card_number", json!("4111111111111112"))).unwrap();
    let raw = RawTransaction::from_slice(&bytes).unwrap();
    let t = evaluate(TransactionId::try_from("t2").unwrap(), &raw, AT, &hasher());
    assert_eq!(t.card_masked.as_ref().unwrap().as_str(), "411111******1112");
    assert_eq!(t.card_brand, None);
}

proptest! {
    #[test]
    fn any_amount_in_cents_decides_by_the_bounds(cents in -1_000_000i64..1_000_000) {
        let text = format!("{}.{:02}", cents / 100, (cents % 100).abs());
        let text = if cents < 0 && cents > -100 { format!("-{text}") } else { text };
        let (status, message) = decide(&with("amount", json!(text)));
        let expected = if cents > 100_000 {
            RejectionReason::OverLimit.message()
        } else if cents < 100 {
            RejectionReason::BelowMinimum.message()
        } else {
            ""
        };
        prop_assert_eq!(message.as_str(), expected);
        prop_assert_eq!(status == Status::Approved, expected.is_empty());
    }

    #[test]
    fn arbitrary_field_values_never_panic(field in prop::sample::select(vec![
        "credit_card_number", "credit_card_name", "credit_card_expiration_month",
        "credit_card_expiration_year", "credit_card_cvv", "amount", "created_at", "account_id",
    ]), text in "\\PC{0,30}", n in any::<i64>(), f in any::<f64>()) {
        for v in [json!(text), json!(n), json!(f), json!([text]), json!({"a": n})] {
            let _ = decide(&with(field, v));
        }
    }
}
