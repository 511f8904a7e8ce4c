//! Shared by the integration tests: unique topics per test, producing
//! transactions, collecting results, and running the processor.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use processor::{Application, Config};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;
use tokio_util::sync::CancellationToken;
use transaction_model::{Amount, ResultMessage, TransactionMessage};

pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn mysql_server() -> String {
    std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

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
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let topics = [
        NewTopic::new(&t.transactions, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&t.results, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&t.dlq, 1, TopicReplication::Fixed(1)),
    ];
    for result in admin.create_topics(&topics, &AdminOptions::new()).await.expect("create topics") {
        result.expect("topic created");
    }
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
        resume_rewind_messages: 10_000,
        kafka_options: Vec::new(),
        card_hash_key: Some("integration-test-card-key".into()),
        http_addr: "127.0.0.1:0".parse().unwrap(),
    }
}

pub struct Running {
    pub shutdown: CancellationToken,
    pub port: u16,
    pub handle: tokio::task::JoinHandle<()>,
}

pub async fn spawn(config: Config) -> Running {
    let shutdown = CancellationToken::new();
    let app = Application::build(config, &shutdown).await.expect("processor builds");
    let port = app.http_port();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        app.run_until_stopped(token).await.expect("processor runs");
    });
    Running { shutdown, port, handle }
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("processor stops within 30 s")
            .expect("processor task did not panic");
    }
}

pub fn producer() -> FutureProducer {
    producer_at(&brokers())
}

pub fn producer_at(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer")
}

/// Produces `(key, payload)` pairs and waits for every delivery report.
pub async fn produce_raw(topic: &str, messages: &[(Option<String>, Option<Vec<u8>>)]) {
    produce_raw_at(&brokers(), topic, messages).await
}

pub async fn produce_raw_at(brokers: &str, topic: &str, messages: &[(Option<String>, Option<Vec<u8>>)]) {
    let producer = producer_at(brokers);
    for chunk in messages.chunks(5000) {
        let sends = chunk.iter().map(|(key, payload)| {
            let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic);
            if let Some(k) = key {
                record = record.key(k.as_str());
            }
            if let Some(p) = payload {
                record = record.payload(p.as_slice());
            }
            producer.send(record, Timeout::After(Duration::from_secs(30)))
        });
        for r in futures::future::join_all(sends).await {
            r.expect("delivered");
        }
    }
}

pub async fn produce(topic: &str, messages: &[TransactionMessage]) {
    produce_at(&brokers(), topic, messages).await
}

pub async fn produce_at(brokers: &str, topic: &str, messages: &[TransactionMessage]) {
    let raw: Vec<_> = messages.iter().map(|m| (Some(m.id.clone()), Some(serde_json::to_vec(m).unwrap()))).collect();
    produce_raw_at(brokers, topic, &raw).await;
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

    pub fn header(m: &OwnedMessage, key: &str) -> Option<String> {
        m.headers()?
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
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
    mut done: impl FnMut(&[OwnedMessage]) -> bool,
) -> Collected {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("collector"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("collector");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + limit;
    let mut messages = Vec::new();
    while !done(&messages) && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            messages.push(m.detach());
        }
    }
    Collected { messages }
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
