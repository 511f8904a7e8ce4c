//! Batching that never holds a message back: a batch takes what the
//! consumer already holds and closes when nothing more is buffered, so
//! `BATCH_WAIT_MS` bounds a batch's filling but never delays a lone
//! message; under load, batches still form.

mod support;

use std::time::Duration;

use support::*;
use transaction_model::Status;

/// Far longer than any limit of these tests: a batch that waited for it
/// would fail them.
const HOUR_MS: u64 = 3_600_000;

async fn metric(port: u16, name: &str) -> Option<f64> {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out = tokio::process::Command::new("curl").args(["-sf", &url]).output().await.ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_message_is_decided_without_waiting_for_the_batch_to_fill() {
    let topics = create_topics(1).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let mut config = config(&topics, &url);
    config.batch_size = 500;
    config.batch_wait_ms = HOUR_MS;
    let app = spawn(config).await;

    // Alone on the topic: the batch holding it can never fill.
    let first = approvable(&unique("lone"));
    produce(&topics.transactions, std::slice::from_ref(&first)).await;
    let collected = collect_ids(&topics.results, std::slice::from_ref(&first.id), Duration::from_secs(90)).await;
    let results = collected.results();
    assert_eq!(results.get(&first.id).map(|r| r.status), Some(Status::Approved), "the lone message is decided");

    // Again with the pipeline at rest: no message behind it pushes it out.
    let second = approvable(&unique("lone"));
    produce(&topics.transactions, std::slice::from_ref(&second)).await;
    let ids = [first.id.clone(), second.id.clone()];
    let collected = collect_ids(&topics.results, &ids, Duration::from_secs(90)).await;
    let consumed = metric(app.port, "processor_messages_consumed_total").await;
    app.stop().await;

    let results = collected.results();
    assert_eq!(results.get(&second.id).map(|r| r.status), Some(Status::Approved), "the second one too");
    assert_eq!(collected.messages.len(), 2, "one result each");
    assert_eq!(consumed, Some(2.0));
    assert_eq!(transaction_store::open(&url).await.unwrap().count().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_still_fill_from_a_backlog() {
    const N: usize = 3000;
    const BATCH: usize = 500;
    let topics = create_topics(1).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let prefix = unique("backlog");
    let workload: Vec<_> = (0..N).map(|i| mixed(&prefix, i)).collect();
    let messages: Vec<_> = workload.iter().map(|(m, _)| m.clone()).collect();
    // Waiting before the processor starts: a backlog, as under load.
    produce(&topics.transactions, &messages).await;

    let mut config = config(&topics, &url);
    config.batch_size = BATCH;
    config.batch_wait_ms = HOUR_MS;
    let app = spawn(config).await;
    let ids: Vec<_> = messages.iter().map(|m| m.id.clone()).collect();
    let collected = collect_ids(&topics.results, &ids, Duration::from_secs(120)).await;
    let batches = metric(app.port, "processor_batch_size_messages_count").await;
    let consumed = metric(app.port, "processor_batch_size_messages_sum").await;
    app.stop().await;

    let results = collected.results();
    assert_eq!(results.len(), N, "one result per id");
    for (m, expected) in &workload {
        assert_eq!(results[&m.id].error_message, *expected, "{}", m.id);
    }
    assert_eq!(consumed, Some(N as f64));
    let batches = batches.expect("batch count");
    // Not one batch per message: what the consumer holds goes together
    // (at least BATCH at a time when the backlog allows; the mean is far
    // above 10 unless batches stopped forming).
    assert!(batches >= (N / BATCH) as f64, "no batch above BATCH_SIZE: {batches}");
    assert!(batches * 10.0 <= N as f64, "{batches} batches for {N} messages");
}
