//! A broker that cannot take the transaction in time: 503 with Retry-After,
//! and nothing half-accepted.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_a_503_and_nothing_is_accepted() {
    let (mut config, dir) = sqlite_config().await;
    // Nothing listens on port 1.
    config.kafka_brokers = "127.0.0.1:1".into();
    config.delivery_timeout_ms = 1500;
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("merchant-1").await;

    let start = Instant::now();
    let r = app.post_with_key(&m, "/v1/transactions", "k-1", &approvable()).await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "bounded: {took:?}");
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(error_code(r, 503).await.0, "broker_unavailable");

    let r = app.post(&m, "/v1/transactions/batch", &json!({"transactions": [approvable(), approvable()]})).await;
    assert_eq!(error_code(r, 503).await.0, "broker_unavailable");

    // Nothing visible, and the idempotency key was released for the retry.
    let list: Value = app.get(&m, "/v1/transactions").await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    let r = app.post_with_key(&m, "/v1/transactions", "k-1", &approvable()).await;
    assert_eq!(error_code(r, 503).await.0, "broker_unavailable", "retried, not 409, not replayed");

    // Not ready; still alive.
    let r = app.client.get(app.internal_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_ne!(body["broker"], "ok");
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_does_not_leave_its_key_in_flight() {
    let (mut config, dir) = sqlite_config().await;
    config.kafka_brokers = "127.0.0.1:1".into();
    config.delivery_timeout_ms = 1000;
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("merchant-1").await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    let send = |client: &reqwest::Client| {
        client
            .post(app.url("/v1/transactions"))
            .header("authorization", m.basic())
            .header("idempotency-key", "hang-up")
            .json(&approvable())
            .send()
    };
    assert!(send(&impatient).await.is_err(), "the client gave up first");
    // The request runs on after the hang-up and releases its key on failure;
    // had it been dropped with the connection, the key would stay in flight
    // (409) for minutes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = send(&app.client).await.unwrap();
    assert_eq!(error_code(r, 503).await.0, "broker_unavailable");
    app.stop().await;
}
