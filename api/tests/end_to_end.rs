//! Through the API, the real broker and the processor library, back to the
//! API: the final status is visible to the merchant.

mod support;

use serde_json::{json, Value};
use support::*;

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
    let (database_url, topic) = (config.database_url.clone(), config.transactions_topic.clone());
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

    let processor = spawn_processor(&brokers(), &database_url, &topic).await;

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

    processor.stop().await;
    app.stop().await;
}
