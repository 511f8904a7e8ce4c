//! Three processors in one consumer group on six partitions; one of them is
//! SIGKILLed and restarted every few seconds while transactions flow. Every
//! id must be stored exactly once and published; results published more
//! than once (at-least-once after a kill or a rebalance) are counted.

mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::Rng;
use support::*;
use tokio::process::{Child, Command};
use transaction_model::{ResultMessage, TransactionId};
use transaction_store::mysql;

const N: usize = 9_000;
const PARTITIONS: i32 = 6;
/// Transactions are produced over this long, in bursts.
const PRODUCE_FOR: Duration = Duration::from_secs(24);
const KILL_EVERY: Duration = Duration::from_secs(4);

fn spawn_processor(topics: &Topics, database_url: &str, group: &str, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_processor"))
        .env("KAFKA_BROKERS", brokers())
        .env("DATABASE_URL", database_url)
        .env("TRANSACTIONS_TOPIC", &topics.transactions)
        .env("RESULTS_TOPIC", &topics.results)
        .env("DLQ_TOPIC", &topics.dlq)
        .env("CONSUMER_GROUP", group)
        .env("BATCH_SIZE", "200")
        .env("BATCH_WAIT_MS", "20")
        .env("KAFKA_SESSION_TIMEOUT_MS", "3000")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("CARD_HASH_KEY", "group-test-card-hash-key")
        .env("CARD_ENCRYPTION_KEYS", testkit::TEST_CARD_KEYRING)
        .env("CVV_ENCRYPTION_KEYS", testkit::TEST_CVV_KEYRING)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("processor binary starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processors_one_killed_repeatedly_store_each_id_once() {
    let url = mysql::create_scratch_database(&mysql_server(), "group").await.unwrap();
    transaction_store::open(&url).await.unwrap();
    let topics = create_topics(PARTITIONS).await;
    let prefix = unique("grp");
    let workload: Vec<_> = (0..N).map(|i| mixed(&prefix, i)).collect();
    let messages: Vec<_> = workload.iter().map(|(m, _)| m.clone()).collect();
    let group = unique("group");
    let log = std::env::temp_dir().join(format!("{}.log", unique("group-processors")));
    eprintln!("processor logs: {}", log.display());

    let mut members: Vec<Child> = (0..3).map(|_| spawn_processor(&topics, &url, &group, &log)).collect();

    // Transactions flow in bursts while one member is killed and restarted.
    let producing = {
        let topic = topics.transactions.clone();
        let messages = messages.clone();
        tokio::spawn(async move {
            let bursts = 96;
            let pause = PRODUCE_FOR / bursts as u32;
            for chunk in messages.chunks(N.div_ceil(bursts)) {
                produce(&topic, chunk).await;
                tokio::time::sleep(pause).await;
            }
        })
    };
    let mut rng = rand::thread_rng();
    let mut kills = 0;
    let started = Instant::now();
    while started.elapsed() < PRODUCE_FOR + Duration::from_secs(4) {
        tokio::time::sleep(KILL_EVERY + Duration::from_millis(rng.gen_range(0..1000))).await;
        let victim = rng.gen_range(0..members.len());
        members[victim].start_kill().expect("SIGKILL");
        members[victim].wait().await.unwrap();
        kills += 1;
        members[victim] = spawn_processor(&topics, &url, &group, &log);
    }
    producing.await.unwrap();

    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let collected = collect_ids(&topics.results, &ids, Duration::from_secs(180)).await;
    for member in &mut members {
        let pid = member.id().unwrap().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    }
    for member in &mut members {
        let status = tokio::time::timeout(Duration::from_secs(30), member.wait()).await.expect("exits").unwrap();
        assert!(status.success(), "SIGTERM exit: {status}");
    }

    let repo = transaction_store::open(&url).await.unwrap();
    assert_eq!(repo.count().await.unwrap(), N as u64, "rows: each id stored exactly once");
    let mut by_id: HashMap<String, Vec<ResultMessage>> = HashMap::new();
    for m in &collected.messages {
        let r: ResultMessage = serde_json::from_slice(rdkafka::Message::payload(m).unwrap()).unwrap();
        by_id.entry(r.id.clone()).or_default().push(r);
    }
    for (m, expected) in &workload {
        let row = repo.find(&TransactionId::try_from(m.id.as_str()).unwrap()).await.unwrap();
        let row = row.unwrap_or_else(|| panic!("{} missing from the database", m.id));
        assert_eq!(row.error_message, *expected, "{}", m.id);
        let results = by_id.get(&m.id).unwrap_or_else(|| panic!("{} missing from the results", m.id));
        for r in results {
            assert_eq!(r, &row.to_result_message(), "{}: republished results are the stored decision", m.id);
        }
    }
    let duplicated = by_id.values().filter(|rs| rs.len() > 1).count();
    let extra = collected.messages.len() - N;
    eprintln!(
        "3 processors, {PARTITIONS} partitions, {N} transactions, {kills} kills: every id stored once and published; \
         {duplicated} ids published more than once ({extra} extra results)"
    );
    assert!(kills >= 5, "too few kills to test anything ({kills})");
    mysql::drop_scratch_database(&url).await.unwrap();
}
