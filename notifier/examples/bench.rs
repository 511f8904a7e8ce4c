//! Delivery throughput and decision-to-delivery latency of the notifier.
//!
//! ```sh
//! cargo run --release -p notifier --example bench -- --results 20000 --rate 1000 --merchants 4
//! ```
//!
//! Against the local broker (`KAFKA_BROKERS`, default 127.0.0.1:9092) and a
//! SQLite file in a temp dir (or `--database-url mysql://…` for a scratch
//! MariaDB database made on that server): `--merchants` loopback receivers
//! that verify every signature, each with an endpoint, and the notifier
//! in-process. Two phases, each on a fresh topic:
//!
//! 1. **steady**: results produced at `--rate` per second (each result's
//!    `processed_at` is the instant it is produced); latency is from
//!    `processed_at` to the first 2xx at the receiver.
//! 2. **backlog**: `--results` already on the topic when the notifier
//!    starts; throughput is results delivered per second until the last.
//!
//! Everything (broker, notifier, receivers, producer) shares the machine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use notifier::clock::SystemClock;
use notifier::event::EVENT_TYPES;
use notifier::{Application, Config};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use transaction_model::{AccountId, CardBrand, MaskedCard, ResultMessage, Status};
use transaction_store::webhooks::{EndpointStatus, WebhookEndpoint};

struct Args {
    results: usize,
    rate: u64,
    merchants: usize,
    concurrency: usize,
    database_url: Option<String>,
}

fn args() -> Args {
    let mut a = Args { results: 20_000, rate: 1000, merchants: 4, concurrency: 8, database_url: None };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--results" => a.results = value.parse().expect("--results N"),
            "--rate" => a.rate = value.parse().expect("--rate N"),
            "--merchants" => a.merchants = value.parse().expect("--merchants N"),
            "--concurrency" => a.concurrency = value.parse().expect("--concurrency N"),
            "--database-url" => a.database_url = Some(value),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// First 2xx arrival per event id, and whether every signature verified.
#[derive(Clone, Default)]
struct Arrivals {
    first: Arc<Mutex<HashMap<String, (OffsetDateTime, OffsetDateTime)>>>,
    bad_signatures: Arc<Mutex<usize>>,
}

#[derive(Clone)]
struct ReceiverState {
    secret: Arc<Mutex<String>>,
    arrivals: Arrivals,
}

async fn receive(State(s): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let now = OffsetDateTime::now_utc();
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (id, ts, sig) = (get("webhook-id"), get("webhook-timestamp"), get("webhook-signature"));
    let secret = s.secret.lock().unwrap().clone();
    let ok = notifier::signing::verify(
        &secret,
        &id,
        &ts,
        &sig,
        &body,
        now.unix_timestamp(),
        notifier::signing::TIMESTAMP_TOLERANCE,
    )
    .is_ok();
    if !ok {
        *s.arrivals.bad_signatures.lock().unwrap() += 1;
        return StatusCode::BAD_REQUEST;
    }
    let decided = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["data"]["processed_at"].as_str().map(str::to_owned))
        .and_then(|t| OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok())
        .unwrap_or(now);
    s.arrivals.first.lock().unwrap().entry(id).or_insert((decided, now));
    StatusCode::NO_CONTENT
}

async fn receiver(arrivals: Arrivals) -> (String, Arc<Mutex<String>>) {
    let secret = Arc::new(Mutex::new(String::new()));
    let state = ReceiverState { secret: Arc::clone(&secret), arrivals };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, Router::new().route("/hook", post(receive)).with_state(state)).await;
    });
    (format!("http://127.0.0.1:{port}/hook"), secret)
}

