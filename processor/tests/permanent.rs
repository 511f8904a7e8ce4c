//! Permanent failures are isolated: a row the database refuses in the
//! middle of a batch, and a record the broker refuses. The rest of the
//! batch is stored and published, the offender dead-lettered with a reason,
//! and the offsets advance past it.

mod support;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use sqlx::{Connection, Executor, MySqlConnection};
use support::*;
use transaction_model::TransactionMessage;
use transaction_store::mysql;

/// The group's committed offset of partition 0.
fn committed(group: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let c = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    match c.find_partition(topic, 0).map(|p| p.offset()) {
        Some(Offset::Offset(o)) => Some(o),
        _ => None,
    }
}

async fn metrics(port: u16) -> String {
    let out = tokio::process::Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .await
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// 50 ordinary, the offender, 50 ordinary: one batch.
fn workload(prefix: &str, offender: TransactionMessage) -> Vec<TransactionMessage> {
    let mut all: Vec<_> = (0..50).map(|i| approvable(&format!("{prefix}-a{i}"))).collect();
    all.push(offender);
    all.extend((0..50).map(|i| approvable(&format!("{prefix}-b{i}"))));
    all
}

/// Runs the processor over `messages` and checks the outcome: every
/// message but the offender published, the offender dead-lettered with a
/// reason containing `reason`, the offset past the batch committed.
async fn offender_is_isolated(
    topics: &Topics,
    url: &str,
    messages: &[TransactionMessage],
    offender: &str,
    reason: &str,
    kafka_options: Vec<String>,
) -> String {
    produce(&topics.transactions, messages).await;
    let mut config = config(topics, url);
    config.kafka_options = kafka_options;
    let group = config.consumer_group.clone();
    let app = spawn(config).await;
    let others: Vec<String> = messages.iter().map(|m| m.id.clone()).filter(|id| id != offender).collect();
    let (results, dead) = tokio::join!(
        collect_ids(&topics.results, &others, Duration::from_secs(90)),
        collect(&topics.dlq, Duration::from_secs(90), |m| !m.is_empty()),
    );
    // Offsets are committed once the batch's deliveries are all reported.
    let mut offset = None;
    for _ in 0..50 {
        offset = committed(&group, &topics.transactions);
        if offset == Some(messages.len() as i64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = metrics(app.port).await;
    app.stop().await;

    let results = results.results();
    assert_eq!(results.len(), others.len(), "every other message published");
    assert!(!results.contains_key(offender), "the offender has no result");
    assert_eq!(dead.messages.len(), 1, "one dead letter");
    let d = &dead.messages[0];
    let why = header(d, "dlq_reason").unwrap();
    assert!(why.contains(reason), "reason: {why}");
    assert_eq!(header(d, "source_offset").as_deref(), Some("50"), "the offender's offset");
    assert_eq!(offset, Some(messages.len() as i64), "offsets advance past the offender");
    text
}

async fn a_row_the_database_refuses_is_dead_lettered(url: &str, refuse: impl std::future::Future<Output = ()>) {
    let topics = create_topics(1).await;
    let prefix = unique("refuse");
    let offender = approvable(&format!("{prefix}-refuse"));
    let messages = workload(&prefix, offender.clone());
    refuse.await;
    let text = offender_is_isolated(&topics, url, &messages, &offender.id, "database refused the row", vec![]).await;
    assert!(text.contains(r#"processor_permanent_failures_total{stage="db_write"} 1"#), "{text}");
    let repo = transaction_store::open(url).await.unwrap();
    assert_eq!(repo.count().await.unwrap(), 100, "the rest of the batch stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_sqlite_refuses_mid_batch_is_dead_lettered_and_the_rest_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let url = format!("sqlite://{}", path.display());
    transaction_store::open(&url).await.unwrap();
    let refuse = async {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON transactions WHEN NEW.id LIKE '%-refuse' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .unwrap();
    };
    a_row_the_database_refuses_is_dead_lettered(&url, refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_mariadb_refuses_mid_batch_is_dead_lettered_and_the_rest_stored() {
    let url = mysql::create_scratch_database(&mysql_server(), "refuse").await.unwrap();
    transaction_store::open(&url).await.unwrap();
    let refuse = async {
        let mut conn = MySqlConnection::connect(&url).await.unwrap();
        conn.execute("ALTER TABLE transactions ADD CONSTRAINT refuse CHECK (id NOT LIKE '%-refuse')").await.unwrap();
    };
    a_row_the_database_refuses_is_dead_lettered(&url, refuse).await;
    mysql::drop_scratch_database(&url).await.unwrap();
}

/// The processor's producer takes records of at most 1,000 bytes; one
/// transaction's id (128 four-byte characters, as key and in the result)
/// makes its result larger. Its row is stored; its result cannot be
/// published, so it is dead-lettered, and since the dead letter with the
/// original payload is too large as well, with its headers only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_broker_refuses_is_dead_lettered_and_the_rest_published() {
    let topics = create_topics(1).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let prefix = unique("big");
    let mut big_id = format!("{prefix}-");
    while big_id.chars().count() < 128 {
        big_id.push('😀');
    }
    let offender = approvable(&big_id);
    let messages = workload(&prefix, offender.clone());
    let options = vec!["message.max.bytes=1000".to_owned()];
    let text = offender_is_isolated(&topics, &url, &messages, &big_id, "broker refused the result", options).await;
    assert!(text.contains(r#"processor_permanent_failures_total{stage="produce"} 2"#), "{text}");
    assert!(text.contains("processor_dead_letters_lost_total 0"), "{text}");
    let dead = collect(&topics.dlq, Duration::from_secs(60), |m| !m.is_empty()).await;
    assert!(dead.messages[0].key().is_none() && dead.messages[0].payload().is_none(), "headers-only dead letter");
    let repo = transaction_store::open(&url).await.unwrap();
    assert_eq!(repo.count().await.unwrap(), 101, "every row stored, the offender's too");
}
