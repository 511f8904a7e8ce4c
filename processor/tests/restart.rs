//! The processor SIGKILLed and restarted again and again while
//! transactions flow in, against the durable local broker (tansu with
//! SQLite storage, the one `scripts/run-local` uses), which is itself
//! killed and restarted once mid-run. After every restart the processor
//! must make progress again; at the end every id is stored exactly once and
//! published.
//!
//! The broker is testkit's durable `PrivateBroker` (`TANSU_DURABLE`, or the
//! one `scripts/broker` built); without one the same loop runs against the
//! shared memory broker (and the broker is not restarted), which the test
//! says on stderr.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::Rng;
use support::*;
use testkit::PrivateBroker;
use tokio::process::{Child, Command};
use transaction_store::TransactionRepository;

const N: usize = 12_000;
/// Restarts in one run (`RESTART_TEST_RESTARTS` to try more); each takes a
/// few seconds, mostly the group noticing the killed member.
fn restarts_wanted() -> usize {
    std::env::var("RESTART_TEST_RESTARTS").ok().and_then(|v| v.parse().ok()).unwrap_or(12)
}
/// Longest a new incarnation may take to store something while a backlog
/// waits (group join on the local broker included).
const PROGRESS_LIMIT: Duration = Duration::from_secs(40);

fn spawn_processor(brokers: &str, topics: &Topics, url: &str, group: &str, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_processor"))
        .env("KAFKA_BROKERS", brokers)
        .env("DATABASE_URL", url)
        .env("TRANSACTIONS_TOPIC", &topics.transactions)
        .env("RESULTS_TOPIC", &topics.results)
        .env("DLQ_TOPIC", &topics.dlq)
        .env("CONSUMER_GROUP", group)
        .env("BATCH_SIZE", "500")
        .env("BATCH_WAIT_MS", "20")
        .env("KAFKA_SESSION_TIMEOUT_MS", "3000")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("CARD_HASH_KEY", "restart-test-card-hash-key")
        .env("CARD_ENCRYPTION_KEYS", testkit::TEST_CARD_KEYRING)
        .env("CVV_ENCRYPTION_KEYS", testkit::TEST_CVV_KEYRING)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("processor binary starts")
}

/// Polls until the stored count exceeds `above` or `limit` passes.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_processor_always_makes_progress_again() {
    let mut broker = PrivateBroker::start_durable().await;
    match &broker {
        Some(b) => eprintln!("durable broker at {}", b.address()),
        None => eprintln!("no durable tansu (TANSU_DURABLE): running against the memory broker {}", brokers()),
    }
    let brokers = broker.as_ref().map_or_else(brokers, PrivateBroker::address);
    let topics = create_topics_at(&brokers, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("restart.db").display());
    let repo = transaction_store::open(&url).await.unwrap();
    let prefix = unique("rs");
    let messages: Vec<_> = (0..N).map(|i| approvable(&format!("{prefix}-{i}"))).collect();
    let group = unique("restart-group");
    let log = std::env::temp_dir().join(format!("{}.log", unique("restart-processor")));
    eprintln!("processor log: {}", log.display());

    // A first part up front, the rest flowing in while the processor is
    // killed and restarted.
    produce_at(&brokers, &topics.transactions, &messages[..N / 4]).await;
    let producing = {
        let (brokers, topic, rest) = (brokers.clone(), topics.transactions.clone(), messages[N / 4..].to_vec());
        tokio::spawn(async move {
            // About 120 a second: the flow lasts through the restarts.
            for chunk in rest.chunks(60) {
                produce_at(&brokers, &topic, chunk).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    let mut rng = rand::thread_rng();
    let mut stored = 0;
    let mut restarts = 0;
    let mut stalls = Vec::new();
    let wanted = restarts_wanted();
    while restarts < wanted && (stored as usize) < N {
        if restarts == wanted / 2 {
            if let Some(b) = broker.as_mut() {
                b.kill().await;
                b.restart().await;
                eprintln!("broker restarted");
            }
        }
        let mut child = spawn_processor(&brokers, &topics, &url, &group, &log);
        let started = Instant::now();
        let now = wait_for_progress(repo.as_ref(), stored, PROGRESS_LIMIT).await;
        if now == stored {
            stalls.push(restarts);
            eprintln!("restart #{restarts}: no progress in {PROGRESS_LIMIT:?} ({stored} stored)");
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1500))).await;
        child.start_kill().expect("SIGKILL");
        child.wait().await.unwrap();
        restarts += 1;
        stored = repo.count().await.unwrap();
        eprintln!("restart #{restarts}: resumed after {:?}, {stored} stored", started.elapsed());
    }
    producing.await.unwrap();
    assert!(stalls.is_empty(), "the processor made no progress after restarts {stalls:?}; log: {}", log.display());
    assert!(restarts >= wanted.min(10), "the run finished before {} restarts ({restarts})", wanted.min(10));

    let mut child = spawn_processor(&brokers, &topics, &url, &group, &log);
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let collected = collect_ids_at(&brokers, &topics.results, &ids, Duration::from_secs(240)).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.unwrap();
    if let Some(b) = broker.as_mut() {
        b.kill().await;
    }
    assert_eq!(repo.count().await.unwrap(), N as u64, "each id stored exactly once");
    let published = collected.results();
    assert_eq!(published.len(), N, "each id published");
    eprintln!(
        "{restarts} restarts ({}): every id stored once and published; {} results republished",
        if broker.is_some() { "durable broker, restarted once" } else { "memory broker" },
        collected.messages.len() - N
    );
}
