//! End-to-end throughput of the processor, beside the broker's raw pipe.
//!
//! Preloads N transactions, then measures, in one run on one broker:
//!   pipe    consume N + produce N with no processing (the broker's own cost)
//!   sqlite  the processor binary until every result is published
//!   mysql   the same on MySQL/MariaDB
//!   pipe    again, to bracket the noise of a shared machine
//! and prints, for each, the steady rate (transactions/s from the first
//! output to the last), the wall time from start, the ratio of each
//! processor run's steady rate to the mean pipe's, and the processor's peak
//! RSS (`VmHWM` of the child, read just before it is stopped).
//!
//! Steady rates, because start-up is not throughput: joining a consumer
//! group on the local broker takes seconds (more with the broker's default
//! session timeout), which would swamp a 200,000-message run. The pipe
//! reads its partitions by assignment, with no group to join; each
//! processor run is timed from its first published batch (that batch's
//! results are not counted), the pipe from its first consumed message.
//!
//!   cargo build --release -p processor -p benches --bin processor --bin e2e
//!   target/release/e2e --messages 200000

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use benches::kafka::{create_topic, producer, send_all};
use benches::workload;
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200_000)]
    messages: usize,
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, env = "TEST_MYSQL_URL", default_value = "mysql://root@127.0.0.1:3306")]
    mysql_server: String,
    /// The processor binary to run (a release build).
    #[arg(long, default_value = "target/release/processor")]
    processor: PathBuf,
    #[arg(long, default_value_t = 2000)]
    batch_size: usize,
    /// Skip the MySQL run.
    #[arg(long)]
    no_mysql: bool,
    /// Write each processor run's final /metrics to DIR/<run>.metrics
    /// (stage durations, batch sizes: where the time went).
    #[arg(long)]
    metrics_dir: Option<PathBuf>,
}

struct Run {
    name: String,
    /// From the start of the run (spawn, or subscribe) to the last output.
    seconds: f64,
    /// Transactions per second from the first output to the last.
    steady_rate: f64,
    peak_rss_kib: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let input = format!("bench-tx-{tag}");
    create_topic(&args.brokers, &input, args.partitions).await?;

    let preload_started = Instant::now();
    let mut rng = rand::thread_rng();
    let messages: Vec<(String, Vec<u8>)> = (0..args.messages)
        .map(|i| {
            let m = workload::transaction(&mut rng, format!("{tag}-{i}"), "bench-merchant");
            (m.id.clone(), serde_json::to_vec(&m).expect("serialises"))
        })
        .collect();
    send_all(&producer(&args.brokers)?, &input, &messages).await?;
    drop(messages);
    eprintln!("preloaded {} messages in {:.1}s", args.messages, preload_started.elapsed().as_secs_f64());

    let mut runs = Vec::new();
    runs.push(pipe(&args, &input, &tag, 1).await?);
    let dir = std::env::temp_dir().join(format!("e2e-{tag}"));
    std::fs::create_dir_all(&dir)?;
    let sqlite_url = format!("sqlite://{}", dir.join("bench.db").display());
    runs.push(processor(&args, &input, &tag, "sqlite", &sqlite_url).await?);
    if !args.no_mysql {
        let url = transaction_store::mysql::create_scratch_database(&args.mysql_server, "bench").await?;
        let run = processor(&args, &input, &tag, "mysql", &url).await;
        transaction_store::mysql::drop_scratch_database(&url).await?;
        runs.push(run?);
    }
    runs.push(pipe(&args, &input, &tag, 2).await?);
    let _ = std::fs::remove_dir_all(&dir);

    let pipes: Vec<f64> = runs.iter().filter(|r| r.name.starts_with("pipe")).map(|r| r.steady_rate).collect();
    let pipe_rate = pipes.iter().sum::<f64>() / pipes.len() as f64;
    println!("\nN = {} transactions, {} partitions, batch size {}", args.messages, args.partitions, args.batch_size);
    println!("{:<10} {:>12} {:>12} {:>12} {:>14}", "run", "steady tx/s", "wall s", "ratio", "peak RSS MiB");
    for r in &runs {
        println!(
            "{:<10} {:>12.0} {:>12.2} {:>12.2} {:>14}",
            r.name,
            r.steady_rate,
            r.seconds,
            r.steady_rate / pipe_rate,
            r.peak_rss_kib.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "-".into()),
        );
    }
    println!("(ratio: this run's steady rate over the mean raw pipe's, {pipe_rate:.0} tx/s; 1.00 = as fast as the broker's own pipe)");
    for r in runs.iter().filter(|r| !r.name.starts_with("pipe")) {
        println!(
            "processor {}: {:.2}x the raw pipe, peak RSS {}",
            r.name,
            r.steady_rate / pipe_rate,
            r.peak_rss_kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "unknown".into()),
        );
    }
    Ok(())
}

