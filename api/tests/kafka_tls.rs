//! Kafka over TLS with the broker's certificate verified: the API and the
//! processor reach the broker only through a TLS-terminating proxy (the
//! broker advertises the proxy's port), with the test CA configured through
//! KAFKA_OPTIONS. A transaction goes through end to end; a client that does
//! not trust the CA, or speaks plaintext, gets nothing through.

mod support;

use std::time::Duration;

use api::Config;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::*;
use testkit::{free_port, PrivateBroker, TestCa, TlsTerminator};

fn tls_options(ca: &TestCa) -> Vec<String> {
    vec!["security.protocol=ssl".into(), format!("ssl.ca.location={}", ca.ca().display())]
}

async fn delivered(brokers: &str, options: &[(String, String)], topic: &str) -> bool {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("message.timeout.ms", "4000");
    for (k, v) in options {
        config.set(k, v);
    }
    let producer: FutureProducer = config.create().unwrap();
    producer.send(FutureRecord::<str, str>::to(topic).payload("probe"), Duration::from_secs(6)).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_processor_speak_tls_to_kafka_and_verify_the_broker() {
    let ca = TestCa::generate();
    let tls_port = free_port();
    let broker = PrivateBroker::start_advertising(free_port(), tls_port).await;
    let _proxy = TlsTerminator::start(&ca, tls_port, &broker.address()).await;
    let brokers = format!("127.0.0.1:{tls_port}");
    let options = tls_options(&ca);
    let topic = unique("tx");
    testkit::create_topics_with(&brokers, &option_pairs(&options), &[(&topic, 2)]).await;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let mut config = Config::local(&url, &topic);
    config.card_encryption_keys = Some(testkit::TEST_CARD_KEYRING.into());
    config.cvv_encryption_keys = Some(testkit::TEST_CVV_KEYRING.into());
    config.kafka_brokers = brokers.clone();
    config.kafka_options = options.clone();
    config.secret_hash_key = Some(SECRET_KEY.into());
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("merchant-1").await;
    let extras = ProcessorExtras { kafka_options: options.clone(), ..Default::default() };
    let processor = spawn_processor_with(&brokers, &url, &topic, extras).await;

    let r = app.post(&m, "/v1/transactions", &approvable()).await;
    assert_eq!(r.status(), 202, "produced over TLS");
    let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_decided(&app, &m, &id).await["status"], "approved", "decided over TLS");

    // The proxy only speaks TLS, and only a client that trusts its CA gets through.
    let other_ca = TestCa::generate();
    assert!(delivered(&brokers, &option_pairs(&options), &topic).await, "the trusted CA delivers");
    assert!(!delivered(&brokers, &option_pairs(&tls_options(&other_ca)), &topic).await, "an untrusted server refused");
    assert!(!delivered(&brokers, &[], &topic).await, "plaintext refused");
    processor.stop().await;
    app.stop().await;
}
