//! Hostile messages produced straight to the topic, then ordinary ones: the
//! processor stays up, every message ends in exactly one result or one dead
//! letter, no dead letter carries card data, and the ordinary ones are all
//! decided; on SQLite and on MariaDB.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::Message;
use support::hostile::{cases, Case};
use support::*;
use time::OffsetDateTime;
use transaction_model::{ResultMessage, Status};
use transaction_store::mysql;

const ORDINARY: usize = 200;

/// Produces each case and returns the offset it got (one partition).
async fn produce_cases(topic: &str, cases: &[Case]) -> Vec<i64> {
    let producer: rdkafka::producer::FutureProducer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("message.max.bytes", "2000000")
        .create()
        .unwrap();
    let mut offsets = Vec::with_capacity(cases.len());
    for case in cases {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
        if let Some(k) = &case.key {
            record = record.key(k.as_slice());
        }
        if let Some(p) = &case.payload {
            record = record.payload(p.as_slice());
        }
        let mut headers = OwnedHeaders::new();
        for (k, v) in &case.headers {
            headers = headers.insert(Header { key: k, value: Some(v.as_slice()) });
        }
        record = record.headers(headers);
        let delivery = producer.send(record, Duration::from_secs(30)).await;
        let delivery = delivery.unwrap_or_else(|(e, _)| panic!("{}: {e}", case.name));
        offsets.push(delivery.offset);
    }
    offsets
}

/// True when `text` holds a run of 12 or more digits (spaces and dashes
/// between them allowed): a card number that was not masked.
fn has_card_number(text: &[u8]) -> bool {
    let mut digits = 0;
    for &b in text {
        match b {
            b'0'..=b'9' => {
                digits += 1;
                if digits >= 12 {
                    return true;
                }
            }
            b' ' | b'-' => {}
            _ => digits = 0,
        }
    }
    false
}

async fn hostile_messages_never_stop_it(database_url: &str) {
    let topics = create_topics(1).await;
    let prefix = unique("h");
    let cases = cases(&prefix);
    let started = OffsetDateTime::now_utc();
    let offsets = produce_cases(&topics.transactions, &cases).await;
    let ordinary: Vec<_> = (0..ORDINARY).map(|i| approvable(&format!("{prefix}-ok-{i}"))).collect();
    produce(&topics.transactions, &ordinary).await;

    // What each hostile case must end in: a result for its id, or a dead
    // letter for its offset.
    let mut expect_result: HashMap<String, &Case> = HashMap::new();
    let mut expect_dead = 0;
    for case in &cases {
        match processor::decode::decode(case.payload.as_deref()) {
            Ok((id, _)) => assert!(expect_result.insert(id.into_string(), case).is_none(), "duplicate id in cases"),
            Err(_) => expect_dead += 1,
        }
    }
    eprintln!("{} hostile cases: {} readable, {expect_dead} unreadable", cases.len(), expect_result.len());

    let app = spawn(config(&topics, database_url)).await;
    let mut ids: Vec<String> = expect_result.keys().cloned().collect();
    ids.extend(ordinary.iter().map(|m| m.id.clone()));
    let total = ids.len();
    let (results, dead) = tokio::join!(
        collect_ids(&topics.results, &ids, Duration::from_secs(120)),
        collect(&topics.dlq, Duration::from_secs(120), |m| m.len() >= expect_dead),
    );
    // Anything extra (a second outcome for a message) gets 3 s to show up.
    let deadline = Instant::now() + Duration::from_secs(3);
    let late = collect(&topics.dlq, Duration::from_secs(60), |m| {
        m.len() > expect_dead || (m.len() >= expect_dead && Instant::now() > deadline)
    })
    .await;
    let metrics = tokio::process::Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{}/metrics", app.port)])
        .output()
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout).into_owned();
    app.stop().await;

    // Exactly one result per readable id, nothing more.
    let mut per_id: HashMap<String, Vec<ResultMessage>> = HashMap::new();
    for m in &results.messages {
        let r: ResultMessage = serde_json::from_slice(m.payload().unwrap()).expect("result json");
        per_id.entry(r.id.clone()).or_default().push(r);
    }
    for id in &ids {
        let n = per_id.get(id).map_or(0, Vec::len);
        assert_eq!(n, 1, "{id}: {n} results ({:?})", expect_result.get(id).map(|c| &c.name));
    }
    assert_eq!(per_id.len(), total, "results for unknown ids");
    // Every ordinary message decided as usual.
    for m in &ordinary {
        assert_eq!(per_id[&m.id][0].status, Status::Approved, "{}", m.id);
    }
    // A result's created_at is never outside the window around receipt.
    let latest = OffsetDateTime::now_utc() + time::Duration::minutes(5);
    for rs in per_id.values() {
        let at = rs[0].created_at;
        assert!(at >= started - time::Duration::hours(1) && at <= latest, "created_at {at} of {}", rs[0].id);
    }

    // Exactly one dead letter per unreadable case, none for the others.
    assert_eq!(late.messages.len(), expect_dead, "dead letters");
    let mut dead_offsets: HashMap<i64, usize> = HashMap::new();
    for m in &dead.messages {
        let offset: i64 = header(m, "source_offset").unwrap().parse().unwrap();
        *dead_offsets.entry(offset).or_default() += 1;
        assert!(!header(m, "dlq_reason").unwrap_or_default().is_empty());
        let payload = m.payload().unwrap_or_default();
        let key = m.key().unwrap_or_default();
        let reason = header(m, "dlq_reason").unwrap_or_default();
        for (what, bytes) in [("payload", payload), ("key", key), ("reason", reason.as_bytes())] {
            assert!(
                !has_card_number(bytes),
                "card number in a dead letter's {what}: {}",
                String::from_utf8_lossy(bytes)
            );
        }
        let text = String::from_utf8_lossy(payload);
        assert!(!text.contains("\"987\""), "CVV in a dead letter: {text}");
        assert!(payload.len() <= processor::redact::MAX_PAYLOAD_BYTES);
    }
    for (case, offset) in cases.iter().zip(&offsets) {
        let dead = dead_offsets.get(offset).copied().unwrap_or(0);
        let readable = processor::decode::decode(case.payload.as_deref()).is_ok();
        assert_eq!(dead, usize::from(!readable), "{}: {dead} dead letters", case.name);
    }

    // Every readable message stored once; the processor consumed them all.
    let repo = transaction_store::open(database_url).await.unwrap();
    assert_eq!(repo.count().await.unwrap(), total as u64, "rows");
    let consumed = format!("processor_messages_consumed_total {}", cases.len() + ORDINARY);
    assert!(metrics.contains(&consumed), "{consumed} not in\n{metrics}");
    eprintln!(
        "{} hostile + {ORDINARY} ordinary: {} results, {} dead letters, no crash",
        cases.len(),
        total,
        expect_dead
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_never_stop_it_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    hostile_messages_never_stop_it(&format!("sqlite://{}", dir.path().join("h.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_never_stop_it_on_mariadb() {
    let url = mysql::create_scratch_database(&mysql_server(), "hostile").await.unwrap();
    hostile_messages_never_stop_it(&url).await;
    mysql::drop_scratch_database(&url).await.unwrap();
}
