//! Liveness apart from dependencies: `/healthz` answers as soon as the
//! process runs, even while the database cannot be reached; `/readyz` says
//! it is not ready and why.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;
use tokio::process::Command;

async fn get(port: u16, path: &str) -> Option<(String, String)> {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", "-w", "\n%{http_code}", &format!("http://127.0.0.1:{port}{path}")])
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((body.to_owned(), code.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_the_database_is_unreachable() {
    let topics = create_topics(1).await;
    let http_port = testkit::free_port();
    // Nothing listens there: the processor keeps trying to open it.
    let database = format!("mysql://root@127.0.0.1:{}/nothing", testkit::free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_processor"))
        .env("KAFKA_BROKERS", brokers())
        .env("DATABASE_URL", &database)
        .env("TRANSACTIONS_TOPIC", &topics.transactions)
        .env("RESULTS_TOPIC", &topics.results)
        .env("DLQ_TOPIC", &topics.dlq)
        .env("CONSUMER_GROUP", unique("health"))
        .env("HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env("CARD_HASH_KEY", "health-test-card-hash-key")
        .env("CARD_ENCRYPTION_KEYS", testkit::TEST_CARD_KEYRING)
        .env("CVV_ENCRYPTION_KEYS", testkit::TEST_CVV_KEYRING)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Some(answer) = get(http_port, "/healthz").await.filter(|(_, code)| code == "200") {
            break answer;
        }
        assert!(Instant::now() < deadline, "/healthz never answered while the database was down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health.0, "ok");
    let (body, code) = get(http_port, "/readyz").await.unwrap();
    assert_eq!(code, "503", "{body}");
    assert!(body.contains("not open yet"), "{body}");
    // Still waiting for the database, still alive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(child.try_wait().unwrap().is_none(), "the processor gave up on the database");
    assert_eq!(get(http_port, "/healthz").await.unwrap().1, "200");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
