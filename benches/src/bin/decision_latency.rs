//! A merchant's view of latency: from the API's `POST /v1/transactions`
//! with `Prefer: wait=10` to the decision in its response, at steady
//! (open-loop) rates, through the release API and processor binaries, the
//! broker and one SQLite file they share.
//!
//!   cargo build --release -p api -p processor -p benches
//!   target/release/decision_latency --rates 1000,10000 --seconds 10
//!
//! Prints, per rate: requests sent, answered with the decision (201),
//! pending after the wait (202), failed, and latency p50/p99/max of the
//! decided ones. Latency counts from the moment a request was due, not when
//! a connection was free (no coordinated omission); at most `--connections`
//! requests are in flight. The load generator shares the machine with
//! everything it measures; at a rate the machine cannot sustain, latency
//! grows with the queue and the figures say so.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use benches::kafka::create_topic;
use benches::steady::{at_steady_rate, p50_p99_max_ms};
use clap::Parser;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

#[derive(Parser)]
struct Args {
    /// Steady rates to measure, transactions per second.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    rates: Vec<u32>,
    /// Seconds at each rate.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Most requests in flight (connections) at once.
    #[arg(long, default_value_t = 512)]
    connections: usize,
    /// The processor's `KAFKA_OPTIONS` (`k=v;k=v`), e.g. to try another
    /// `fetch.wait.max.ms`.
    #[arg(long, default_value = "")]
    processor_kafka_options: String,
}

const CARD_KEYS: &str = "bench:YmVuY2gtb25seS1jYXJkLWtleXJpbmctMzJieXRlcyE=";
const CVV_KEYS: &str = "benchcvv:YmVuY2htYXJrLWN2di1rZXlyaW5nLTMyLWJ5dGVzISE=";
const SECRET_HASH_KEY: &str = "bench-only-secret-hash-key-0123456789";
const BODY: &str = r#"{"credit_card_number":"4111111111111111","credit_card_name":"Bench","credit_card_expiration_month":12,"credit_card_expiration_year":2035,"credit_card_cvv":"123","amount":"10.50"}"#;

#[derive(Default)]
struct Tally {
    decided: Vec<Duration>,
    pending: u64,
    failed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (tx, results, dlq) = (format!("lat-tx-{tag}"), format!("lat-res-{tag}"), format!("lat-dlq-{tag}"));
    for topic in [&tx, &results] {
        create_topic(&args.brokers, topic, args.partitions).await?;
    }
    create_topic(&args.brokers, &dlq, 1).await?;
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let env = |cmd: &mut Command| {
        cmd.env("KAFKA_BROKERS", &args.brokers)
            .env("DATABASE_URL", &database_url)
            .env("TRANSACTIONS_TOPIC", &tx)
            .env("RESULTS_TOPIC", &results)
            .env("CARD_ENCRYPTION_KEYS", CARD_KEYS)
            .env("CVV_ENCRYPTION_KEYS", CVV_KEYS)
            .env("SECRET_HASH_KEY", SECRET_HASH_KEY)
            .env("GATEWAY_DEVELOPMENT", "true")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
    };

    let secret = create_account(&args.bin_dir, env).await?;
    let port = free_port()?;
    let admin_port = free_port()?;
    let mut api = Command::new(args.bin_dir.join("api"));
    env(&mut api);
    api.arg("serve")
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("ADMIN_HTTP_ADDR", format!("127.0.0.1:{admin_port}"))
        .env("MAX_DECISION_WAIT_MS", "10000")
        .env("RATE_LIMIT_PER_SECOND", "1000000")
        .env("RATE_LIMIT_BURST", "1000000")
        .env("HTTP_MAX_CONCURRENT_REQUESTS", "100000");
    let _api = api.spawn().context("starting the api binary")?;
    let mut processor = Command::new(args.bin_dir.join("processor"));
    env(&mut processor);
    processor
        .env("DLQ_TOPIC", &dlq)
        .env("CONSUMER_GROUP", format!("lat-{tag}"))
        .env("CARD_HASH_KEY", "bench-only-card-hash-key")
        .env("HTTP_ADDR", "127.0.0.1:0");
    if !args.processor_kafka_options.is_empty() {
        processor.env("KAFKA_OPTIONS", &args.processor_kafka_options);
    }
    let _processor: Child = processor.spawn().context("starting the processor binary")?;

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.connections).build()?;
    let auth = format!("Basic {}", STANDARD.encode(format!("bench-merchant:{secret}")));
    wait_healthy(&client, &base).await?;
    // Until the processor has joined its group and decides: the first
    // decision inline.
    let warm = Instant::now();
    loop {
        let tally = run_rate(&client, &base, &auth, 20, Duration::from_millis(500), 64).await;
        if tally.lock().await.decided.len() >= 5 {
            break;
        }
        anyhow::ensure!(warm.elapsed() < Duration::from_secs(60), "the processor never decided");
    }

    println!("rate_tx_s  sent  decided  pending  failed  p50_ms  p99_ms  max_ms");
    for &rate in &args.rates {
        let started = Instant::now();
        let tally = run_rate(&client, &base, &auth, rate, Duration::from_secs(args.seconds), args.connections).await;
        let elapsed = started.elapsed();
        let mut t = tally.lock().await;
        let [p50, p99, max] = p50_p99_max_ms(&mut t.decided);
        let sent = t.decided.len() as u64 + t.pending + t.failed;
        println!(
            "{rate:>9}  {sent:>5}  {:>7}  {:>7}  {:>6}  {:>6.1}  {:>6.1}  {:>6.1}   ({:.1} s incl. drain)",
            t.decided.len(),
            t.pending,
            t.failed,
            p50,
            p99,
            max,
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// Sends `rate` requests a second for `length`, each on its own task,
/// without waiting for answers (open loop); returns once all are answered.
async fn run_rate(
    client: &reqwest::Client,
    base: &str,
    auth: &str,
    rate: u32,
    length: Duration,
    connections: usize,
) -> Arc<Mutex<Tally>> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let slots = Arc::new(tokio::sync::Semaphore::new(connections));
    let total = (u64::from(rate) * length.as_millis() as u64 / 1000).max(1);
    let mut tasks = Vec::with_capacity(total as usize);
    at_steady_rate(rate, total, |_| {
        let request = client
            .post(format!("{base}/v1/transactions"))
            .header("authorization", auth)
            .header("prefer", "wait=10")
            .header("content-type", "application/json")
            .body(BODY);
        let (tally, slots) = (Arc::clone(&tally), Arc::clone(&slots));
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let _slot = slots.acquire_owned().await;
            let outcome = request.send().await;
            let latency = t0.elapsed();
            let mut t = tally.lock().await;
            match outcome.map(|r| r.status().as_u16()) {
                Ok(201) => t.decided.push(latency),
                Ok(202) => t.pending += 1,
                _ => t.failed += 1,
            }
        }));
    })
    .await;
    for task in tasks {
        let _ = task.await;
    }
    tally
}

async fn create_account(bin_dir: &Path, env: impl Fn(&mut Command)) -> anyhow::Result<String> {
    let mut cmd = Command::new(bin_dir.join("api"));
    env(&mut cmd);
    let out = cmd
        .args(["accounts", "create", "--id", "bench-merchant", "--name", "Bench"])
        .stdout(Stdio::piped())
        .output()
        .await
        .context("api accounts create")?;
    anyhow::ensure!(out.status.success(), "api accounts create failed");
    let created: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    created["secret"].as_str().map(str::to_owned).context("no secret printed")
}

async fn wait_healthy(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the API did not become healthy")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
