//! Through the API, the real broker and the processor library, back to the
//! API: the final status is visible to the merchant.

mod support;

use std::time::{Duration, Instant};

use processor::Config as ProcessorConfig;
use serde_json::{json, Value};
use support::*;
use tokio_util::sync::CancellationToken;

async fn wait_decided(app: &TestApp, m: &Merchant, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t: Value = app.get(m, &format!("/v1/transactions/{id}")).await.json().await.unwrap();
        if t["status"] != "pending" || Instant::now() > deadline {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merchant_sees_the_processors_decision_on_sqlite() {
    let (config, dir) = sqlite_config().await;
    sees_the_decision(config, Some(dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merchant_sees_the_processors_decision_on_mariadb() {
    let url = transaction_store::mysql::create_scratch_database(&mysql_server(), "api_e2e").await.unwrap();
    let (mut config, _dir) = sqlite_config().await;
    config.database_url = url.clone();
    sees_the_decision(config, None).await;
    transaction_store::mysql::drop_scratch_database(&url).await.unwrap();
}

async fn sees_the_decision(config: api::Config, dir: Option<tempfile::TempDir>) {
    let results = unique("res");
    let dlq = unique("dlq");
    create_topics(&[&results, &dlq], 1).await;
    let processor_config = ProcessorConfig {
        kafka_brokers: brokers(),
        database_url: config.database_url.clone(),
        transactions_topic: config.transactions_topic.clone(),
        results_topic: results,
        dlq_topic: dlq,
        consumer_group: unique("group"),
        batch_size: 500,
        batch_wait_ms: 20,
        session_timeout_ms: 6000,
        resume_rewind_messages: 10_000,
        kafka_options: Vec::new(),
        card_hash_key: Some("integration-test-card-key".into()),
        http_addr: "127.0.0.1:0".parse().unwrap(),
    };
    let app = spawn_with(config, dir).await;
    let m = app.merchant("merchant-1").await;

    let approved = app.post(&m, "/v1/transactions", &approvable()).await;
    assert_eq!(approved.status(), 202);
    let approved_id = approved.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let mut bad_luhn = approvable();
    bad_luhn["credit_card_number"] = json!("4111111111111112");
    let mut over_limit = approvable();
    over_limit["amount"] = json!(1000.01);
    let batch: Value = app
        .post(&m, "/v1/transactions/batch", &json!({"transactions": [bad_luhn, over_limit]}))
        .await
        .json()
        .await
        .unwrap();
    let luhn_id = batch["results"][0]["transaction"]["id"].as_str().unwrap().to_owned();
    let limit_id = batch["results"][1]["transaction"]["id"].as_str().unwrap().to_owned();

    let shutdown = CancellationToken::new();
    let processor = processor::Application::build(processor_config, &shutdown).await.expect("processor builds");
    let token = shutdown.clone();
    let handle = tokio::spawn(async move { processor.run_until_stopped(token).await.expect("processor runs") });

    let t = wait_decided(&app, &m, &approved_id).await;
    assert_eq!(t["status"], "approved", "{t}");
    assert_eq!(t["error_message"], Value::Null);
    assert_eq!(t["card_brand"], "visa");
    assert_eq!(t["card_masked"].as_str().unwrap().len(), 16);
    assert!(!t.to_string().contains("4111111111111111"));
    assert!(t["processed_at"].is_string());

    let t = wait_decided(&app, &m, &luhn_id).await;
    assert_eq!(t["status"], "rejected", "{t}");
    assert_eq!(t["error_message"], "invalid credit card number");
    let t = wait_decided(&app, &m, &limit_id).await;
    assert_eq!(t["status"], "rejected", "{t}");
    assert_eq!(t["error_message"], "you dont have limit for this transaction");
    assert_eq!(t["amount"], "1000.01");

    let list: Value = app.get(&m, "/v1/transactions").await.json().await.unwrap();
    let statuses: Vec<&str> = list["data"].as_array().unwrap().iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.len(), 3);
    assert!(statuses.iter().all(|s| *s != "pending"), "{statuses:?}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), handle).await.unwrap().unwrap();
    app.stop().await;
}
