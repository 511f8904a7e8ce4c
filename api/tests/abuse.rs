//! Abuse resistance: no client can lock others out, exhaust the server, or
//! ride on a default secret.

mod support;

use std::time::Duration;

use api::startup::StartupError;
use api::{Application, Config};
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

async fn get_as(app: &TestApp, auth: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url("/v1/transactions")).header("authorization", auth);
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap()
}

async fn post_as(app: &TestApp, m: &Merchant, forwarded_for: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/transactions"))
        .header("authorization", m.basic())
        .header("x-forwarded-for", forwarded_for)
        .json(&approvable())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_client_behind_the_proxy_does_not_lock_out_valid_merchants() {
    let (mut config, dir) = sqlite_config().await;
    // The test client is the "ingress controller": its X-Forwarded-For counts.
    config.trusted_proxies = vec!["127.0.0.0/8".into()];
    config.auth_failures_per_minute = 3;
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("merchant-1").await;
    let guess = Merchant { id: "merchant-1".into(), secret: "guess".into() };
    let attacker = "203.0.113.7";
    for _ in 0..3 {
        assert_eq!(get_as(&app, &guess.basic(), Some(attacker)).await.status(), 401);
    }
    let r = get_as(&app, &guess.basic(), Some(attacker)).await;
    assert_eq!(error_code(r, 429).await.0, "too_many_failed_authentications");
    // Another client behind the same proxy is not affected…
    assert_eq!(post_as(&app, &m, "198.51.100.9").await.status(), 202);
    // …and a valid credential passes even from the throttled address.
    assert_eq!(post_as(&app, &m, attacker).await.status(), 202);
    // A different client's failures are counted on their own.
    assert_eq!(get_as(&app, &guess.basic(), Some("198.51.100.10")).await.status(), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarded_header_from_an_untrusted_peer_is_ignored() {
    let (mut config, dir) = sqlite_config().await;
    config.trusted_proxies = vec!["192.0.2.0/24".into()]; // not the test client
    config.auth_failures_per_minute = 3;
    let app = spawn_with(config, Some(dir)).await;
    let guess = Merchant { id: "merchant-1".into(), secret: "guess".into() };
    for i in 0..3 {
        let r = get_as(&app, &guess.basic(), Some(&format!("203.0.113.{i}"))).await;
        assert_eq!(r.status(), 401);
    }
    // A fresh forwarded address per attempt does not buy fresh attempts.
    let r = get_as(&app, &guess.basic(), Some("203.0.113.99")).await;
    assert_eq!(error_code(r, 429).await.0, "too_many_failed_authentications");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_for_one_account_are_limited_across_clients() {
    let (mut config, dir) = sqlite_config().await;
    config.trusted_proxies = vec!["127.0.0.0/8".into()];
    config.account_auth_failures_per_minute = 3;
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("merchant-1").await;
    let guess = Merchant { id: "merchant-1".into(), secret: "guess".into() };
    for i in 0..3 {
        assert_eq!(get_as(&app, &guess.basic(), Some(&format!("203.0.113.{i}"))).await.status(), 401);
    }
    // A distributed guesser (a new address each time) meets the account's limit.
    let r = get_as(&app, &guess.basic(), Some("203.0.113.50")).await;
    assert_eq!(error_code(r, 429).await.0, "too_many_failed_authentications");
    // The merchant itself is never refused.
    assert_eq!(post_as(&app, &m, "203.0.113.50").await.status(), 202);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_refused_requests_are_charged_to_the_merchant() {
    let (mut config, dir) = sqlite_config().await;
    // The default burst (1,000) with almost no refill, so the test does not
    // depend on how fast the machine sends: every GET and every refused
    // request takes from the budget, and the ones beyond it meet 429 (at the
    // default 200/s refill that is any 1,200 within a second).
    config.rate_limit_per_second = 1.0;
    config.rate_limit_burst = 1000.0;
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("reader").await;
    let auth = m.basic();
    let url = app.url("/v1/transactions/does-not-exist");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url, auth) = (app.client.clone(), url.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..130 {
                statuses.push(client.get(&url).header("authorization", &auth).send().await.unwrap().status().as_u16());
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.unwrap());
    }
    let (not_found, limited) =
        (statuses.iter().filter(|s| **s == 404).count(), statuses.iter().filter(|s| **s == 429).count());
    assert_eq!(statuses.len(), 1040);
    assert!(limited >= 20, "GETs that found nothing must still be charged: {not_found} × 404, {limited} × 429");
    assert!((1000..=1020).contains(&not_found), "the burst, plus at most the refill: {not_found}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_costs_every_item_even_invalid_ones() {
    let (mut config, dir) = sqlite_config().await;
    config.rate_limit_per_second = 0.01;
    config.rate_limit_burst = 5.0;
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("batcher").await;
    let junk: Vec<Value> = (0..5).map(|_| json!({"amount": "x"})).collect();
    let r = app.post(&m, "/v1/transactions/batch", &json!({ "transactions": junk })).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["failed"], 5);
    let r = app.get(&m, "/v1/transactions").await;
    assert_eq!(error_code(r, 429).await.0, "rate_limited");
    app.stop().await;
}

/// Reads what the server sends until it closes the connection, or `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut buf)).await;
    read.ok().map(|_| String::from_utf8_lossy(&buf).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_and_an_idle_connection_are_cut_off() {
    let (mut config, dir) = sqlite_config().await;
    config.http_body_timeout_ms = 500;
    config.http_idle_timeout_secs = 1;
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("slow").await;
    let addr = app.base.trim_start_matches("http://").to_owned();

    // Headers and 10 of 100 announced body bytes, then silence.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/transactions HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-type: application/json\r\n\
         content-length: 100\r\n\r\n{{\"amount\":",
        m.basic()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut slow, Duration::from_secs(10)).await.expect("the server hung up");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");

    // A connection that never sends a request is closed too.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let answer = read_until_closed(&mut idle, Duration::from_secs(10)).await.expect("the server hung up");
    assert!(!answer.contains("200 OK"), "{answer}");
    // Half a request head, then silence (slowloris).
    let mut partial = TcpStream::connect(&addr).await.unwrap();
    partial.write_all(b"GET /v1/transactions HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    read_until_closed(&mut partial, Duration::from_secs(10)).await.expect("the server hung up");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_answers_carry_no_internal_error_text() {
    let (mut config, dir) = sqlite_config().await;
    config.kafka_brokers = "127.0.0.1:1".into(); // nothing listens there
    let app = spawn_with(config, Some(dir)).await;
    let r = app.client.get(app.internal_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"database": "ok", "broker": "unavailable"}));
    app.stop().await;
}

async fn build(config: Config) -> Result<Application, StartupError> {
    Application::build(config, &CancellationToken::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_development_keys_without_the_development_flag() {
    let (config, _dir) = sqlite_config().await;
    let production = Config { development: false, ..config.clone() };
    let missing = Config { secret_hash_key: None, ..production.clone() };
    assert!(matches!(build(missing).await, Err(StartupError::DevelopmentKey(_))));
    let published = Config { secret_hash_key: Some("dev-only-secret-hash-key-change-me".into()), ..production.clone() };
    assert!(matches!(build(published).await, Err(StartupError::DevelopmentKey(_))));
    let operator = Config { admin_token: Some("dev-only-operator-token-change-me".into()), ..production.clone() };
    assert!(matches!(build(operator).await, Err(StartupError::DevelopmentKey(_))));
    // Real keys start; so does the development fallback when asked for.
    assert!(build(production).await.is_ok());
    assert!(build(Config { secret_hash_key: None, development: true, ..config }).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_critical_kafka_options_are_refused() {
    let (config, _dir) = sqlite_config().await;
    for option in ["acks=0", "request.required.acks=1"] {
        let c = Config { kafka_options: vec![option.into()], ..config.clone() };
        assert!(matches!(build(c).await, Err(StartupError::Config(_))), "{option}");
    }
    let fine = Config { kafka_options: vec!["linger.ms=1".into()], ..config };
    assert!(build(fine).await.is_ok());
}

#[test]
fn help_and_debug_never_show_secrets() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_api"))
        .args(["serve", "--help"])
        .env("KAFKA_OPTIONS", "sasl.password=kafka-hunter2")
        .env("DATABASE_URL", "mysql://gateway:db-hunter2@db:3306/gateway")
        .env("SECRET_HASH_KEY", "secret-hunter2-secret-hunter2")
        .env("ADMIN_TOKEN", "operator-hunter2-operator")
        .output()
        .expect("api --help runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("KAFKA_OPTIONS") && text.contains("TRUSTED_PROXIES"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let mut config = Config::local("mysql://gateway:db-hunter2@db:3306/gateway", "t");
    config.kafka_options = vec!["sasl.password=kafka-hunter2".into()];
    config.secret_hash_key = Some("secret-hunter2-secret-hunter2".into());
    config.admin_token = Some("operator-hunter2-operator".into());
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_metrics_and_readiness_are_only_on_the_internal_listener() {
    let app = spawn_sqlite().await;
    for path in ["/v1/admin/accounts", "/metrics", "/readyz"] {
        let r = app.client.get(app.url(path)).bearer_auth(OPERATOR).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path} must not be public");
    }
    let r = app.client.get(app.internal_url("/v1/admin/accounts")).bearer_auth(OPERATOR).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.client.get(app.internal_url("/metrics")).send().await.unwrap().status(), 200);
    // The merchants' API is not on the internal listener.
    assert_eq!(app.client.get(app.internal_url("/v1/transactions")).send().await.unwrap().status(), 404);
    app.stop().await;
}
