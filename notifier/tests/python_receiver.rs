//! The demo receiver `scripts/webhook-receiver.py` (what the local run
//! starts) verifies what the notifier really sends: every event verified
//! and printed once, nothing refused.

mod support;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use notifier::clock::SystemClock;
use notifier::event::{EVENT_APPROVED, EVENT_REJECTED};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const N: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_receiver_verifies_real_deliveries() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/webhook-receiver.py");
    let self_test = Command::new("python3").arg(script).arg("--self-test").output().await.expect("python3 runs");
    assert!(self_test.status.success(), "{}", String::from_utf8_lossy(&self_test.stderr));

    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let topic = unique("res");
    testkit::create_topics(&[(&topic, 1)]).await;
    let repo = transaction_store::open_webhooks(&url).await.unwrap();
    let port = testkit::free_port();
    let merchant = unique("demo");
    let e =
        endpoint(repo.as_ref(), &merchant, &format!("http://127.0.0.1:{port}/hook"), &[EVENT_APPROVED, EVENT_REJECTED])
            .await;
    let mut child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg("--secret")
        .arg(&e.secret)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert!(first.starts_with("webhook receiver on"), "{first}");

    let running = spawn(config(&url, &topic), Arc::new(SystemClock)).await;
    let results: Vec<_> = (0..N).map(|i| result(&unique("tx"), &merchant, i)).collect();
    produce_results(&topic, &results).await;
    let mut verified = std::collections::HashSet::new();
    while verified.len() < N {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the receiver prints each event")
            .unwrap()
            .expect("receiver still running");
        assert!(!line.starts_with("REFUSED"), "{line}");
        if let Some(rest) = line.strip_prefix("verified ") {
            verified.insert(rest.split(' ').next().unwrap().to_owned());
            assert!(line.contains("411111******1111"), "{line}");
        }
    }
    assert_eq!(verified.len(), N);
    running.stop().await;
    let _ = child.start_kill();
}
