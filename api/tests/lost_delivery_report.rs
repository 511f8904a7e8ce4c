//! The unclear failure: the broker stores the transaction but its answer
//! never reaches the API, which says 503. The merchant retries with the same
//! Idempotency-Key; the retry must send the same transaction (same id and
//! time), so the processor decides and stores it once, not twice.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;
use testkit::{free_port, FlakyLink, PrivateBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_lost_delivery_report_is_one_transaction() {
    let link_port = free_port();
    let broker = PrivateBroker::start_advertising(free_port(), link_port).await;
    let link = FlakyLink::start(link_port, broker.address()).await;
    let brokers = link.address();
    let topic = unique("tx");
    testkit::create_topics_at(&brokers, &[(&topic, 1)]).await;

    let (mut config, dir) = sqlite_config().await;
    config.kafka_brokers = brokers.clone();
    config.transactions_topic = topic.clone();
    config.delivery_timeout_ms = 1500;
    let database_url = config.database_url.clone();
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("merchant-1").await;
    let warm_up = app.post(&m, "/v1/transactions", &approvable()).await;
    assert_eq!(warm_up.status(), 202, "connected");
    let warm_up_id = warm_up.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    link.lose_answers();
    let r = app.post_with_key(&m, "/v1/transactions", "pay-1", &approvable()).await;
    assert_eq!(error_code(r, 503).await.0, "broker_unavailable");
    link.heal();

    // Retried as a merchant would, until the API's producer has reconnected.
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let r = app.post_with_key(&m, "/v1/transactions", "pay-1", &approvable()).await;
        if r.status() == 202 {
            break r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "retry never accepted: {}", r.status());
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // The broker holds the attempt the API answered 503 to as well as the
    // retry: both are the same transaction.
    let keyed = |read: &[rdkafka::message::OwnedMessage]| {
        read.iter().map(payload).filter(|p| p["id"] != warm_up_id.as_str()).collect::<Vec<_>>()
    };
    let read = testkit::consume_at(&brokers, &topic, Duration::from_secs(30), |read| keyed(read).len() >= 2).await;
    let sent = keyed(&read);
    assert!(sent.len() >= 2, "the first attempt reached the broker despite the 503: {sent:?}");
    let ids: HashSet<&str> = sent.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, HashSet::from([id.as_str()]), "every attempt under the key is one transaction");
    let times: HashSet<&str> = sent.iter().map(|p| p["created_at"].as_str().unwrap()).collect();
    assert_eq!(times.len(), 1, "decided at the same time whichever copy comes first: {times:?}");

    // Decided and stored once; the merchant sees two transactions in all.
    let processor = spawn_processor(&brokers, &database_url, &topic).await;
    let t = wait_decided(&app, &m, &id).await;
    assert_eq!(t["status"], "approved", "{t}");
    wait_decided(&app, &m, &warm_up_id).await;
    let stored = transaction_store::open(&database_url).await.unwrap();
    assert_eq!(stored.count().await.unwrap(), 2);
    let list: Value = app.get(&m, "/v1/transactions").await.json().await.unwrap();
    let listed: HashSet<&str> = list["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(listed, HashSet::from([id.as_str(), warm_up_id.as_str()]));
    // A replay now answers from the stored response.
    let replay = app.post_with_key(&m, "/v1/transactions", "pay-1", &approvable()).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], id.as_str());

    processor.stop().await;
    app.stop().await;
}
