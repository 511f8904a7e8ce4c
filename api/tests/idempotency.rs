//! Idempotency-Key: replay, mismatch, per-merchant scope, and concurrency.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_same_body_replays_one_transaction() {
    let app = spawn_sqlite().await;
    let a = app.merchant("merchant-a").await;
    let b = app.merchant("merchant-b").await;

    let first = app.post_with_key(&a, "/v1/transactions", "order-1", &approvable()).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    // The same body written differently (amount as a number, keys reordered)
    // is the same request.
    let mut same = approvable();
    same["amount"] = json!(10.5);
    let again = app.post_with_key(&a, "/v1/transactions", "order-1", &same).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first, "byte-for-byte the first answer");

    // Different body, same key: 422.
    let mut other = approvable();
    other["amount"] = json!("11.00");
    let r = app.post_with_key(&a, "/v1/transactions", "order-1", &other).await;
    assert_eq!(error_code(r, 422).await.0, "idempotency_key_reused");
    // The batch endpoint with the same key is a different body too.
    let r = app.post_with_key(&a, "/v1/transactions/batch", "order-1", &json!({"transactions": [approvable()]})).await;
    assert_eq!(error_code(r, 422).await.0, "idempotency_key_reused");

    // Another merchant's key space is separate.
    let r = app.post_with_key(&b, "/v1/transactions", "order-1", &approvable()).await;
    assert_eq!(r.status(), 202);
    assert_ne!(r.json::<Value>().await.unwrap()["id"], first["id"]);

    // Batches replay too.
    let batch = json!({"transactions": [approvable(), approvable()]});
    let r1: Value = app.post_with_key(&a, "/v1/transactions/batch", "batch-1", &batch).await.json().await.unwrap();
    let r2: Value = app.post_with_key(&a, "/v1/transactions/batch", "batch-1", &batch).await.json().await.unwrap();
    assert_eq!(r1, r2);
    assert_eq!(r1["accepted"], 2);

    // 1 + 1 (merchant b) + 2 (batch) messages, no more.
    let produced = consume(&app.topic, 5, Duration::from_secs(8)).await;
    assert_eq!(produced.len(), 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_make_one_transaction() {
    let app = spawn_sqlite().await;
    let m = app.merchant("merchant-1").await;
    const N: usize = 16;
    let body = approvable();
    let requests = (0..N).map(|_| app.post_with_key(&m, "/v1/transactions", "same-key", &body));
    let responses = futures::future::join_all(requests).await;
    let mut ids = HashSet::new();
    let (mut accepted, mut conflicts) = (0, 0);
    for r in responses {
        match r.status().as_u16() {
            202 => {
                accepted += 1;
                ids.insert(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
            }
            409 => {
                conflicts += 1;
                assert_eq!(error_code(r, 409).await.0, "idempotency_key_in_flight");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(accepted + conflicts, N);
    assert!(accepted >= 1);
    assert_eq!(ids.len(), 1, "every 202 names the same transaction");
    let produced = consume(&app.topic, 2, Duration::from_secs(8)).await;
    assert_eq!(produced.len(), 1, "one transaction produced for {N} concurrent requests");
    // After the first finished, a retry replays it.
    let r = app.post_with_key(&m, "/v1/transactions", "same-key", &approvable()).await;
    assert_eq!(r.status(), 202);
    assert!(ids.contains(r.json::<Value>().await.unwrap()["id"].as_str().unwrap()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_held_by_a_running_request_is_409() {
    use api::fingerprint::{fingerprint, BodyKind, Item};
    use api::new_transaction::NewTransaction;
    use transaction_model::{AccountId, Amount};
    use transaction_store::{IdempotencyBegin, IdempotencyTimes};

    let app = spawn_sqlite().await;
    let m = app.merchant("merchant-1").await;
    // What the API computes for approvable(): hold the key as a request in
    // flight on another replica would.
    let same = NewTransaction {
        card_number: "4111111111111111".into(),
        card_name: "Ada Lovelace".into(),
        expiration_month: 12,
        expiration_year: 2035,
        cvv: "123".into(),
        amount: Amount::from_cents(1050),
    };
    let hasher = api::startup::secret_hasher(Some(SECRET_KEY)).unwrap().derive(api::fingerprint::FINGERPRINT_PURPOSE);
    let print = fingerprint(&hasher, BodyKind::Single, &[Item::Valid(&same)]);
    let times = IdempotencyTimes {
        now: time::OffsetDateTime::now_utc(),
        ttl: api::idempotency::TTL,
        in_flight_timeout: api::idempotency::IN_FLIGHT_TIMEOUT,
    };
    let account = AccountId::try_from("merchant-1").unwrap();
    let held = app.store.idempotency.begin_idempotent(&account, "held", &print, times).await.unwrap();
    assert!(matches!(held, IdempotencyBegin::Started { .. }), "{held:?}");

    let r = app.post_with_key(&m, "/v1/transactions", "held", &approvable()).await;
    assert_eq!(error_code(r, 409).await.0, "idempotency_key_in_flight");
    let mut other = approvable();
    other["amount"] = json!(99);
    let r = app.post_with_key(&m, "/v1/transactions", "held", &other).await;
    assert_eq!(error_code(r, 422).await.0, "idempotency_key_reused", "a different body is 422 even while in flight");

    // Once released, the request runs.
    app.store.idempotency.release_idempotent(&account, "held").await.unwrap();
    assert_eq!(app.post_with_key(&m, "/v1/transactions", "held", &approvable()).await.status(), 202);
    app.stop().await;
}
