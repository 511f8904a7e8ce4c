//! Bad input of every kind gets a 4xx with the error envelope, never a 5xx,
//! and nothing is produced.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

struct Case {
    name: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    param: Option<&'static str>,
}

fn with(field: &str, value: Value) -> Vec<u8> {
    let mut body = approvable();
    body[field] = value;
    serde_json::to_vec(&body).unwrap()
}

fn without(field: &str) -> Vec<u8> {
    let mut body = approvable();
    body.as_object_mut().unwrap().remove(field);
    serde_json::to_vec(&body).unwrap()
}

fn cases() -> Vec<Case> {
    let json = "application/json";
    let c = |name, body: Vec<u8>, status, code, param| Case { name, content_type: json, body, status, code, param };
    vec![
        c("malformed json", b"{\"amount\": ".to_vec(), 400, "malformed_json", None),
        c("empty body", Vec::new(), 400, "malformed_json", None),
        c("trailing garbage", b"{} x".to_vec(), 400, "malformed_json", None),
        c("non-utf8", b"{\"credit_card_name\": \"\xff\xfe\"}".to_vec(), 400, "invalid_utf8", None),
        c("array body", b"[1,2]".to_vec(), 422, "invalid_body", None),
        c("unknown field", with("extra", json!(1)), 422, "unknown_field", Some("extra")),
        c("account_id in body", with("account_id", json!("x")), 422, "unknown_field", Some("account_id")),
        c("missing amount", without("amount"), 422, "missing_field", Some("amount")),
        c("missing card", without("credit_card_number"), 422, "missing_field", Some("credit_card_number")),
        c("null cvv", with("credit_card_cvv", Value::Null), 422, "missing_field", Some("credit_card_cvv")),
        c("card as number", with("credit_card_number", json!(4111111111111111u64)), 422, "invalid_card_number_format", Some("credit_card_number")),
        c("card with letters", with("credit_card_number", json!("4111abcd11111111")), 422, "invalid_card_number_format", Some("credit_card_number")),
        c("name as object", with("credit_card_name", json!({"a": 1})), 422, "invalid_card_name", Some("credit_card_name")),
        c("month as string", with("credit_card_expiration_month", json!("12")), 422, "invalid_expiration_month", Some("credit_card_expiration_month")),
        c("month 13", with("credit_card_expiration_month", json!(13)), 422, "invalid_expiration_month", Some("credit_card_expiration_month")),
        c("huge year", with("credit_card_expiration_year", json!(1e300)), 422, "invalid_expiration_year", Some("credit_card_expiration_year")),
        c("cvv bool", with("credit_card_cvv", json!(true)), 422, "invalid_cvv_format", Some("credit_card_cvv")),
        c("negative amount", with("amount", json!(-10)), 422, "amount_not_positive", Some("amount")),
        c("zero amount", with("amount", json!("0.00")), 422, "amount_not_positive", Some("amount")),
        c("three decimals", with("amount", json!(10.123)), 422, "amount_too_precise", Some("amount")),
        c("three decimals as text", with("amount", json!("10.123")), 422, "amount_too_precise", Some("amount")),
        c("huge amount", b"{\"credit_card_number\":\"4111111111111111\",\"credit_card_name\":\"A\",\"credit_card_expiration_month\":1,\"credit_card_expiration_year\":2030,\"credit_card_cvv\":\"123\",\"amount\":123456789012345678901234567890}".to_vec(), 422, "amount_out_of_range", Some("amount")),
        c("amount exponent overflow", with("amount", json!(1e300)), 422, "amount_out_of_range", Some("amount")),
        c("amount text", with("amount", json!("ten dollars")), 422, "invalid_amount", Some("amount")),
        c("amount array", with("amount", json!([1])), 422, "invalid_amount", Some("amount")),
        Case { name: "text/plain", content_type: "text/plain", body: serde_json::to_vec(&approvable()).unwrap(), status: 415, code: "unsupported_media_type", param: None },
        c("too large", format!("{{\"credit_card_name\":\"{}\"}}", "x".repeat(70_000)).into_bytes(), 413, "payload_too_large", None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_a_4xx_envelope_and_nothing_is_produced() {
    let (mut config, dir) = sqlite_config().await;
    config.max_body_bytes = 64 * 1024;
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("merchant-1").await;
    for case in cases() {
        for path in ["/v1/transactions", "/v1/transactions/batch"] {
            let body = if path.ends_with("batch") && case.status == 422 {
                // Inside a batch, item errors are reported per item.
                let item: Value = serde_json::from_slice(&case.body).unwrap();
                let r = app.post(&m, path, &json!({ "transactions": [item] })).await;
                if !item.is_object() {
                    assert_eq!(error_code(r, 422).await.0, "invalid_batch_item", "{}", case.name);
                    continue;
                }
                assert_eq!(r.status(), 200, "{}", case.name);
                let b: Value = r.json().await.unwrap();
                assert_eq!(b["results"][0]["error"]["code"], case.code, "{} in a batch", case.name);
                continue;
            } else {
                case.body.clone()
            };
            let r = app
                .client
                .post(app.url(path))
                .header("authorization", m.basic())
                .header("content-type", case.content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), case.status, "{} on {path}", case.name);
            let (code, param) = error_code(r, case.status).await;
            if path == "/v1/transactions" {
                assert_eq!(code, case.code, "{}", case.name);
                assert_eq!(param.as_deref(), case.param, "{}", case.name);
            }
        }
    }
    // Batch-level shape errors.
    let r = app.post(&m, "/v1/transactions/batch", &json!({ "items": [] })).await;
    assert_eq!(error_code(r, 422).await.0, "unknown_field");
    let r = app.post(&m, "/v1/transactions/batch", &json!({ "transactions": {} })).await;
    assert_eq!(error_code(r, 422).await.0, "invalid_body");

    // Not found, wrong method, bad ids, bad idempotency keys: still envelopes.
    assert_eq!(error_code(app.get(&m, "/v1/nothing").await, 404).await.0, "resource_not_found");
    let r = app.client.delete(app.url("/v1/transactions")).header("authorization", m.basic()).send().await.unwrap();
    assert_eq!(error_code(r, 405).await.0, "method_not_allowed");
    assert_eq!(
        error_code(app.get(&m, &format!("/v1/transactions/{}", "x".repeat(300))).await, 404).await.0,
        "transaction_not_found"
    );
    assert_eq!(error_code(app.get(&m, "/v1/transactions/%20").await, 404).await.0, "transaction_not_found");
    let r = app
        .client
        .post(app.url("/v1/transactions"))
        .header("authorization", m.basic())
        .header("idempotency-key", "x".repeat(256))
        .json(&approvable())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, 400).await.0, "invalid_idempotency_key");

    let produced = consume(&app.topic, 1, Duration::from_secs(3)).await;
    assert!(produced.is_empty(), "bad input never reaches the broker");
    let list: Value = app.get(&m, "/v1/transactions").await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    app.stop().await;
}
