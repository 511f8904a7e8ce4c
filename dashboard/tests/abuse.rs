//! Abuse resistance of the dashboard: sign-in throttling that locks no one
//! out, caps on streams, sessions that end, and no silent default keys.

mod support;

use std::time::Duration;

use dashboard::session::{Claims, Role, SessionSigner};
use dashboard::{Application, Config, StartupError};
use futures::StreamExt;
use serde_json::{json, Value};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use transaction_model::secret::SecretHasher;
use transaction_model::AccountId;
use transaction_store::AccountStatus;

const KEY: &str = "a-shared-session-key-of-32-bytes!";

async fn setup(configure: impl FnOnce(&mut Config)) -> (Running, String, tempfile::TempDir) {
    let topic = create_topic(1).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("accounts.db").display());
    create_accounts(&db, &[("shop-a", "secret-a-123", AccountStatus::Active)]).await;
    let mut cfg = config(&topic, &db);
    configure(&mut cfg);
    (spawn(cfg).await, db, dir)
}

fn ws_status(e: tokio_tungstenite::tungstenite::Error) -> u16 {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

async fn login_from(port: u16, forwarded_for: &str, body: Value) -> (u16, Value) {
    let (status, text) =
        http(port, "POST", "/api/session", &[("X-Forwarded-For", forwarded_for)], Some(&body.to_string())).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn renew(port: u16, token: &str) -> u16 {
    http(port, "POST", "/api/session/renew", &[("Authorization", &format!("Bearer {token}"))], None).await.0
}

fn junk(i: usize) -> Value {
    json!({"kind": "merchant", "account_id": format!("junk-{i}"), "secret": "x"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_client_is_throttled_by_address_without_locking_out_others() {
    let (app, _db, _dir) = setup(|c| c.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    let attacker = "203.0.113.7";
    // A fresh account id per attempt: only the per-client limit can count these.
    for i in 0..dashboard::throttle::MAX_CLIENT_FAILURES as usize {
        assert_eq!(login_from(app.port, attacker, junk(i)).await.0, 401);
    }
    let (status, body) = login_from(app.port, attacker, junk(999)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    // Another client behind the same proxy: its failures are its own…
    assert_eq!(login_from(app.port, "198.51.100.9", junk(1000)).await.0, 401);
    // …and valid credentials sign in from anywhere, the attacker's address included.
    let right = json!({"kind": "merchant", "account_id": "shop-a", "secret": "secret-a-123"});
    assert_eq!(login_from(app.port, "198.51.100.9", right.clone()).await.0, 200);
    assert_eq!(login_from(app.port, attacker, right).await.0, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarded_header_from_an_untrusted_peer_is_ignored() {
    let (app, _db, _dir) = setup(|c| c.trusted_proxies = vec!["192.0.2.0/24".into()]).await;
    for i in 0..dashboard::throttle::MAX_CLIENT_FAILURES as usize {
        let spoofed = format!("203.0.113.{}", i % 250);
        assert_eq!(login_from(app.port, &spoofed, junk(i)).await.0, 401);
    }
    assert_eq!(login_from(app.port, "198.51.100.1", junk(999)).await.0, 429);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sixth_websocket_of_one_session_is_refused() {
    let (app, _db, _dir) = setup(|_| {}).await;
    let token = operator_token(app.port).await;
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(connect(app.port, &token).await.expect("within the cap"));
    }
    assert_eq!(ws_status(connect(app.port, &token).await.unwrap_err()), 429);
    // Another session has its own slots; a closed stream gives its slot back.
    let other = operator_token(app.port).await;
    let extra = connect(app.port, &other).await.expect("another session");
    drop(extra);
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match connect(app.port, &token).await {
            Ok(ws) => {
                open.push(ws);
                break;
            }
            Err(e) => {
                assert_eq!(ws_status(e), 429);
                assert!(std::time::Instant::now() < deadline, "the slot was never given back");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_ends_its_sessions() {
    let (app, db, _dir) = setup(|c| c.session_revalidate_secs = 1).await;
    let (status, body) =
        login(app.port, json!({"kind": "merchant", "account_id": "shop-a", "secret": "secret-a-123"})).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(renew(app.port, &token).await, 200);
    let mut ws = connect(app.port, &token).await.unwrap();

    let repo = transaction_store::open_accounts(&db).await.unwrap();
    let hasher = SecretHasher::new(SECRET_HASH_KEY.as_bytes()).unwrap();
    let id = AccountId::try_from("shop-a").unwrap();
    assert!(repo.rotate_secret(&id, &hasher.hash("the-new-secret-1")).await.unwrap());

    assert_eq!(renew(app.port, &token).await, 401, "renewal refused after rotation");
    assert_eq!(ws_status(connect(app.port, &token).await.unwrap_err()), 401);
    // The open stream is closed at its next re-check.
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = ws.next().await {
            if let Ok(Message::Close(frame)) = message {
                return frame;
            }
        }
        None
    })
    .await
    .expect("closed before the deadline")
    .expect("a close frame");
    assert_eq!(u16::from(close.code), dashboard::ws::CLOSE_SESSION_EXPIRED);
    // The new secret signs in.
    let new = json!({"kind": "merchant", "account_id": "shop-a", "secret": "the-new-secret-1"});
    assert_eq!(login(app.port, new).await.0, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_token_change_ends_operator_sessions() {
    let (app, _db, dir) = setup(|c| c.session_key = Some(KEY.into())).await;
    let token = operator_token(app.port).await;
    assert_eq!(renew(app.port, &token).await, 200);
    app.stop().await;
    // The same SESSION_KEY (another replica, or a restart) with a new operator token.
    let topic = create_topic(1).await;
    let db = format!("sqlite://{}", dir.path().join("accounts.db").display());
    let mut cfg = config(&topic, &db);
    cfg.session_key = Some(KEY.into());
    cfg.operator_token = Some("a-brand-new-operator-token-0001".into());
    let app = spawn(cfg).await;
    assert_eq!(renew(app.port, &token).await, 401);
    assert_eq!(ws_status(connect(app.port, &token).await.unwrap_err()), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_have_an_absolute_lifetime_and_an_idle_timeout() {
    let (app, _db, _dir) = setup(|c| c.session_key = Some(KEY.into())).await;
    let signer = SessionSigner::new(KEY.as_bytes()).unwrap();
    let bind = dashboard::operator_token::OperatorToken::new(OPERATOR_TOKEN).unwrap().binding();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Signed in 59 minutes ago (the tests' maximum age is one hour), renewed since.
    let old = Claims { role: Role::Operator, exp: now + 500, sid: "s".into(), iat: now - 59 * 60, bind: bind.clone() };
    let (status, body) = http(
        app.port,
        "POST",
        "/api/session/renew",
        &[("Authorization", &format!("Bearer {}", signer.issue(&old).unwrap()))],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let renewed: Value = serde_json::from_str(&body).unwrap();
    assert!(renewed["expires_at"].as_i64().unwrap() <= now - 59 * 60 + 3600, "never past the maximum age");
    // At the maximum age: no renewal.
    let ended = Claims { iat: now - 3600, ..old.clone() };
    assert_eq!(renew(app.port, &signer.issue(&ended).unwrap()).await, 401);
    // Idle: a token not renewed in time is refused.
    let idle = Claims { exp: now - 1, iat: now - 60, ..old };
    assert_eq!(renew(app.port, &signer.issue(&idle).unwrap()).await, 401);
    app.stop().await;
}

async fn build(config: Config) -> Result<Application, StartupError> {
    Application::build(config, &CancellationToken::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_refuses_development_keys_without_the_development_flag() {
    let topic = create_topic(1).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("accounts.db").display());
    let production = Config { development: false, session_key: Some(KEY.into()), ..config(&topic, &db) };
    let cases = [
        Config { session_key: None, ..production.clone() },
        Config { session_key: Some("dev-only-session-key-change-me-32-bytes-long".into()), ..production.clone() },
        Config { operator_token: Some("dev-only-operator-token-change-me".into()), ..production.clone() },
        Config { secret_hash_key: Some("dev-only-secret-hash-key-change-me".into()), ..production.clone() },
    ];
    for c in cases {
        assert!(matches!(build(c).await, Err(StartupError::DevelopmentKey(_))));
    }
    let kafka = Config { kafka_options: vec!["enable.auto.commit=true".into()], ..production.clone() };
    assert!(matches!(build(kafka).await, Err(StartupError::Config(_))));
    assert!(build(production.clone()).await.is_ok());
    assert!(build(Config { session_key: None, development: true, ..production }).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_answers_carry_no_internal_error_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("accounts.db").display());
    let app = spawn(config(&unique("missing"), &db)).await;
    let (status, body) = http(app.port, "GET", "/readyz", &[], None).await;
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["broker"], "unavailable", "{body}");
    assert!(!body.to_string().contains("missing"), "{body}");
    app.stop().await;
}

#[test]
fn help_never_shows_secrets() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dashboard"))
        .arg("--help")
        .env("KAFKA_OPTIONS", "sasl.password=kafka-hunter2")
        .env("DATABASE_URL", "mysql://gateway:db-hunter2@db:3306/gateway")
        .env("SESSION_KEY", "session-hunter2-session-hunter2-session")
        .output()
        .expect("dashboard --help runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("KAFKA_OPTIONS") && text.contains("DATABASE_URL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
