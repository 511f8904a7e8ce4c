//! Kill -9 the processor binary again and again during a 20,000-message
//! run: every id must end up exactly once in the database and in the
//! results, with one decision per id however often it was republished.

mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::Rng;
use support::*;
use tokio::process::{Child, Command};
use transaction_model::{ResultMessage, TransactionId};
use transaction_store::{mysql, TransactionRepository};

const N: usize = 20_000;
const KILLS: usize = 8;

fn spawn_processor(topics: &Topics, database_url: &str, group: &str, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_processor"))
        .env("KAFKA_BROKERS", brokers())
        .env("DATABASE_URL", database_url)
        .env("TRANSACTIONS_TOPIC", &topics.transactions)
        .env("RESULTS_TOPIC", &topics.results)
        .env("DLQ_TOPIC", &topics.dlq)
        .env("CONSUMER_GROUP", group)
        .env("BATCH_SIZE", "250")
        .env("BATCH_WAIT_MS", "20")
        .env("KAFKA_SESSION_TIMEOUT_MS", "2000")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("CARD_HASH_KEY", "crash-test-card-hash-key")
        .env("CARD_ENCRYPTION_KEYS", testkit::TEST_CARD_KEYRING)
        .env("CVV_ENCRYPTION_KEYS", testkit::TEST_CVV_KEYRING)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("processor binary starts")
}

/// Polls until the stored count exceeds `above` (the processor is making
/// progress) or `limit` passes; returns the count seen.
async fn wait_for_progress(repo: &dyn TransactionRepository, above: u64, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    loop {
        let n = repo.count().await.unwrap_or(above);
        if n > above || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn survives_repeated_kill_9(database_url: &str) {
    let topics = create_topics(3).await;
    let prefix = unique("crash");
    let workload: Vec<_> = (0..N).map(|i| mixed(&prefix, i)).collect();
    let messages: Vec<_> = workload.iter().map(|(m, _)| m.clone()).collect();
    produce(&topics.transactions, &messages).await;

    // Kept after the test: the processors' logs, for a failure's post-mortem.
    let log = std::env::temp_dir().join(format!("{}.log", unique("crash-processor")));
    eprintln!("processor log: {}", log.display());
    let group = unique("crash-group");
    let repo = transaction_store::open(database_url).await.unwrap();
    let mut rng = rand::thread_rng();
    let mut kills = 0;
    let mut stored = 0;
    while kills < KILLS {
        let mut child = spawn_processor(&topics, database_url, &group, &log);
        let started = Instant::now();
        stored = wait_for_progress(repo.as_ref(), stored, Duration::from_secs(60)).await;
        eprintln!("resumed after {:?}", started.elapsed());
        if stored as usize >= N {
            let _ = child.start_kill();
            let _ = child.wait().await;
            break;
        }
        // Land the kill at a random point inside the stream of batches.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..150))).await;
        child.start_kill().expect("SIGKILL");
        child.wait().await.unwrap();
        kills += 1;
        stored = repo.count().await.unwrap();
        eprintln!("kill #{kills}: {stored} stored");
    }
    assert!(kills >= 3, "the run finished before the processor could be killed 3 times ({kills})");

    // A last run that is allowed to finish, then stopped by SIGTERM.
    let mut child = spawn_processor(&topics, database_url, &group, &log);
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let collected = collect_ids(&topics.results, &ids, Duration::from_secs(240)).await;
    let pid = child.id().unwrap().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    let status =
        tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("exits after SIGTERM").unwrap();
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "SIGTERM exit: {status}\n{logs}");

    // Every id exactly once in the database, with the right decision.
    assert_eq!(repo.count().await.unwrap(), N as u64, "rows in the database");
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
        // Republished after a crash: always the stored decision, unchanged.
        for r in results {
            assert_eq!(r, &row.to_result_message(), "{}", m.id);
        }
    }
    let republished = collected.messages.len() - N;
    eprintln!("{kills} kills; {republished} results republished after crashes; 0 rows doubled");
    assert!(!logs.contains("4111111111111111"), "card number in logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_and_doubles_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    survives_repeated_kill_9(&format!("sqlite://{}", dir.path().join("crash.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_and_doubles_nothing_on_mariadb() {
    let url = mysql::create_scratch_database(&mysql_server(), "crash_test").await.unwrap();
    survives_repeated_kill_9(&url).await;
    mysql::drop_scratch_database(&url).await.unwrap();
}
