//! `Prefer: wait=N`: the decision in the response, through the real broker
//! and processor; pending when the wait runs out; replays answer the
//! decision once known; an abandoned wait holds nothing; a replica killed
//! while clients wait loses nothing and their retries get the decision.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;
use tokio::process::{Child, Command};

async fn post_waiting(app: &TestApp, m: &Merchant, path: &str, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request =
        app.client.post(app.url(path)).header("authorization", m.basic()).header("prefer", "wait=10").json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.expect("request sent")
}

async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let text = app.client.get(app.internal_url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_client_gets_the_decision_in_the_response() {
    let (config, dir, results) = waiting_config().await;
    let (database_url, topic) = (config.database_url.clone(), config.transactions_topic.clone());
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("waiting-merchant").await;
    let extras = ProcessorExtras { results_topic: Some(results), ..Default::default() };
    let processor = spawn_processor_with(&brokers(), &database_url, &topic, extras).await;

    let r = post_waiting(&app, &m, "/v1/transactions", &approvable(), None).await;
    assert_eq!(r.status(), 201, "decided inline");
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["status"], "approved", "{t}");
    assert_eq!(t["card_brand"], "visa");
    assert_eq!(t["card_masked"], "411111******1111");
    assert_eq!(t["error_message"], Value::Null);
    assert!(t["processed_at"].is_string());
    // The answer is what the merchant reads back.
    let stored: Value =
        app.get(&m, &format!("/v1/transactions/{}", t["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(stored, t);

    let mut bad_luhn = approvable();
    bad_luhn["credit_card_number"] = json!("4111111111111112");
    let r = post_waiting(&app, &m, "/v1/transactions", &bad_luhn, None).await;
    assert_eq!(r.status(), 201);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["status"], "rejected", "{t}");
    assert_eq!(t["error_message"], "invalid credit card number");

    let mut over_limit = approvable();
    over_limit["amount"] = json!("1000.01");
    let batch = json!({"transactions": [approvable(), over_limit, {"amount": 1}]});
    let r = post_waiting(&app, &m, "/v1/transactions/batch", &batch, None).await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    let statuses: Vec<&str> = b["results"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["approved", "rejected", "error"], "{b}");
    assert_eq!(b["results"][1]["transaction"]["status"], "rejected");
    assert_eq!(b["results"][1]["transaction"]["error_message"], "you dont have limit for this transaction");

    // Without the preference: 202 pending, as before.
    let r = app.post(&m, "/v1/transactions", &approvable()).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "pending");

    assert_eq!(metric(&app, "api_decision_waits_total{outcome=\"decided\"}").await, 4.0);
    assert_eq!(metric(&app, "api_decision_waiters ").await, 0.0, "no wait left behind");
    processor.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_decision_the_wait_runs_out_pending_and_a_replay_answers_it_once_known() {
    let (mut config, dir, results) = waiting_config().await;
    config.max_decision_wait_ms = 1000;
    let (database_url, topic) = (config.database_url.clone(), config.transactions_topic.clone());
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("patient-merchant").await;

    // No processor yet: the wait, capped at 1 s by the server, runs out.
    let started = Instant::now();
    let r = post_waiting(&app, &m, "/v1/transactions", &approvable(), Some("key-1")).await;
    assert_eq!(r.status(), 202);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["status"], "pending");
    assert!(started.elapsed() >= Duration::from_millis(900), "the capped wait was honoured");
    assert_eq!(metric(&app, "api_decision_waits_total{outcome=\"timed_out\"}").await, 1.0);

    // A client that hangs up while waiting leaves nothing registered.
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let gone = impatient
        .post(app.url("/v1/transactions"))
        .header("authorization", m.basic())
        .header("prefer", "wait=10")
        .json(&approvable())
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up");
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&app, "api_decision_waiters ").await != 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&app, "api_decision_waiters ").await, 0.0, "the abandoned wait was dropped");

    let extras = ProcessorExtras { results_topic: Some(results), ..Default::default() };
    let processor = spawn_processor_with(&brokers(), &database_url, &topic, extras).await;
    let id = first["id"].as_str().unwrap();
    assert_eq!(wait_decided(&app, &m, id).await["status"], "approved");

    // The replay, without waiting, answers the decision now known.
    let r = app.post_with_key(&m, "/v1/transactions", "key-1", &approvable()).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let replay: Value = r.json().await.unwrap();
    assert_eq!((replay["id"].as_str(), replay["status"].as_str()), (Some(id), Some("approved")));
    processor.stop().await;
    app.stop().await;
}