/// Consume N and produce N with no processing, waiting for every delivery.
async fn pipe(args: &Args, input: &str, tag: &str, n: usize) -> anyhow::Result<Run> {
    let output = format!("bench-pipe-{tag}-{n}");
    create_topic(&args.brokers, &output, args.partitions).await?;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", format!("bench-pipe-{tag}-{n}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        // The processor's fetch tuning: a fair baseline uses the same client
        // settings (tansu holds a fetch up to this wait).
        .set("fetch.wait.max.ms", "100")
        .create()?;
    let producer = producer(&args.brokers)?;
    let started = Instant::now();
    // Assigned, not subscribed: the broker's pipe, without a group join.
    let mut assignment = TopicPartitionList::new();
    for partition in 0..args.partitions {
        assignment.add_partition_offset(input, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut chunk: Vec<(String, Vec<u8>)> = Vec::with_capacity(args.batch_size);
    let mut pending = Vec::new();
    let mut seen = 0;
    let mut first_at = None;
    while seen < args.messages {
        let m = consumer.recv().await?;
        first_at.get_or_insert_with(|| started.elapsed());
        chunk.push((
            String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            m.payload().unwrap_or_default().to_vec(),
        ));
        seen += 1;
        if chunk.len() == args.batch_size || seen == args.messages {
            let batch = std::mem::take(&mut chunk);
            let producer = producer.clone();
            let output = output.clone();
            pending.push(tokio::spawn(async move { send_all(&producer, &output, &batch).await }));
        }
    }
    let consumed_at = started.elapsed();
    for p in pending {
        p.await??;
    }
    eprintln!("pipe #{n}: all consumed after {:.2}s", consumed_at.as_secs_f64());
    let seconds = started.elapsed().as_secs_f64();
    let first = first_at.unwrap_or_default().as_secs_f64();
    eprintln!("pipe #{n}: {seconds:.2}s (first message after {first:.2}s)");
    let steady_rate = (args.messages.saturating_sub(1)) as f64 / (seconds - first).max(f64::EPSILON);
    Ok(Run { name: format!("pipe #{n}"), seconds, steady_rate, peak_rss_kib: None })
}

/// Runs the processor binary until it has published a result for every message.
async fn processor(args: &Args, input: &str, tag: &str, name: &str, database_url: &str) -> anyhow::Result<Run> {
    let results = format!("bench-res-{tag}-{name}");
    let dlq = format!("bench-dlq-{tag}-{name}");
    create_topic(&args.brokers, &results, args.partitions).await?;
    create_topic(&args.brokers, &dlq, 1).await?;
    let port = free_port()?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&args.processor)
        .env("KAFKA_BROKERS", &args.brokers)
        .env("DATABASE_URL", database_url)
        .env("TRANSACTIONS_TOPIC", input)
        .env("RESULTS_TOPIC", &results)
        .env("DLQ_TOPIC", &dlq)
        .env("CONSUMER_GROUP", format!("bench-{tag}-{name}"))
        .env("BATCH_SIZE", args.batch_size.to_string())
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("CARD_HASH_KEY", "benchmark-card-hash-key")
        .env("CARD_ENCRYPTION_KEYS", "bench:YmVuY2htYXJrLWNhcmQta2V5cmluZy0zMi1ieXRlcyE=")
        .env("CVV_ENCRYPTION_KEYS", "benchcvv:YmVuY2htYXJrLWN2di1rZXlyaW5nLTMyLWJ5dGVzISE=")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!("starting {} (build it with cargo build --release -p processor)", args.processor.display())
        })?;
    let pid = child.id().context("processor pid")?;
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    // In-process and kept alive: a curl process every 20 ms took about a
    // quarter of the machine's CPU samples away from the run it measured.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    // (seconds since spawn, results published) when a first batch is out.
    let mut first: Option<(f64, u64)> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("processor exited early: {status}");
        }
        let n = published(&http, &metrics_url).await.unwrap_or(0);
        if n > 0 && first.is_none() {
            first = Some((started.elapsed().as_secs_f64(), n));
        }
        if n >= args.messages as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_kib = peak_rss_kib(pid);
    if let Some(dir) = &args.metrics_dir {
        let text = metrics(&http, &metrics_url).await?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(format!("{name}.metrics")), text)?;
    }
    let (first_at, first_n) = first.unwrap_or((0.0, 0));
    // All in one batch: no steady rate to speak of; count the whole run.
    let steady_rate = if first_n >= args.messages as u64 {
        args.messages as f64 / seconds
    } else {
        (args.messages as u64 - first_n) as f64 / (seconds - first_at).max(f64::EPSILON)
    };
    child.kill().await?;
    // The counter says published; the database must agree, one row per id.
    let rows = transaction_store::open(database_url).await?.count().await?;
    anyhow::ensure!(rows == args.messages as u64, "{name}: {rows} rows stored for {} messages", args.messages);
    eprintln!("{name}: {seconds:.2}s (first {first_n} results after {first_at:.2}s)");
    Ok(Run { name: name.to_owned(), seconds, steady_rate, peak_rss_kib })
}

/// `processor_results_published_total`, read from the processor's /metrics.
async fn published(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let text = metrics(http, url).await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("processor_results_published_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0))
}

async fn metrics(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    Ok(http.get(url).send().await?.error_for_status()?.text().await?)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
