//! Shared by the integration tests: unique topics, producing results,
//! running the dashboard on port 0, logging in, and reading frames.
#![allow(dead_code, unused_imports)] // each test binary uses a part

use std::time::{Duration, Instant};

use dashboard::{Application, Config};
use futures::{SinkExt, StreamExt};
use rdkafka::producer::FutureProducer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use transaction_model::secret::SecretHasher;
use transaction_model::{AccountId, CardBrand, MaskedCard, ResultMessage, Status};
use transaction_store::{Account, AccountStatus};

pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789";
pub const SECRET_HASH_KEY: &str = "test-secret-hash-key-0123456789";

pub use testkit::{brokers, producer, unique, Running};

/// A fresh results topic: the broker does not auto-create topics.
pub async fn create_topic(partitions: i32) -> String {
    let topic = unique("dash-res");
    testkit::create_topics(&[(&topic, partitions)]).await;
    topic
}

pub fn config(topic: &str, database_url: &str) -> Config {
    Config {
        kafka_brokers: brokers(),
        results_topic: topic.to_owned(),
        consumer_group_prefix: "dashboard-test".into(),
        database_url: database_url.to_owned(),
        operator_token: Some(OPERATOR_TOKEN.into()),
        secret_hash_key: Some(SECRET_HASH_KEY.into()),
        session_key: None,
        session_ttl_secs: 600,
        session_max_age_secs: 3600,
        session_revalidate_secs: 30,
        max_ws_per_session: 5,
        max_ws_per_address: 50,
        max_ws_clients: 10_000,
        trusted_proxies: Vec::new(),
        http_idle_timeout_secs: 30,
        http_body_timeout_ms: 10_000,
        http_request_timeout_secs: 30,
        http_max_concurrent_requests: 1024,
        // Tests run without SESSION_KEY (a random key per process).
        development: true,
        max_merchants: 1000,
        kafka_options: Vec::new(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
    }
}

/// Creates merchant accounts `(id, secret, status)` in the shared store.
pub async fn create_accounts(database_url: &str, accounts: &[(&str, &str, AccountStatus)]) {
    let repo = transaction_store::open_accounts(database_url).await.expect("account store");
    let hasher = SecretHasher::new(SECRET_HASH_KEY.as_bytes()).unwrap();
    for (id, secret, status) in accounts {
        repo.create_account(&Account {
            id: AccountId::try_from(*id).unwrap(),
            name: format!("Merchant {id}"),
            status: *status,
            secret_hash: hasher.hash(secret),
            created_at: time::OffsetDateTime::now_utc(),
        })
        .await
        .expect("account created");
    }
}

pub async fn spawn(config: Config) -> Running {
    let shutdown = CancellationToken::new();
    let app = Application::build(config, &shutdown).await.expect("dashboard builds");
    let port = app.http_port();
    let token = shutdown.clone();
    Running::spawn(shutdown, port, async move {
        app.run_until_stopped(token).await.expect("dashboard runs");
    })
}

/// A result as the processor publishes it. `reason` empty means approved.
pub fn result(id: &str, merchant: &str, cents: i64, reason: &str) -> ResultMessage {
    let now = time::OffsetDateTime::now_utc();
    ResultMessage {
        id: id.to_owned(),
        status: if reason.is_empty() { Status::Approved } else { Status::Rejected },
        error_message: reason.to_owned(),
        account_id: Some(merchant.to_owned()),
        amount_cents: Some(cents),
        amount: Some(transaction_model::Amount::from_cents(cents).to_string()),
        card_brand: Some(CardBrand::Visa),
        card_masked: MaskedCard::from_untrusted("4111111111111111"),
        created_at: now,
        processed_at: now,
    }
}

/// Produces results keyed by id, in order, and waits for every delivery.
pub async fn produce(producer: &FutureProducer, topic: &str, results: &[ResultMessage]) {
    let payloads: Vec<_> =
        results.iter().map(|r| (Some(r.id.clone()), Some(r.to_json().expect("result json")))).collect();
    testkit::produce(producer, topic, &payloads).await;
}

/// A minimal HTTP/1.1 exchange: (status, body).
pub async fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(rest) } else { rest.to_owned() };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub async fn login(port: u16, body: Value) -> (u16, Value) {
    let (status, text) = http(port, "POST", "/api/session", &[], Some(&body.to_string())).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn operator_token(port: u16) -> String {
    let (status, body) = login(port, serde_json::json!({"kind": "operator", "token": OPERATOR_TOKEN})).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects as a browser does: the token in the sub-protocol list.
pub async fn connect(port: u16, token: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://127.0.0.1:{port}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_str(&format!("dashboard.v1, bearer.{token}")).unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(request).await?;
    assert_eq!(
        response.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap()),
        Some("dashboard.v1"),
        "server picks its protocol and never echoes the token"
    );
    Ok(ws)
}

/// The next snapshot frame, or None after `limit`.
pub async fn next_frame(ws: &mut Ws, limit: Duration) -> Option<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).expect("frame is JSON")),
            Ok(Message::Ping(p)) => {
                let _ = ws.send(Message::Pong(p)).await;
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Reads frames until `done` accepts one; panics after `limit`.
pub async fn frame_until(ws: &mut Ws, limit: Duration, mut done: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = next_frame(ws, left).await.expect("a matching frame before the deadline");
        if done(&frame) {
            return frame;
        }
    }
}

pub fn recent_ids(frame: &Value) -> Vec<String> {
    frame["recent"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

/// The consumer starts at the end of the topic once it has partitions; a
/// result produced earlier is never seen. Produces markers until one shows
/// in a frame (one partition: every later message is then seen too), and
/// returns the count once the last marker is in.
pub async fn warm_up(producer: &FutureProducer, topic: &str, ws: &mut Ws, merchant: &str) -> u64 {
    let prefix = unique("warm");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    loop {
        assert!(Instant::now() < deadline, "the dashboard never saw a result");
        let id = format!("{prefix}-{i}");
        produce(producer, topic, &[result(&id, merchant, 100, "")]).await;
        i += 1;
        if let Some(frame) = next_frame(ws, Duration::from_millis(300)).await {
            if recent_ids(&frame).iter().any(|r| r.starts_with(&prefix)) {
                break;
            }
        }
    }
    let last = format!("{prefix}-{}", i - 1);
    let frame = frame_until(ws, Duration::from_secs(20), |f| recent_ids(f).first() == Some(&last)).await;
    frame["totals"]["count"].as_u64().unwrap()
}

/// A metric's value from /metrics.
pub async fn metric(port: u16, name: &str) -> f64 {
    let (_, body) = http(port, "GET", "/metrics", &[], None).await;
    body.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}
