//! Shared by the notifier's integration tests: a real HTTP receiver on
//! loopback that verifies Standard Webhooks signatures on its own (HMAC
//! computed here, not with the notifier's code), endpoints, results on a
//! topic of the test's own, and the notifier in-process.
#![allow(dead_code, unused_imports)] // each test binary uses a part

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use notifier::clock::Clock;
use notifier::{Application, Config};
use sha2::Sha256;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use transaction_model::{AccountId, CardBrand, MaskedCard, ResultMessage, Status};
use transaction_store::webhooks::{EndpointStatus, WebhookEndpoint};
use transaction_store::WebhookRepository;

pub use testkit::{brokers, mysql_server, unique, Running};

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub event_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    /// Which of the receiver's secrets verified a signature (indexes).
    pub verified_by: Vec<usize>,
    pub status: u16,
}

/// What the receiver answers to the `n`-th request (from 1) of an event.
pub type Behaviour = Arc<dyn Fn(u32) -> (u16, Duration) + Send + Sync>;

#[derive(Clone)]
struct ReceiverState {
    secrets: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<Vec<Received>>>,
    per_event: Arc<Mutex<HashMap<String, u32>>>,
    behaviour: Behaviour,
}

pub struct Receiver {
    pub url: String,
    secrets: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<Vec<Received>>>,
    shutdown: CancellationToken,
}

/// HMAC-SHA256 over `id.timestamp.body` with the key inside `whsec_…`.
pub fn expected_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The receiver's check: a `v1` signature by one of `secrets`, and a
/// timestamp within 5 minutes of `now`. Returns the secrets that verified.
pub fn verify(secrets: &[String], r: &Received, now_unix: i64) -> Vec<usize> {
    let Ok(ts) = r.timestamp.parse::<i64>() else { return Vec::new() };
    if (now_unix - ts).abs() > 300 {
        return Vec::new();
    }
    let given: Vec<Vec<u8>> =
        r.signature.split(' ').filter_map(|s| s.strip_prefix("v1,")).filter_map(|b| STANDARD.decode(b).ok()).collect();
    secrets
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            let expected = expected_signature(s, &r.event_id, &r.timestamp, &r.body);
            given.contains(&expected)
        })
        .map(|(i, _)| i)
        .collect()
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let event_id = get("webhook-id");
    let n = {
        let mut per = state.per_event.lock().unwrap();
        let n = per.entry(event_id.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let (status, delay) = (state.behaviour)(n);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut r = Received {
        event_id,
        timestamp: get("webhook-timestamp"),
        signature: get("webhook-signature"),
        body: body.to_vec(),
        verified_by: Vec::new(),
        status,
    };
    let secrets = state.secrets.lock().unwrap().clone();
    let ts = r.timestamp.parse::<i64>().unwrap_or(0);
    // Verified against the timestamp it carries (the notifier's clock may be
    // a test clock); freshness is checked separately by the tests.
    r.verified_by = verify(&secrets, &r, ts);
    state.log.lock().unwrap().push(r);
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// Answers 200 at once.
    pub async fn start() -> Self {
        Self::with(Arc::new(|_| (200, Duration::ZERO))).await
    }

    pub async fn with(behaviour: Behaviour) -> Self {
        let secrets: Arc<Mutex<Vec<String>>> = Arc::default();
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let state = ReceiverState {
            secrets: Arc::clone(&secrets),
            log: Arc::clone(&log),
            per_event: Arc::default(),
            behaviour,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let app = Router::new().route("/hook", post(receive)).with_state(state);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
        });
        Receiver { url: format!("http://127.0.0.1:{}/hook", addr.port()), secrets, log, shutdown }
    }

    pub fn add_secret(&self, secret: &str) {
        self.secrets.lock().unwrap().push(secret.to_owned());
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Distinct event ids answered 2xx.
    pub fn delivered_ids(&self) -> HashSet<String> {
        self.log.lock().unwrap().iter().filter(|r| r.status < 300).map(|r| r.event_id.clone()).collect()
    }

    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

pub fn account(id: &str) -> AccountId {
    AccountId::try_from(id).unwrap()
}

/// Registers an endpoint directly in the store; returns it (with its secret).
pub async fn endpoint(
    repo: &dyn WebhookRepository,
    merchant: &str,
    url: &str,
    event_types: &[&str],
) -> WebhookEndpoint {
    let now = OffsetDateTime::now_utc();
    let e = WebhookEndpoint {
        id: format!("ep_{}", uuid::Uuid::new_v4().simple()),
        account_id: account(merchant),
        url: url.to_owned(),
        description: format!("{merchant} test receiver"),
        event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        secret: notifier::signing::generate_secret(),
        previous_secret: None,
        previous_secret_expires_at: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    repo.create_endpoint(&e).await.unwrap();
    e
}

/// A decision as the processor publishes it; every third one rejected.
pub fn result(id: &str, merchant: &str, i: usize) -> ResultMessage {
    let rejected = i % 3 == 2;
    let now = OffsetDateTime::now_utc();
    ResultMessage {
        id: id.to_owned(),
        status: if rejected { Status::Rejected } else { Status::Approved },
        error_message: if rejected { "invalid credit card cvv".into() } else { String::new() },
        account_id: Some(merchant.to_owned()),
        amount_cents: Some(1050),
        amount: Some("10.50".into()),
        card_brand: Some(CardBrand::Visa),
        card_masked: MaskedCard::from_untrusted("4111111111111111"),
        created_at: now,
        processed_at: now,
    }
}

pub async fn produce_results(topic: &str, results: &[ResultMessage]) {
    let raw: Vec<_> = results.iter().map(|r| (Some(r.id.clone()), Some(serde_json::to_vec(r).unwrap()))).collect();
    testkit::produce(&testkit::producer(), topic, &raw).await;
}

pub fn config(database_url: &str, topic: &str) -> Config {
    let mut c = Config::local(database_url, topic, &unique("notifier"));
    c.kafka_brokers = brokers();
    c
}

pub async fn spawn(config: Config, clock: Arc<dyn Clock>) -> Running {
    let shutdown = CancellationToken::new();
    let app = Application::build_with_clock(config, clock, &shutdown).await.expect("notifier builds");
    let port = app.http_port();
    let token = shutdown.clone();
    Running::spawn(shutdown, port, async move {
        app.run_until_stopped(token).await.expect("notifier runs");
    })
}

/// Polls `check` every 50 ms until it holds or `limit` passes.
pub async fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

pub fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("notifier.db").display())
}
