//! The notifier binary SIGKILLed again and again while decisions stream
//! in and are delivered: afterwards every decision has reached the
//! merchant's receiver (at least once, same webhook-id) and every delivery
//! is recorded as delivered.

mod support;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use notifier::event::{event_id, EVENT_APPROVED, EVENT_REJECTED};
use rand::Rng;
use support::*;
use tokio::process::{Child, Command};
use transaction_store::webhooks::DeliveryStatus;

const N: usize = 4000;
const KILLS: usize = 6;

fn spawn_notifier(url: &str, topic: &str, group: &str, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_notifier"))
        .env("KAFKA_BROKERS", brokers())
        .env("DATABASE_URL", url)
        .env("RESULTS_TOPIC", topic)
        .env("CONSUMER_GROUP", group)
        .env("BATCH_SIZE", "200")
        .env("BATCH_WAIT_MS", "20")
        .env("KAFKA_SESSION_TIMEOUT_MS", "2000")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("WEBHOOK_ALLOW_LOOPBACK_HTTP", "true")
        .env("ATTEMPT_TIMEOUT_MS", "1000")
        .env("RETRY_SCHEDULE", "1s,2s,4s,8s")
        .env("POLL_INTERVAL_MS", "100")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("notifier binary starts")
}

async fn nothing_is_left_undelivered_after_repeated_kill_9(url: &str) {
    let url = url.to_owned();
    let topic = unique("res");
    testkit::create_topics(&[(&topic, 3)]).await;
    let repo = transaction_store::open_webhooks(&url).await.unwrap();
    let (a, b) = (unique("shop-a"), unique("shop-b"));
    let ra = Receiver::start().await;
    let rb = Receiver::start().await;
    let ea = endpoint(repo.as_ref(), &a, &ra.url, &[EVENT_APPROVED, EVENT_REJECTED]).await;
    let eb = endpoint(repo.as_ref(), &b, &rb.url, &[EVENT_APPROVED, EVENT_REJECTED]).await;
    ra.add_secret(&ea.secret);
    rb.add_secret(&eb.secret);
    let results: Vec<_> = (0..N).map(|i| result(&unique("tx"), if i % 2 == 0 { &a } else { &b }, i)).collect();
    let expected: HashSet<String> = results.iter().map(|r| event_id(&r.id)).collect();
    let delivered = || {
        let mut got = ra.delivered_ids();
        got.extend(rb.delivered_ids());
        got
    };

    let log = std::env::temp_dir().join(format!("{}.log", unique("crash-notifier")));
    eprintln!("notifier log: {}", log.display());
    let group = unique("crash-group");
    // Decisions keep arriving while the notifier is killed: produced in
    // slices between the kills.
    let slices: Vec<_> = results.chunks(N / (KILLS + 1) + 1).collect();
    let mut rng = rand::thread_rng();
    for k in 0..KILLS {
        if let Some(slice) = slices.get(k) {
            produce_results(&topic, slice).await;
        }
        let mut child = spawn_notifier(&url, &topic, &group, &log);
        let before = delivered().len();
        // Let it make some progress, then kill it mid-stream.
        let started = Instant::now();
        while delivered().len() <= before && started.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..400))).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        eprintln!("kill {}: {} of {N} delivered", k + 1, delivered().len());
    }
    for slice in slices.iter().skip(KILLS) {
        produce_results(&topic, slice).await;
    }
    let mut child = spawn_notifier(&url, &topic, &group, &log);
    // Deliveries leased by a killed process are retried once the lease
    // (attempt timeout x 5 + 5 s) has passed.
    let all = wait_until(Duration::from_secs(90), || expected.iter().all(|id| delivered().contains(id))).await;
    let got = delivered();
    let missing: Vec<_> = expected.iter().filter(|id| !got.contains(*id)).take(5).collect();
    assert!(all, "{} of {N} undelivered, e.g. {missing:?}", expected.iter().filter(|id| !got.contains(*id)).count());
    assert!(ra.received().iter().chain(rb.received().iter()).all(|r| r.verified_by == vec![0]));
    // A delivery whose 2xx came just before a kill has its outcome unwritten:
    // its row is still pending, and the restarted notifier delivers it again
    // once its lease (attempt timeout x 5 + 5 s) has passed.
    let mut rows = Vec::new();
    for _ in 0..600 {
        rows = repo.list_deliveries(&account(&a), &ea.id, None, N).await.unwrap();
        rows.extend(repo.list_deliveries(&account(&b), &eb.id, None, N).await.unwrap());
        if rows.iter().all(|d| d.status == DeliveryStatus::Delivered) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    assert_eq!(rows.len(), N, "one outbox row per decision and endpoint, never doubled");
    let pending = rows.iter().filter(|d| d.status != DeliveryStatus::Delivered).count();
    assert_eq!(pending, 0, "every outbox row ends delivered");
    let received = ra.received().len() + rb.received().len();
    eprintln!("{N} decisions, {received} requests received (repeats caused by the kills: {})", received - N);
    ra.stop();
    rb.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_left_undelivered_after_repeated_kill_9_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    nothing_is_left_undelivered_after_repeated_kill_9(&sqlite_url(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_left_undelivered_after_repeated_kill_9_on_mariadb() {
    let url = transaction_store::mysql::create_scratch_database(&mysql_server(), "notifier_crash").await.unwrap();
    nothing_is_left_undelivered_after_repeated_kill_9(&url).await;
    transaction_store::mysql::drop_scratch_database(&url).await.unwrap();
}
