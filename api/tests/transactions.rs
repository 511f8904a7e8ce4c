//! Posting, reading and listing transactions against the real broker.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use transaction_model::message::REQUEST_ID_HEADER;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_transaction_is_produced_then_answered_202_and_readable() {
    let app = spawn_sqlite().await;
    let m = app.merchant("merchant-1").await;

    let r = app
        .client
        .post(app.url("/v1/transactions"))
        .header("authorization", m.basic())
        .header("x-request-id", "req-abc-123")
        .json(&approvable())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-request-id"], "req-abc-123");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    assert_eq!(body["amount"], "10.50");
    assert_eq!(body["amount_cents"], 1050);
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    let created_at = body["created_at"].as_str().unwrap();
    assert!(created_at.ends_with('Z'), "{created_at}");
    assert!(!body.to_string().contains("4111111111111111"), "no card data in the answer");

    // Exactly what the processor reads: keyed by id, request id header,
    // account from the credentials, amount as an exact JSON number.
    let messages = consume(&app.topic, 1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 1);
    let msg = &messages[0];
    assert_eq!(rdkafka::Message::key(msg), Some(id.as_bytes()));
    assert_eq!(header(msg, REQUEST_ID_HEADER).as_deref(), Some("req-abc-123"));
    let p = payload(msg);
    assert_eq!(p["id"], id.as_str());
    assert_eq!(p["account_id"], "merchant-1");
    // Card fields sealed under the tests' keyring, bound to this
    // transaction and account; nothing else can open them.
    let raw_text = String::from_utf8_lossy(rdkafka::Message::payload(msg).unwrap()).into_owned();
    for clear in ["4111111111111111", "411111", "123", "Ada"] {
        assert!(!raw_text.contains(&format!("\"{clear}")), "{clear} in clear on the topic: {raw_text}");
    }
    let ring = card_envelope::Keyring::parse(testkit::TEST_CARD_KEYRING).unwrap();
    let cvv_ring = card_envelope::Keyring::parse(testkit::TEST_CVV_KEYRING).unwrap();
    let binding = card_envelope::Binding { transaction_id: &id, account_id: "merchant-1" };
    let open = |field: card_envelope::Field| {
        let sealed = p[field.name()].as_str().unwrap();
        // The CVV under the CVV's own (short-lived) keyring.
        let (ring, prefix) =
            if field == card_envelope::Field::Cvv { (&cvv_ring, "enc:v1:testcvv:") } else { (&ring, "enc:v1:test:") };
        assert!(sealed.starts_with(prefix), "{sealed}");
        String::from_utf8(card_envelope::open(ring, binding, field, sealed).unwrap().to_vec()).unwrap()
    };
    assert_eq!(open(card_envelope::Field::CardNumber), r#""4111111111111111""#);
    assert_eq!(open(card_envelope::Field::Cvv), r#""123""#);
    assert_eq!(p["created_at"], created_at);
    let raw = String::from_utf8_lossy(rdkafka::Message::payload(msg).unwrap()).into_owned();
    assert!(raw.contains(r#""amount":10.50"#), "{raw}");

    // Pending until the processor stores it.
    let r = app.get(&m, &format!("/v1/transactions/{id}")).await;
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["status"], "pending");
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["created_at"], created_at);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchants_see_only_their_own_transactions() {
    let app = spawn_sqlite().await;
    let a = app.merchant("merchant-a").await;
    let b = app.merchant("merchant-b").await;
    let r = app.post(&a, "/v1/transactions", &approvable()).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    assert_eq!(app.get(&a, &format!("/v1/transactions/{id}")).await.status(), 200);
    let (code, _) = error_code(app.get(&b, &format!("/v1/transactions/{id}")).await, 404).await;
    assert_eq!(code, "transaction_not_found");
    let list: Value = app.get(&b, "/v1/transactions").await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    let list: Value = app.get(&a, "/v1/transactions").await.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], id.as_str());

    // The body cannot choose the account.
    let mut body = approvable();
    body["account_id"] = json!("merchant-b");
    let (code, param) = error_code(app.post(&a, "/v1/transactions", &body).await, 422).await;
    assert_eq!((code.as_str(), param.as_deref()), ("unknown_field", Some("account_id")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_newest_first_with_cursors() {
    let app = spawn_sqlite().await;
    let m = app.merchant("merchant-1").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut body = approvable();
        body["amount"] = json!(format!("{}.00", i + 1));
        let r = app.post(&m, "/v1/transactions", &body).await;
        assert_eq!(r.status(), 202);
        ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/v1/transactions?limit=2".to_owned();
    loop {
        let page: Value = app.get(&m, &path).await.json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/transactions?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every transaction once, newest first");
    let (code, param) = error_code(app.get(&m, "/v1/transactions?limit=0").await, 400).await;
    assert_eq!((code.as_str(), param.as_deref()), ("invalid_limit", Some("limit")));
    let (code, _) = error_code(app.get(&m, "/v1/transactions?limit=101").await, 400).await;
    assert_eq!(code, "invalid_limit");
    let (code, _) = error_code(app.get(&m, "/v1/transactions?cursor=garbage!").await, 400).await;
    assert_eq!(code, "invalid_cursor");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_produces_valid_items_and_reports_each() {
    let app = spawn_sqlite().await;
    let m = app.merchant("merchant-1").await;
    let mut bad = approvable();
    bad["amount"] = json!(-1);
    let mut items: Vec<Value> = (0..9).map(|_| approvable()).collect();
    items.insert(3, bad);
    items.push(json!({"amount": "1.00"}));
    let r = app.post(&m, "/v1/transactions/batch", &json!({ "transactions": items })).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 9);
    assert_eq!(body["failed"], 2);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 11);
    for (i, item) in results.iter().enumerate() {
        assert_eq!(item["index"], i);
        if i == 3 {
            assert_eq!(item["status"], "error");
            assert_eq!(item["error"]["code"], "amount_not_positive");
            assert_eq!(item["error"]["param"], "amount");
        } else if i == 10 {
            assert_eq!(item["status"], "error");
            assert_eq!(item["error"]["code"], "missing_field");
        } else {
            assert_eq!(item["status"], "pending", "{item}");
        }
    }
    let ids: HashSet<String> =
        results.iter().filter_map(|i| i["transaction"]["id"].as_str().map(str::to_owned)).collect();
    assert_eq!(ids.len(), 9);
    let messages = consume(&app.topic, 9, Duration::from_secs(20)).await;
    let produced: HashSet<String> = messages.iter().map(|m| payload(m)["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(produced, ids, "exactly the valid items were produced");

    // An item that is not an object fails the whole batch.
    let r = app.post(&m, "/v1/transactions/batch", &json!({ "transactions": [approvable(), [1]] })).await;
    let (code, param) = error_code(r, 422).await;
    assert_eq!((code.as_str(), param.as_deref()), ("invalid_batch_item", Some("transactions[1]")));

    // Bounds on the count.
    let (code, _) = error_code(app.post(&m, "/v1/transactions/batch", &json!({ "transactions": [] })).await, 422).await;
    assert_eq!(code, "invalid_batch_size");
    let many: Vec<Value> = (0..501).map(|_| approvable()).collect();
    let (code, _) =
        error_code(app.post(&m, "/v1/transactions/batch", &json!({ "transactions": many })).await, 422).await;
    assert_eq!(code, "invalid_batch_size");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_mariadb_too() {
    let url = transaction_store::mysql::create_scratch_database(&mysql_server(), "api_test").await.unwrap();
    let (mut config, _dir) = sqlite_config().await;
    config.database_url = url.clone();
    let app = spawn_with(config, None).await;
    let m = app.merchant("merchant-1").await;
    let r = app.post(&m, "/v1/transactions", &approvable()).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let got: Value = app.get(&m, &format!("/v1/transactions/{id}")).await.json().await.unwrap();
    assert_eq!(got["status"], "pending");
    let list: Value = app.get(&m, "/v1/transactions").await.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], id.as_str());
    app.stop().await;
    transaction_store::mysql::drop_scratch_database(&url).await.unwrap();
}