fn result(id: String, merchant: &str, i: usize) -> ResultMessage {
    let now = OffsetDateTime::now_utc();
    ResultMessage {
        id,
        status: if i % 3 == 2 { Status::Rejected } else { Status::Approved },
        error_message: if i % 3 == 2 { "invalid credit card cvv".into() } else { String::new() },
        account_id: Some(merchant.to_owned()),
        amount_cents: Some(1050),
        amount: Some("10.50".into()),
        card_brand: Some(CardBrand::Visa),
        card_masked: MaskedCard::from_untrusted("4111111111111111"),
        created_at: now,
        processed_at: now,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

struct Setup {
    merchants: Vec<String>,
    arrivals: Arrivals,
}

async fn setup(database_url: &str, n: usize) -> Setup {
    let repo = transaction_store::open_webhooks(database_url).await.unwrap();
    let arrivals = Arrivals::default();
    let mut merchants = Vec::new();
    for _ in 0..n {
        let merchant = testkit::unique("bench-shop");
        let (url, secret_slot) = receiver(arrivals.clone()).await;
        let now = OffsetDateTime::now_utc();
        let endpoint = WebhookEndpoint {
            id: format!("ep_{}", uuid::Uuid::new_v4().simple()),
            account_id: AccountId::try_from(merchant.as_str()).unwrap(),
            url,
            description: "bench".into(),
            event_types: EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            secret: notifier::signing::generate_secret(),
            previous_secret: None,
            previous_secret_expires_at: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        *secret_slot.lock().unwrap() = endpoint.secret.clone();
        repo.create_endpoint(&endpoint).await.unwrap();
        merchants.push(merchant);
    }
    Setup { merchants, arrivals }
}

async fn start_notifier(
    args: &Args,
    database_url: &str,
    topic: &str,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let mut config = Config::local(database_url, topic, &testkit::unique("bench-notifier"));
    config.kafka_brokers = testkit::brokers();
    config.endpoint_concurrency = args.concurrency;
    config.max_in_flight = 512;
    let shutdown = CancellationToken::new();
    let app = Application::build_with_clock(config, Arc::new(SystemClock), &shutdown).await.unwrap();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        app.run_until_stopped(token).await.unwrap();
    });
    (shutdown, handle)
}

async fn wait_all(arrivals: &Arrivals, n: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if arrivals.first.lock().unwrap().len() >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn report(phase: &str, arrivals: &Arrivals, n: usize, started: OffsetDateTime) {
    let first = arrivals.first.lock().unwrap();
    let mut latencies: Vec<f64> = first.values().map(|(d, a)| (*a - *d).as_seconds_f64() * 1000.0).collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let last = first.values().map(|(_, a)| *a).max().unwrap_or(started);
    let earliest = first.values().map(|(_, a)| *a).min().unwrap_or(started);
    let secs = (last - started).as_seconds_f64();
    let span = (last - earliest).as_seconds_f64();
    println!("{phase}: first to last delivery {span:.2} s = {:.0} deliveries/s", first.len() as f64 / span.max(1e-9));
    println!(
        "{phase}: {}/{n} delivered in {secs:.2} s = {:.0} deliveries/s; decision->delivery ms p50 {:.1} p99 {:.1} max {:.1}; bad signatures {}",
        first.len(),
        first.len() as f64 / secs.max(1e-9),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
        arrivals.bad_signatures.lock().unwrap()
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let database_url = match &args.database_url {
        Some(server) => transaction_store::mysql::create_scratch_database(server, "notifier_bench").await.unwrap(),
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    println!(
        "notifier bench: {} results, {} merchants, endpoint concurrency {}, database {}",
        args.results,
        args.merchants,
        args.concurrency,
        transaction_store::redact_url(&database_url)
    );
    let producer = testkit::producer();

    // Phase 1: steady load.
    let s = setup(&database_url, args.merchants).await;
    let topic = testkit::unique("bench-steady");
    testkit::create_topics(&[(&topic, 6)]).await;
    let (stop, handle) = start_notifier(&args, &database_url, &topic).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // group join
    let started = OffsetDateTime::now_utc();
    let tick = Duration::from_millis(20);
    let per_tick = ((args.rate as f64) * tick.as_secs_f64()).max(1.0) as usize;
    let mut sent = 0;
    let mut next = Instant::now();
    while sent < args.results {
        let batch: Vec<_> = (sent..(sent + per_tick).min(args.results))
            .map(|i| {
                let r = result(testkit::unique("tx"), &s.merchants[i % s.merchants.len()], i);
                (Some(r.id.clone()), Some(serde_json::to_vec(&r).unwrap()))
            })
            .collect();
        sent += batch.len();
        testkit::produce(&producer, &topic, &batch).await;
        next += tick;
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
    }
    let produced_in = (OffsetDateTime::now_utc() - started).as_seconds_f64();
    let done = wait_all(&s.arrivals, args.results, Duration::from_secs(300)).await;
    println!("steady: produced at {:.0}/s", args.results as f64 / produced_in);
    report("steady", &s.arrivals, args.results, started);
    stop.cancel();
    let _ = handle.await;
    assert!(done, "steady phase did not deliver everything");

    // Phase 2: backlog drain.
    let s = setup(&database_url, args.merchants).await;
    let topic = testkit::unique("bench-backlog");
    testkit::create_topics(&[(&topic, 6)]).await;
    let all: Vec<_> = (0..args.results)
        .map(|i| {
            let r = result(testkit::unique("tx"), &s.merchants[i % s.merchants.len()], i);
            (Some(r.id.clone()), Some(serde_json::to_vec(&r).unwrap()))
        })
        .collect();
    testkit::produce(&producer, &topic, &all).await;
    let started = OffsetDateTime::now_utc();
    let (stop, handle) = start_notifier(&args, &database_url, &topic).await;
    let done = wait_all(&s.arrivals, args.results, Duration::from_secs(600)).await;
    report("backlog (from notifier start, incl. group join)", &s.arrivals, args.results, started);
    stop.cancel();
    let _ = handle.await;
    assert!(done, "backlog phase did not deliver everything");
    if args.database_url.is_some() {
        let _ = transaction_store::mysql::drop_scratch_database(&database_url).await;
    }
}
