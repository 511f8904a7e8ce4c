//! Login, sessions and the authentication of the WebSocket; health endpoints.

mod support;

use serde_json::json;
use support::*;
use transaction_model::AccountId;
use transaction_store::AccountStatus;

async fn setup() -> (Running, String, tempfile::TempDir) {
    let topic = create_topic(1).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("accounts.db").display());
    create_accounts(
        &db,
        &[("shop-a", "secret-a-123", AccountStatus::Active), ("shop-off", "secret-off-1", AccountStatus::Disabled)],
    )
    .await;
    (spawn(config(&topic, &db)).await, db, dir)
}

fn ws_status(e: tokio_tungstenite::tungstenite::Error) -> u16 {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_checked_and_failures_look_alike() {
    let (app, _db, _dir) = setup().await;
    let port = app.port;
    let cases = [
        json!({"kind": "operator", "token": "not-the-operator-token"}),
        json!({"kind": "merchant", "account_id": "shop-a", "secret": "wrong"}),
        json!({"kind": "merchant", "account_id": "nobody", "secret": "secret-a-123"}),
        json!({"kind": "merchant", "account_id": "shop-off", "secret": "secret-off-1"}),
        json!({"kind": "merchant", "account_id": "bad id/..", "secret": "x"}),
    ];
    for body in cases {
        let (status, reply) = login(port, body.clone()).await;
        assert_eq!(status, 401, "{body} -> {reply}");
        assert_eq!(reply["error"]["code"], "invalid_credentials", "{body}");
    }
    assert_eq!(metric(port, "dashboard_logins_failed_total").await, 5.0);
    let (status, reply) = login(port, json!({"kind": "root"})).await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["code"], "bad_request");

    let (status, ok) = login(port, json!({"kind": "merchant", "account_id": "shop-a", "secret": "secret-a-123"})).await;
    assert_eq!(status, 200);
    assert_eq!(ok["merchant"], "shop-a");
    assert!(ok["expires_at"].as_i64().unwrap() > time::OffsetDateTime::now_utc().unix_timestamp());
    assert!(!ok.to_string().contains("secret-a-123"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_needs_a_valid_session() {
    let (app, db, _dir) = setup().await;
    let port = app.port;
    // No token, a forged one, and a raw credential instead of a session.
    let no_token = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws")).await.unwrap_err();
    assert_eq!(ws_status(no_token), 401);
    assert_eq!(ws_status(connect(port, "eyJyb2xlIjoib3BlcmF0b3IifQ.AAAA").await.unwrap_err()), 401);
    assert_eq!(ws_status(connect(port, OPERATOR_TOKEN).await.unwrap_err()), 401);

    // A merchant session gets the merchant view, whatever it asks for.
    let (_, body) = login(port, json!({"kind": "merchant", "account_id": "shop-a", "secret": "secret-a-123"})).await;
    let token = body["token"].as_str().unwrap().to_owned();
    let mut ws = connect(port, &token).await.unwrap();
    let frame = next_frame(&mut ws, std::time::Duration::from_secs(5)).await.expect("first frame");
    assert_eq!(frame["view"], "merchant");
    assert_eq!(frame["merchant"], "shop-a");
    drop(ws);

    // Renewal works with the session, not without it.
    let (status, renewed) =
        http(port, "POST", "/api/session/renew", &[("Authorization", &format!("Bearer {token}"))], None).await;
    assert_eq!(status, 200, "{renewed}");
    let (status, _) = http(port, "POST", "/api/session/renew", &[], None).await;
    assert_eq!(status, 401);

    // A merchant disabled after logging in loses the stream and renewal.
    let repo = transaction_store::open_accounts(&db).await.unwrap();
    assert!(repo.set_account_status(&AccountId::try_from("shop-a").unwrap(), AccountStatus::Disabled).await.unwrap());
    assert_eq!(ws_status(connect(port, &token).await.unwrap_err()), 401);
    let (status, _) =
        http(port, "POST", "/api/session/renew", &[("Authorization", &format!("Bearer {token}"))], None).await;
    assert_eq!(status, 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_login_is_off_without_a_token_and_health_endpoints_answer() {
    let topic = create_topic(1).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("accounts.db").display());
    let mut cfg = config(&topic, &db);
    cfg.operator_token = None;
    let app = spawn(cfg).await;
    let (status, reply) = login(app.port, json!({"kind": "operator", "token": OPERATOR_TOKEN})).await;
    assert_eq!(status, 501);
    assert_eq!(reply["error"]["code"], "operator_login_disabled");

    assert_eq!(http(app.port, "GET", "/healthz", &[], None).await, (200, "ok".to_owned()));
    let (status, body) = http(app.port, "GET", "/readyz", &[], None).await;
    assert_eq!(status, 200, "{body}");
    let (status, metrics) = http(app.port, "GET", "/metrics", &[], None).await;
    assert_eq!(status, 200);
    for name in [
        "dashboard_ws_clients",
        "dashboard_ws_frames_sent_total",
        "dashboard_ws_frames_dropped_total",
        "dashboard_results_consumed_total",
        "dashboard_build_info",
    ] {
        assert!(metrics.lines().any(|l| l.starts_with(name)), "{name} missing");
    }
    let (status, page) = http(app.port, "GET", "/", &[], None).await;
    assert_eq!(status, 200);
    assert!(page.contains("src=\"/app.js\"") && page.contains("href=\"/app.css\""));
    assert!(!page.contains("http://") && !page.contains("https://"), "the page loads nothing from elsewhere");
    app.stop().await;

    // Missing topic: not ready.
    let mut cfg = config(&unique("missing"), &db);
    cfg.operator_token = None;
    let app = spawn(cfg).await;
    let (status, body) = http(app.port, "GET", "/readyz", &[], None).await;
    assert_eq!(status, 503, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_are_throttled_but_never_lock_the_owner_out() {
    let (app, _db, _dir) = setup().await;
    let port = app.port;
    let wrong = json!({"kind": "merchant", "account_id": "shop-a", "secret": "guess"});
    for _ in 0..dashboard::throttle::MAX_FAILURES {
        assert_eq!(login(port, wrong.clone()).await.0, 401);
    }
    // Throttled: further failures are 429, with a stable code…
    let (status, body) = login(port, wrong.clone()).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    // …but the right secret still signs in: no one can lock a merchant out.
    let right = json!({"kind": "merchant", "account_id": "shop-a", "secret": "secret-a-123"});
    assert_eq!(login(port, right).await.0, 200);
    // The same for the operator.
    let guess = json!({"kind": "operator", "token": "not-the-operator-token"});
    for _ in 0..dashboard::throttle::MAX_FAILURES {
        login(port, guess.clone()).await;
    }
    assert_eq!(login(port, guess).await.0, 429);
    assert!(!operator_token(port).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_closes_when_its_session_expires() {
    use dashboard::session::{Claims, Role, SessionSigner};
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    const KEY: &str = "a-shared-session-key-of-32-bytes!";
    let topic = create_topic(1).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("accounts.db").display());
    let mut cfg = config(&topic, &db);
    cfg.session_key = Some(KEY.into());
    let app = spawn(cfg).await;

    // A token from another replica with the same SESSION_KEY, two seconds to live.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let bind = dashboard::operator_token::OperatorToken::new(OPERATOR_TOKEN).unwrap().binding();
    let claims = Claims { role: Role::Operator, exp: now + 2, sid: "s-1".into(), iat: now, bind };
    let token = SessionSigner::new(KEY.as_bytes()).unwrap().issue(&claims).unwrap();
    let mut ws = connect(app.port, &token).await.unwrap();
    let close = tokio::time::timeout(std::time::Duration::from_secs(10), async {
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
    // And the expired token opens nothing any more.
    assert_eq!(ws_status(connect(app.port, &token).await.unwrap_err()), 401);
    app.stop().await;
}
