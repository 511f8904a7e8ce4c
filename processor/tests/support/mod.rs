//! Shared by the integration tests: unique topics per test, producing
//! transactions, collecting results, and running the processor.
#![allow(dead_code, unused_imports)] // each test binary uses a part

pub mod hostile;

use std::collections::HashMap;
use std::time::Duration;

use processor::{Application, Config};
use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use tokio_util::sync::CancellationToken;
use transaction_model::{Amount, ResultMessage, TransactionMessage};

pub use testkit::{brokers, header, mysql_server, producer, producer_at, unique, Running};

pub struct Topics {
    pub transactions: String,
    pub results: String,
    pub dlq: String,
}

/// Fresh topics for one test: the broker does not auto-create them.
pub async fn create_topics(partitions: i32) -> Topics {
    create_topics_at(&brokers(), partitions).await
}

pub async fn create_topics_at(brokers: &str, partitions: i32) -> Topics {
    let t = Topics { transactions: unique("tx"), results: unique("res"), dlq: unique("dlq") };
    testkit::create_topics_at(brokers, &[(&t.transactions, partitions), (&t.results, partitions), (&t.dlq, 1)]).await;
    t
}

pub fn config(topics: &Topics, database_url: &str) -> Config {
    Config {
        kafka_brokers: brokers(),
        database_url: database_url.to_owned(),
        transactions_topic: topics.transactions.clone(),
        results_topic: topics.results.clone(),
        dlq_topic: topics.dlq.clone(),
        consumer_group: unique("group"),
        batch_size: 500,
        batch_wait_ms: 20,
        session_timeout_ms: 6000,
        resume_rewind_messages: 0,
        kafka_options: Vec::new(),
        card_hash_key: Some("integration-test-card-key".into()),
        card_hash_key_id: "h1".into(),
        card_encryption_keys: Some(testkit::TEST_CARD_KEYRING.into()),
        card_encryption_keys_file: None,
        cvv_encryption_keys: Some(testkit::TEST_CVV_KEYRING.into()),
        cvv_encryption_keys_file: None,
        allow_plaintext_cards: true,
        http_addr: "127.0.0.1:0".parse().unwrap(),
    }
}

pub async fn spawn(config: Config) -> Running {
    let shutdown = CancellationToken::new();
    let app = Application::build(config, &shutdown).await.expect("processor builds");
    let port = app.http_port();
    let token = shutdown.clone();
    Running::spawn(shutdown, port, async move {
        app.run_until_stopped(token).await.expect("processor runs");
    })
}

/// Produces `(key, payload)` pairs and waits for every delivery report.
pub async fn produce_raw(topic: &str, messages: &[(Option<String>, Option<Vec<u8>>)]) {
    testkit::produce(&producer(), topic, messages).await
}

pub async fn produce(topic: &str, messages: &[TransactionMessage]) {
    produce_at(&brokers(), topic, messages).await
}

pub async fn produce_at(brokers: &str, topic: &str, messages: &[TransactionMessage]) {
    let raw: Vec<_> = messages.iter().map(|m| (Some(m.id.clone()), Some(serde_json::to_vec(m).unwrap()))).collect();
    testkit::produce(&producer_at(brokers), topic, &raw).await;
}

/// A transaction that the rules approve, with a unique id.
pub fn approvable(id: &str) -> TransactionMessage {
    TransactionMessage {
        id: id.to_owned(),
        account_id: "merchant-1".into(),
        credit_card_number: "4111111111111111".into(),
        credit_card_name: "Ada Lovelace".into(),
        credit_card_expiration_month: 12,
        credit_card_expiration_year: 2035,
        credit_card_cvv: "123".into(),
        amount: Amount::from_cents(1050),
        created_at: Some(time::macros::datetime!(2026-06-01 10:00:00 UTC)),
    }
}

/// Message `i` of a mixed workload, with the error message the rules must give.
pub fn mixed(prefix: &str, i: usize) -> (TransactionMessage, &'static str) {
    let mut m = approvable(&format!("{prefix}-{i}"));
    let expected = match i % 6 {
        0 | 1 => "",
        2 => {
            m.credit_card_number = "4111111111111112".into();
            "invalid credit card number"
        }
        3 => {
            m.amount = Amount::from_cents(100_001);
            "you dont have limit for this transaction"
        }
        4 => {
            m.amount = Amount::from_cents(99);
            "the amount must be greater than 1"
        }
        _ => {
            m.credit_card_cvv = "12".into();
            "invalid credit card cvv"
        }
    };
    (m, expected)
}

pub struct Collected {
    /// Every result message, in arrival order.
    pub messages: Vec<OwnedMessage>,
}

impl Collected {
    pub fn results(&self) -> HashMap<String, ResultMessage> {
        self.messages
            .iter()
            .map(|m| {
                let r: ResultMessage = serde_json::from_slice(m.payload().expect("payload")).expect("result json");
                assert_eq!(m.key(), Some(r.id.as_bytes()), "results are keyed by id");
                (r.id.clone(), r)
            })
            .collect()
    }
}

/// Reads `topic` from the start until `done` says enough or `limit` passes.
pub async fn collect(topic: &str, limit: Duration, done: impl FnMut(&[OwnedMessage]) -> bool) -> Collected {
    collect_at(&brokers(), topic, limit, done).await
}

pub async fn collect_at(
    brokers: &str,
    topic: &str,
    limit: Duration,
    done: impl FnMut(&[OwnedMessage]) -> bool,
) -> Collected {
    Collected { messages: testkit::consume_at(brokers, topic, limit, done).await }
}

/// Collects until every id of `ids` has a result.
pub async fn collect_ids(topic: &str, ids: &[String], limit: Duration) -> Collected {
    collect_ids_at(&brokers(), topic, ids, limit).await
}

pub async fn collect_ids_at(brokers: &str, topic: &str, ids: &[String], limit: Duration) -> Collected {
    let mut seen = std::collections::HashSet::new();
    let mut read = 0;
    collect_at(brokers, topic, limit, |msgs| {
        for m in &msgs[read..] {
            if let Some(k) = m.key() {
                seen.insert(String::from_utf8_lossy(k).into_owned());
            }
        }
        read = msgs.len();
        ids.iter().all(|id| seen.contains(id))
    })
    .await
}
