//! Load generator: runs the API (SQLite, local broker) and a plain axum
//! endpoint in this process, drives both with many concurrent connections,
//! and reports requests/s and latency percentiles for the plain endpoint,
//! single posts and batch posts, with the ratio to the plain endpoint.
//!
//!   cargo run --release -p api --bin loadgen -- --connections 64 --seconds 10

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use api::account_admin::AccountAdmin;
use api::startup::secret_hasher;
use api::{Application, Config};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "loadgen", about = "Drive the ingest API and a plain endpoint; report throughput and latency")]
struct Args {
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    kafka_brokers: String,
    /// Concurrent connections (one in-flight request each).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Duration of each scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Transactions per batch request.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Partitions of the scratch topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Database URL; default a scratch SQLite file in the temp directory.
    #[arg(long)]
    database_url: Option<String>,
}

struct Scenario {
    name: &'static str,
    url: String,
    body: Value,
    /// Transactions per request.
    items: usize,
    expect: u16,
}

struct Report {
    name: &'static str,
    requests: usize,
    errors: usize,
    items: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Report {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

fn transaction() -> Value {
    json!({
        "credit_card_number": "4111111111111111",
        "credit_card_name": "Load Test",
        "credit_card_expiration_month": 12,
        "credit_card_expiration_year": 2035,
        "credit_card_cvv": "123",
        "amount": "10.50"
    })
}

async fn run(client: &reqwest::Client, auth: &str, s: &Scenario, connections: usize, duration: Duration) -> Report {
    let body = Arc::new(serde_json::to_vec(&s.body).unwrap_or_default());
    let start = Instant::now();
    let deadline = start + duration;
    let workers = (0..connections).map(|_| {
        let (client, body, url, auth) = (client.clone(), Arc::clone(&body), s.url.clone(), auth.to_owned());
        let expect = s.expect;
        tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let r = client
                    .post(&url)
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) => r.status().as_u16() == expect && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                latencies.push(t0.elapsed());
                errors += usize::from(!ok);
            }
            (latencies, errors)
        })
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in futures::future::join_all(workers).await.into_iter().flatten() {
        latencies.extend(w.0);
        errors += w.1;
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let requests = latencies.len();
    Report { name: s.name, requests, errors, items: (requests - errors) * s.items, elapsed, latencies }
}

async fn plain_server(shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    // The same work minus the API: read a JSON body, answer 202 with JSON.
    let app = Router::new().route(
        "/plain",
        post(|body: axum::body::Bytes| async move {
            let ok = serde_json::from_slice::<Value>(&body).is_ok();
            (axum::http::StatusCode::ACCEPTED, axum::Json(json!({ "ok": ok })))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
    });
    Ok(addr)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("loadgen-{suffix}");
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &args.kafka_brokers).create()?;
    for r in admin
        .create_topics(&[NewTopic::new(&topic, args.partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await?
    {
        r.map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
    }
    let db_path = std::env::temp_dir().join(format!("loadgen-{suffix}.db"));
    let database_url = args.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", db_path.display()));

    let mut config = Config::local(&database_url, &topic);
    config.kafka_brokers = args.kafka_brokers.clone();
    config.secret_hash_key = Some("loadgen-secret-hash-key".into());
    config.rate_limit_per_second = 1e9;
    config.rate_limit_burst = 1e9;
    let shutdown = CancellationToken::new();
    let app = Application::build(config, &shutdown).await.context("building the api")?;
    let api_port = app.http_port();
    let token = shutdown.clone();
    let server = tokio::spawn(async move { app.run_until_stopped(token).await });
    let plain = plain_server(shutdown.clone()).await?;

    let store = transaction_store::open_api_store(&database_url).await?;
    let accounts =
        AccountAdmin { repo: store.accounts.clone(), hasher: secret_hasher(Some("loadgen-secret-hash-key"))? };
    let created = accounts.create("loadgen", "Load generator").await?;
    let auth = format!("Basic {}", STANDARD.encode(format!("loadgen:{}", created.secret)));

    let client = reqwest::Client::builder().pool_max_idle_per_host(args.connections).build()?;
    let api = format!("http://127.0.0.1:{api_port}");
    let batch: Vec<Value> = (0..args.batch_size).map(|_| transaction()).collect();
    let scenarios = [
        Scenario {
            name: "plain axum",
            url: format!("http://{plain}/plain"),
            body: transaction(),
            items: 1,
            expect: 202,
        },
        Scenario {
            name: "POST /v1/transactions",
            url: format!("{api}/v1/transactions"),
            body: transaction(),
            items: 1,
            expect: 202,
        },
        Scenario {
            name: "POST /v1/transactions/batch",
            url: format!("{api}/v1/transactions/batch"),
            body: json!({ "transactions": batch }),
            items: args.batch_size,
            expect: 200,
        },
    ];
    let duration = Duration::from_secs(args.seconds);
    // Warm up connections and the broker's partitions.
    let _ = run(&client, &auth, &scenarios[1], args.connections, Duration::from_secs(1)).await;

    let mut reports = Vec::new();
    for s in &scenarios {
        reports.push(run(&client, &auth, s, args.connections, duration).await);
    }
    println!(
        "connections={} seconds={} batch_size={} database={}",
        args.connections,
        args.seconds,
        args.batch_size,
        transaction_store::redact_url(&database_url)
    );
    println!(
        "{:<28} {:>9} {:>7} {:>10} {:>12} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "scenario", "requests", "errors", "req/s", "tx/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "vs plain"
    );
    let plain_rps = reports[0].rps();
    for r in &reports {
        println!(
            "{:<28} {:>9} {:>7} {:>10.0} {:>12.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.3}x",
            r.name,
            r.requests,
            r.errors,
            r.rps(),
            r.items as f64 / r.elapsed.as_secs_f64(),
            ms(r.percentile(0.5)),
            ms(r.percentile(0.9)),
            ms(r.percentile(0.99)),
            ms(r.percentile(1.0)),
            r.rps() / plain_rps
        );
    }
    shutdown.cancel();
    let _ = server.await;
    if args.database_url.is_none() {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db_path.display()));
        }
    }
    Ok(())
}