/// The API binary as its own process, against `database_url` and topics.
fn spawn_api(database_url: &str, topic: &str, results: &str, port: u16, admin_port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_api"))
        .arg("serve")
        .env("KAFKA_BROKERS", brokers())
        .env("DATABASE_URL", database_url)
        .env("TRANSACTIONS_TOPIC", topic)
        .env("RESULTS_TOPIC", results)
        .env("MAX_DECISION_WAIT_MS", "10000")
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("ADMIN_HTTP_ADDR", format!("127.0.0.1:{admin_port}"))
        .env("SECRET_HASH_KEY", SECRET_KEY)
        .env("CARD_ENCRYPTION_KEYS", testkit::TEST_CARD_KEYRING)
        .env("CVV_ENCRYPTION_KEYS", testkit::TEST_CVV_KEYRING)
        .env("GATEWAY_DEVELOPMENT", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("api binary starts")
}

async fn until_healthy(client: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the API on port {port} did not become healthy");
}

/// Idempotency records completed, read from the API's SQLite file.
fn completed_keys(path: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(path).unwrap();
    db.query_row("SELECT count(*) FROM idempotency_keys WHERE state = 'done'", [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_while_clients_wait_loses_nothing_and_their_retries_get_the_decision() {
    const N: usize = 5;
    let (config, dir, results) = waiting_config().await;
    let (database_url, topic) = (config.database_url.clone(), config.transactions_topic.clone());
    let db_path = dir.path().join("api.db");
    // The account, created in the database both replicas use.
    let store = transaction_store::open_api_store(&database_url).await.unwrap();
    let admin = api::account_admin::AccountAdmin {
        repo: store.accounts.clone(),
        hasher: api::startup::secret_hasher(Some(SECRET_KEY)).unwrap(),
    };
    let secret = admin.create("crash-merchant", "Crash Ltd").await.unwrap().secret;
    let m = Merchant { id: "crash-merchant".into(), secret };
    let client = reqwest::Client::new();

    let (port, admin_port) = (testkit::free_port(), testkit::free_port());
    let mut first = spawn_api(&database_url, &topic, &results, port, admin_port);
    until_healthy(&client, port).await;
    // No processor: every client waits.
    let waits: Vec<_> = (0..N)
        .map(|i| {
            let request = client
                .post(format!("http://127.0.0.1:{port}/v1/transactions"))
                .header("authorization", m.basic())
                .header("idempotency-key", format!("crash-{i}"))
                .header("prefer", "wait=10")
                .json(&approvable());
            tokio::spawn(request.send())
        })
        .collect();
    // Killed once every transaction is on the broker and its key recorded:
    // the clients are then waiting for decisions.
    let deadline = Instant::now() + Duration::from_secs(30);
    while completed_keys(&db_path) < N as i64 {
        assert!(Instant::now() < deadline, "the requests were not accepted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().await.unwrap();
    for w in waits {
        assert!(w.await.unwrap().is_err(), "a waiting client saw the replica die");
    }

    let (port, admin_port) = (testkit::free_port(), testkit::free_port());
    let _second = spawn_api(&database_url, &topic, &results, port, admin_port);
    until_healthy(&client, port).await;
    let extras = ProcessorExtras { results_topic: Some(results), ..Default::default() };
    let processor = spawn_processor_with(&brokers(), &database_url, &topic, extras).await;

    let mut ids = Vec::new();
    for i in 0..N {
        let r = client
            .post(format!("http://127.0.0.1:{port}/v1/transactions"))
            .header("authorization", m.basic())
            .header("idempotency-key", format!("crash-{i}"))
            .header("prefer", "wait=10")
            .json(&approvable())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "the retry gets the decision");
        let t: Value = r.json().await.unwrap();
        assert_eq!(t["status"], "approved", "{t}");
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    // The same transactions: the ones on the topic, each once.
    let produced = testkit::consume(&topic, Duration::from_secs(5), |read| read.len() > N).await;
    let mut on_topic: Vec<String> = produced.iter().map(|m| payload(m)["id"].as_str().unwrap().to_owned()).collect();
    on_topic.sort();
    ids.sort();
    assert_eq!(ids, on_topic, "retries answered the transactions produced before the crash");
    assert_eq!(produced.len(), N, "nothing produced twice");
    let list: Value = client
        .get(format!("http://127.0.0.1:{port}/v1/transactions"))
        .header("authorization", m.basic())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), N, "{list}");
    processor.stop().await;
}
