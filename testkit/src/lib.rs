//! Shared by the integration tests of every crate: where the local broker
//! and MariaDB are, unique names so tests never share topics or groups,
//! creating topics (the broker does not auto-create them), producing with
//! delivery reports, and reading a topic back from the start.
//!
//! Test code: it panics with a message instead of returning errors.

mod flaky_link;
mod private_broker;
mod tls;

pub use flaky_link::FlakyLink;
pub use private_broker::{durable_binary, free_port, PrivateBroker};
pub use tls::{PrivateMariaDb, TestCa, TlsTerminator};

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

/// The card keyring of the integration tests' API and processor (not the
/// development keyring, which the services refuse outside development mode).
pub const TEST_CARD_KEYRING: &str = "test:Z2F0ZXdheS1pbnRlZ3JhdGlvbi10ZXN0LWNhcmQtazE=";
/// The CVV keyring of the integration tests: a fixed id, so no age applies
/// (production keys are named by the minute a rotation made them).
pub const TEST_CVV_KEYRING: &str = "testcvv:Z2F0ZXdheS1pbnRlZ3JhdGlvbi10ZXN0LWN2di1rMSE=";

/// `KAFKA_BROKERS`, or the broker `scripts/broker start` runs.
pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// `TEST_MYSQL_URL` (server only, no database), or the local MariaDB.
pub fn mysql_server() -> String {
    std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// `prefix-<uuid>`: a topic, group or id no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates `(name, partitions)` topics on the local broker.
pub async fn create_topics(topics: &[(&str, i32)]) {
    create_topics_at(&brokers(), topics).await
}

pub async fn create_topics_at(brokers: &str, topics: &[(&str, i32)]) {
    create_topics_with(brokers, &[], topics).await
}

/// The same through a client with extra properties (TLS, for one).
pub async fn create_topics_with(brokers: &str, options: &[(String, String)], topics: &[(&str, i32)]) {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (k, v) in options {
        config.set(k, v);
    }
    let admin: AdminClient<DefaultClientContext> = config.create().expect("admin client");
    let new: Vec<_> = topics.iter().map(|(name, p)| NewTopic::new(name, *p, TopicReplication::Fixed(1))).collect();
    for result in admin.create_topics(&new, &AdminOptions::new()).await.expect("create topics") {
        result.expect("topic created");
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

/// Produces `(key, payload)` pairs, either possibly absent, and waits for
/// every delivery report.
pub async fn produce(producer: &FutureProducer, topic: &str, messages: &[(Option<String>, Option<Vec<u8>>)]) {
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

/// Reads `topic` from the start, in a group of its own, until `done` says
/// enough or `limit` passes; returns what it read, in arrival order.
pub async fn consume(topic: &str, limit: Duration, done: impl FnMut(&[OwnedMessage]) -> bool) -> Vec<OwnedMessage> {
    consume_at(&brokers(), topic, limit, done).await
}

pub async fn consume_at(
    brokers: &str,
    topic: &str,
    limit: Duration,
    mut done: impl FnMut(&[OwnedMessage]) -> bool,
) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("collector"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("collector");
    // Every partition assigned by hand: no group join, which the local
    // broker answers only after half the session timeout.
    let deadline = Instant::now() + limit;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("topic metadata");
    let mut partitions = TopicPartitionList::new();
    for p in metadata.topics().iter().filter(|t| t.name() == topic).flat_map(|t| t.partitions()) {
        partitions.add_partition_offset(topic, p.id(), Offset::Beginning).expect("partition");
    }
    assert!(partitions.count() > 0, "topic {topic} has no partitions");
    consumer.assign(&partitions).expect("assign");
    let mut messages = Vec::new();
    while !done(&messages) && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            messages.push(m.detach());
        }
    }
    messages
}

/// A header's value as text.
pub fn header(m: &OwnedMessage, key: &str) -> Option<String> {
    m.headers()?.iter().find(|h| h.key == key).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A service's `run_until_stopped` on a task, and the token that stops it.
pub struct Running {
    pub shutdown: CancellationToken,
    /// The service's HTTP port (it was bound to port 0).
    pub port: u16,
    handle: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Spawns `run`, which must return once `shutdown` is cancelled.
    pub fn spawn(shutdown: CancellationToken, port: u16, run: impl Future<Output = ()> + Send + 'static) -> Self {
        Running { shutdown, port, handle: tokio::spawn(run) }
    }

    /// Cancels and waits for a clean end: within 30 s, without a panic.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("service stops within 30 s of shutdown")
            .expect("service task did not panic");
    }
}
