//! End-to-end throughput of the processor, beside the broker's raw pipe.
//!
//! Preloads N transactions, then measures, in one run on one broker:
//!   pipe    consume N + produce N with no processing (the broker's own cost)
//!   sqlite  the processor binary until every result is published
//!   mysql   the same on MySQL/MariaDB
//!   pipe    again, to bracket the noise of a shared machine
//! and prints transactions/s, the ratio to the mean pipe, and peak RSS.
//!
//!   cargo build --release -p processor -p benches
//!   target/release/e2e --messages 200000

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use benches::kafka::{create_topic, producer, send_all};
use benches::workload;
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;

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
}

struct Run {
    name: String,
    seconds: f64,
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

    let pipes: Vec<f64> = runs.iter().filter(|r| r.name.starts_with("pipe")).map(|r| r.seconds).collect();
    let pipe_mean = pipes.iter().sum::<f64>() / pipes.len() as f64;
    println!("\nN = {} transactions, {} partitions, batch size {}", args.messages, args.partitions, args.batch_size);
    println!("{:<10} {:>9} {:>12} {:>16} {:>14}", "run", "seconds", "tx/s", "pipe time/run", "peak RSS MiB");
    for r in &runs {
        println!(
            "{:<10} {:>9.2} {:>12.0} {:>16.2} {:>14}",
            r.name,
            r.seconds,
            args.messages as f64 / r.seconds,
            pipe_mean / r.seconds,
            r.peak_rss_kib.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "-".into()),
        );
    }
    println!("(pipe time/run: mean raw-pipe time divided by this run's time; 1.00 = as fast as the broker's own pipe)");
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
    consumer.subscribe(&[input])?;
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
    eprintln!("pipe #{n}: {seconds:.2}s (first message after {:.2}s)", first_at.unwrap_or_default().as_secs_f64());
    Ok(Run { name: format!("pipe #{n}"), seconds, peak_rss_kib: None })
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
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("processor exited early: {status}");
        }
        if published(&metrics_url).await.unwrap_or(0) >= args.messages as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_kib = peak_rss_kib(pid);
    child.kill().await?;
    // The counter says published; the database must agree, one row per id.
    let rows = transaction_store::open(database_url).await?.count().await?;
    anyhow::ensure!(rows == args.messages as u64, "{name}: {rows} rows stored for {} messages", args.messages);
    eprintln!("{name}: {seconds:.2}s");
    Ok(Run { name: name.to_owned(), seconds, peak_rss_kib })
}

/// `processor_results_published_total`, read from the processor's /metrics.
async fn published(url: &str) -> anyhow::Result<u64> {
    let out = tokio::process::Command::new("curl").args(["-sf", url]).output().await?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("processor_results_published_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0))
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
