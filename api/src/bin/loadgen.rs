//! Load generator: runs the API (SQLite, local broker) and a plain axum
//! endpoint in this process, drives both with many concurrent connections,
//! and reports requests/s and latency percentiles for the plain endpoint,
//! single posts, batch posts and single posts with `Prefer: wait=N`, with
//! the ratio to the plain endpoint.
//!
//! The `Prefer: wait` scenario runs against a second API instance on a
//! fresh topic with a processor (this process) deciding it, so the wait
//! can end with the decision; the other scenarios run without a processor.
//!
//!   cargo run --release -p api --bin loadgen -- --connections 64 --seconds 10

use std::net::SocketAddr;
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
    /// Seconds asked for in the `Prefer: wait=N` scenario.
    #[arg(long, default_value_t = 5)]
    wait: u64,
    /// Extra librdkafka producer properties of the API (`key=value`,
    /// repeatable), e.g. `--kafka-option linger.ms=5`.
    #[arg(long = "kafka-option")]
    kafka_options: Vec<String>,
}

struct Scenario {
    name: &'static str,
    url: String,
    body: Value,
    /// Extra request headers.
    headers: Vec<(&'static str, String)>,
    /// Transactions per request.
    items: usize,
    /// Statuses that count as success; the first is the one counted apart
    /// (201: decided within the wait).
    expect: &'static [u16],
}

struct Report {
    name: &'static str,
    requests: usize,
    errors: usize,
    /// Answers with the scenario's first expected status.
    first_status: usize,
    /// Whether `first_status` means something (more than one status
    /// expected: 201 decided within the wait, 202 not).
    decided_column: bool,
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
    let body = axum::body::Bytes::from(serde_json::to_vec(&s.body).unwrap_or_default());
    let start = Instant::now();
    let deadline = start + duration;
    let workers = (0..connections).map(|_| {
        let (client, body, url, auth) = (client.clone(), body.clone(), s.url.clone(), auth.to_owned());
        let (headers, expect) = (s.headers.clone(), s.expect);
        tokio::spawn(async move {
            let (mut latencies, mut errors, mut first) = (Vec::new(), 0usize, 0usize);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let mut request = client
                    .post(&url)
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(body.clone());
                for (name, value) in &headers {
                    request = request.header(*name, value);
                }
                let status = match request.send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        r.bytes().await.ok().map(|_| status)
                    }
                    Err(_) => None,
                };
                latencies.push(t0.elapsed());
                errors += usize::from(!status.is_some_and(|s| expect.contains(&s)));
                first += usize::from(status == expect.first().copied());
            }
            (latencies, errors, first)
        })
    });
    let (mut latencies, mut errors, mut first_status) = (Vec::new(), 0, 0);
    for w in futures::future::join_all(workers).await.into_iter().flatten() {
        latencies.extend(w.0);
        errors += w.1;
        first_status += w.2;
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let requests = latencies.len();
    let decided_column = s.expect.len() > 1;
    let items = (requests - errors) * s.items;
    Report { name: s.name, requests, errors, first_status, decided_column, items, elapsed, latencies }
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

/// A scratch topic on the broker.
async fn create_topic(admin: &AdminClient<DefaultClientContext>, name: &str, partitions: i32) -> anyhow::Result<()> {
    for r in admin
        .create_topics(&[NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await?
    {
        r.map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
    }
    Ok(())
}

/// A card keyring of this run's own, shared by the API and the processor.
fn scratch_keyring(id: &str) -> String {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    format!("{id}:{}", STANDARD.encode(key))
}

/// The card and CVV keyrings the API and processor of one run share.
struct Keyrings {
    card: String,
    cvv: String,
}

/// Starts an API instance on `topic`; its port.
async fn start_api(
    args: &Args,
    database_url: &str,
    topic: &str,
    keyring: &Keyrings,
    results: Option<&str>,
    shutdown: &CancellationToken,
) -> anyhow::Result<(u16, tokio::task::JoinHandle<()>)> {
    let mut config = Config::local(database_url, topic);
    if let Some(results) = results {
        // `Prefer: wait` on: decisions read from the processor's results.
        config.results_topic = results.into();
        config.max_decision_wait_ms = 10_000;
    }
    config.kafka_brokers = args.kafka_brokers.clone();
    config.secret_hash_key = Some(SECRET_HASH_KEY.into());
    config.card_encryption_keys = Some(keyring.card.clone());
    config.cvv_encryption_keys = Some(keyring.cvv.clone());
    config.rate_limit_per_second = 1e9;
    config.rate_limit_burst = 1e9;
    config.kafka_options = args.kafka_options.clone();
    let app = Application::build(config, shutdown).await.context("building the api")?;
    let port = app.http_port();
    let token = shutdown.clone();
    let server = tokio::spawn(async move {
        if let Err(e) = app.run_until_stopped(token).await {
            eprintln!("api stopped: {e}");
        }
    });
    Ok((port, server))
}

/// Starts a processor deciding `topic` into `results`, through its own
/// flags so that it is configured as in production.
async fn start_processor(
    args: &Args,
    database_url: &str,
    topic: &str,
    results: &str,
    keyring: &Keyrings,
    shutdown: &CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let group = format!("{topic}-group");
    let dlq = format!("{results}-dlq");
    let config = processor::Config::try_parse_from([
        "processor",
        "--kafka-brokers",
        args.kafka_brokers.as_str(),
        "--database-url",
        database_url,
        "--transactions-topic",
        topic,
        "--results-topic",
        results,
        "--dlq-topic",
        dlq.as_str(),
        "--consumer-group",
        group.as_str(),
        "--card-hash-key",
        "loadgen-card-hash-key",
        "--card-encryption-keys",
        keyring.card.as_str(),
        "--cvv-encryption-keys",
        keyring.cvv.as_str(),
        "--http-addr",
        "127.0.0.1:0",
    ])?;
    let app = processor::Application::build(config, shutdown).await.context("building the processor")?;
    let token = shutdown.clone();
    Ok(tokio::spawn(async move {
        if let Err(e) = app.run_until_stopped(token).await {
            eprintln!("processor stopped: {e}");
        }
    }))
}

const SECRET_HASH_KEY: &str = "loadgen-secret-hash-key";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (topic, wait_topic) = (format!("loadgen-{suffix}"), format!("loadgen-wait-{suffix}"));
    let results = format!("loadgen-res-{suffix}");
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &args.kafka_brokers).create()?;
    create_topic(&admin, &topic, args.partitions).await?;
    create_topic(&admin, &wait_topic, args.partitions).await?;
    create_topic(&admin, &results, args.partitions).await?;
    create_topic(&admin, &format!("{results}-dlq"), 1).await?;
    let db_path = std::env::temp_dir().join(format!("loadgen-{suffix}.db"));
    let database_url = args.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", db_path.display()));
    let keyring = Keyrings { card: scratch_keyring("loadgen"), cvv: scratch_keyring("loadgencvv") };

    let shutdown = CancellationToken::new();
    let (api_port, server) = start_api(&args, &database_url, &topic, &keyring, None, &shutdown).await?;
    let plain = plain_server(shutdown.clone()).await?;

    let store = transaction_store::open_api_store(&database_url).await?;
    let accounts = AccountAdmin { repo: store.accounts.clone(), hasher: secret_hasher(Some(SECRET_HASH_KEY))? };
    let created = accounts.create("loadgen", "Load generator").await?;
    let auth = format!("Basic {}", STANDARD.encode(format!("loadgen:{}", created.secret)));

    let client = reqwest::Client::builder().pool_max_idle_per_host(args.connections).build()?;
    let api = format!("http://127.0.0.1:{api_port}");
    let batch: Vec<Value> = (0..args.batch_size).map(|_| transaction()).collect();
    let single =
        |name, url: String, headers| Scenario { name, url, body: transaction(), headers, items: 1, expect: &[202] };
    let scenarios = [
        single("plain axum", format!("http://{plain}/plain"), Vec::new()),
        single("POST /v1/transactions", format!("{api}/v1/transactions"), Vec::new()),
        Scenario {
            name: "POST /v1/transactions/batch",
            url: format!("{api}/v1/transactions/batch"),
            body: json!({ "transactions": batch }),
            headers: Vec::new(),
            items: args.batch_size,
            expect: &[200],
        },
    ];
    let duration = Duration::from_secs(args.seconds);
    // Warm up connections and the broker's partitions.
    let _ = run(&client, &auth, &scenarios[1], args.connections, Duration::from_secs(1)).await;

    let mut reports = Vec::new();
    for s in &scenarios {
        reports.push(run(&client, &auth, s, args.connections, duration).await);
    }

    // `Prefer: wait`: a second API instance on a fresh topic (no backlog
    // from the runs above) with a processor deciding it.
    let (wait_port, wait_server) =
        start_api(&args, &database_url, &wait_topic, &keyring, Some(&results), &shutdown).await?;
    let processor = start_processor(&args, &database_url, &wait_topic, &results, &keyring, &shutdown).await?;
    let prefer = Scenario {
        name: "POST /v1/transactions wait",
        url: format!("http://127.0.0.1:{wait_port}/v1/transactions"),
        body: transaction(),
        headers: vec![("prefer", format!("wait={}", args.wait))],
        items: 1,
        // 201: decided within the wait; 202: still pending when it ran out.
        expect: &[201, 202],
    };
    // Warm up, so the processor has joined its group and been assigned.
    let _ = run(&client, &auth, &prefer, args.connections, Duration::from_secs(3)).await;
    reports.push(run(&client, &auth, &prefer, args.connections, duration).await);

    println!(
        "connections={} seconds={} batch_size={} wait={} database={} kafka_options={:?}",
        args.connections,
        args.seconds,
        args.batch_size,
        args.wait,
        transaction_store::redact_url(&database_url),
        args.kafka_options,
    );
    println!(
        "{:<28} {:>9} {:>7} {:>8} {:>10} {:>12} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "scenario",
        "requests",
        "errors",
        "decided",
        "req/s",
        "tx/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "vs plain"
    );
    let plain_rps = reports[0].rps();
    for r in &reports {
        println!(
            "{:<28} {:>9} {:>7} {:>8} {:>10.0} {:>12.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.3}x",
            r.name,
            r.requests,
            r.errors,
            if r.decided_column { r.first_status.to_string() } else { "-".into() },
            r.rps(),
            r.items as f64 / r.elapsed.as_secs_f64(),
            ms(r.percentile(0.5)),
            ms(r.percentile(0.9)),
            ms(r.percentile(0.99)),
            ms(r.percentile(1.0)),
            r.rps() / plain_rps
        );
    }
    println!("single POST / plain axum = {:.3}", reports[1].rps() / plain_rps);
    shutdown.cancel();
    let _ = tokio::join!(server, wait_server, processor);
    if args.database_url.is_none() {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db_path.display()));
        }
    }
    Ok(())
}
