//! The processor against the real broker, on SQLite and on MariaDB.

mod support;

use std::time::Duration;

use support::*;
use transaction_model::{Status, TransactionId};
use transaction_store::mysql;

const N: usize = 6000;

async fn processes_each_message_once(database_url: &str) {
    let topics = create_topics(3).await;
    let prefix = unique("t");
    let workload: Vec<_> = (0..N).map(|i| mixed(&prefix, i)).collect();
    let messages: Vec<_> = workload.iter().map(|(m, _)| m.clone()).collect();
    produce(&topics.transactions, &messages).await;

    let app = spawn(config(&topics, database_url)).await;
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let collected = collect_ids(&topics.results, &ids, Duration::from_secs(120)).await;
    app.stop().await;

    let results = collected.results();
    assert_eq!(results.len(), N, "one result per id");
    let repo = transaction_store::open(database_url).await.unwrap();
    assert_eq!(repo.count().await.unwrap(), N as u64, "one row per id");
    for (m, expected) in &workload {
        let r = &results[&m.id];
        assert_eq!(r.error_message, *expected, "{}", m.id);
        assert_eq!(r.status, if expected.is_empty() { Status::Approved } else { Status::Rejected });
        assert_eq!(r.amount_cents, Some(m.amount.cents()));
        assert_eq!(r.account_id.as_deref(), Some("merchant-1"));
        let stored = repo.find(&TransactionId::try_from(m.id.as_str()).unwrap()).await.unwrap().unwrap();
        assert_eq!(stored.status, r.status);
        assert_eq!(stored.error_message, r.error_message);
        assert_eq!(stored.card_masked.as_ref().map(|c| c.as_str()), r.card_masked.as_ref().map(|c| c.as_str()));
        assert!(!format!("{stored:?}").contains(&m.credit_card_number), "full card number stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_thousands_once_each_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    processes_each_message_once(&format!("sqlite://{}", dir.path().join("p.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_thousands_once_each_on_mariadb() {
    let url = mysql::create_scratch_database(&mysql_server(), "processor_test").await.unwrap();
    processes_each_message_once(&url).await;
    mysql::drop_scratch_database(&url).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_go_to_the_dead_letter_topic_and_do_not_block() {
    let topics = create_topics(1).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let good_before = approvable(&unique("good"));
    let good_after = approvable(&unique("good"));
    let card_bearing = br#"{"credit_card_number":"4111111111111111","credit_card_cvv":"987","amount":5}"#.to_vec();
    let raw = vec![
        (Some(good_before.id.clone()), Some(serde_json::to_vec(&good_before).unwrap())),
        (Some("p1".to_owned()), Some(b"not json at all".to_vec())),
        (Some("p2".to_owned()), Some(card_bearing)),
        (Some("p3".to_owned()), Some(br#"{"id":""}"#.to_vec())),
        (Some("p4".to_owned()), Some(br#"{"id":42}"#.to_vec())),
        (Some("p5".to_owned()), None),
        (Some("p6".to_owned()), Some(vec![0xff, 0x00, 0xfe])),
        (Some(good_after.id.clone()), Some(serde_json::to_vec(&good_after).unwrap())),
    ];
    produce_raw(&topics.transactions, &raw).await;

    let app = spawn(config(&topics, &url)).await;
    let results =
        collect_ids(&topics.results, &[good_before.id.clone(), good_after.id.clone()], Duration::from_secs(60)).await;
    let dead = collect(&topics.dlq, Duration::from_secs(60), |m| m.len() >= 6).await;
    app.stop().await;

    assert_eq!(results.results().len(), 2);
    assert!(results.results().values().all(|r| r.status == Status::Approved));
    let mut keys: Vec<_> =
        dead.messages.iter().map(|m| String::from_utf8_lossy(rdkafka::Message::key(m).unwrap()).into_owned()).collect();
    keys.sort();
    assert_eq!(keys, ["p1", "p2", "p3", "p4", "p5", "p6"]);
    for m in &dead.messages {
        let reason = header(m, "dlq_reason").expect("reason header");
        assert!(!reason.is_empty());
        assert_eq!(header(m, "source_topic").as_deref(), Some(topics.transactions.as_str()));
        let payload = rdkafka::Message::payload(m).map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
        assert!(!payload.contains("4111111111111111") && !payload.contains("987"), "card data in DLQ: {payload}");
    }
    assert_eq!(transaction_store::open(&url).await.unwrap().count().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_id_keeps_and_republishes_its_first_decision() {
    let topics = create_topics(1).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let id = unique("dup");
    let first = approvable(&id);
    let mut second = approvable(&id);
    second.amount = transaction_model::Amount::from_cents(500_000);
    let marker = approvable(&unique("marker"));
    produce(&topics.transactions, &[first]).await;
    produce(&topics.transactions, &[second, marker.clone()]).await;

    let app = spawn(config(&topics, &url)).await;
    let collected = collect(&topics.results, Duration::from_secs(60), |m| m.len() >= 3).await;
    app.stop().await;

    let for_id: Vec<_> = collected
        .messages
        .iter()
        .map(|m| {
            serde_json::from_slice::<transaction_model::ResultMessage>(rdkafka::Message::payload(m).unwrap()).unwrap()
        })
        .filter(|r| r.id == id)
        .collect();
    assert_eq!(for_id.len(), 2, "each delivery gets a result");
    assert!(for_id.iter().all(|r| r.status == Status::Approved && r.amount_cents == Some(1050)), "{for_id:?}");
    assert_eq!(for_id[0], for_id[1], "the stored decision is re-published unchanged");
    assert_eq!(transaction_store::open(&url).await.unwrap().count().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_header_travels_to_the_result() {
    let topics = create_topics(1).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let m = approvable(&unique("rid"));
    let producer = producer();
    let payload = serde_json::to_vec(&m).unwrap();
    let headers = rdkafka::message::OwnedHeaders::new()
        .insert(rdkafka::message::Header { key: "request_id", value: Some("req-123") });
    producer
        .send(
            rdkafka::producer::FutureRecord::to(&topics.transactions).key(&m.id).payload(&payload).headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let app = spawn(config(&topics, &url)).await;
    let collected = collect_ids(&topics.results, std::slice::from_ref(&m.id), Duration::from_secs(60)).await;
    app.stop().await;
    assert_eq!(header(&collected.messages[0], "request_id").as_deref(), Some("req-123"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_endpoints_answer() {
    let topics = create_topics(1).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let prefix = unique("m");
    let workload: Vec<_> = (0..60).map(|i| mixed(&prefix, i)).collect();
    let messages: Vec<_> = workload.iter().map(|(m, _)| m.clone()).collect();
    produce(&topics.transactions, &messages).await;
    let app = spawn(config(&topics, &url)).await;
    let ids: Vec<_> = messages.iter().map(|m| m.id.clone()).collect();
    collect_ids(&topics.results, &ids, Duration::from_secs(60)).await;

    let base = format!("http://127.0.0.1:{}", app.port);
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let out =
                tokio::process::Command::new("curl").args(["-s", "-w", "\n%{http_code}", &url]).output().await.unwrap();
            String::from_utf8(out.stdout).unwrap()
        }
    };
    assert!(get("/healthz").await.ends_with("200"));
    let ready = get("/readyz").await;
    assert!(ready.ends_with("200"), "{ready}");
    let metrics = get("/metrics").await;
    app.stop().await;
    assert!(metrics.contains("processor_messages_consumed_total 60"), "{metrics}");
    assert!(metrics.contains(r#"processor_transactions_total{reason="none",status="approved"} 20"#), "{metrics}");
    assert!(metrics.contains(r#"processor_transactions_total{reason="over_limit",status="rejected"} 10"#), "{metrics}");
    assert!(metrics.contains("processor_results_published_total 60"), "{metrics}");
    assert!(metrics.contains("processor_batch_size_messages_count"), "{metrics}");
}

/// A group whose committed offset falls inside a producer's record batch
/// resumes exactly there: nothing below it is redone, nothing above it is
/// skipped, with the resume rewind off (the default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_a_committed_offset_inside_a_record_batch() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};

    let topics = create_topics(1).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let prefix = unique("mid");
    // One send burst with a long linger: one record batch on the broker.
    let messages: Vec<_> = (0..500).map(|i| approvable(&format!("{prefix}-{i}"))).collect();
    let producer: rdkafka::producer::FutureProducer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "500")
        .create()
        .unwrap();
    let payloads: Vec<_> = messages.iter().map(|m| serde_json::to_vec(m).unwrap()).collect();
    let sends = messages.iter().zip(&payloads).map(|(m, p)| {
        producer.send(
            rdkafka::producer::FutureRecord::to(&topics.transactions).key(&m.id).payload(p),
            Duration::from_secs(10),
        )
    });
    for r in futures::future::join_all(sends).await {
        r.unwrap();
    }

    let config = config(&topics, &url);
    let committer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", &config.consumer_group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topics.transactions, 0, Offset::Offset(250)).unwrap();
    committer.commit(&tpl, CommitMode::Sync).unwrap();
    drop(committer);

    let app = spawn(config).await;
    let expected: Vec<String> = messages[250..].iter().map(|m| m.id.clone()).collect();
    let collected = collect_ids(&topics.results, &expected, Duration::from_secs(60)).await;
    // Read the results again (a new reader first joins its group, which can
    // take long), and once it has 250 give a wrongly replayed head of the
    // batch 3 s more to show up.
    let mut complete_at: Option<std::time::Instant> = None;
    let extra = collect(&topics.results, Duration::from_secs(90), |m| {
        if complete_at.is_none() && m.len() >= 250 {
            complete_at = Some(std::time::Instant::now());
        }
        m.len() > 250 || complete_at.is_some_and(|t| t.elapsed() > Duration::from_secs(3))
    })
    .await;
    app.stop().await;

    assert_eq!(collected.results().len(), 250, "every message from the committed offset on");
    assert_eq!(extra.messages.len(), 250, "nothing below the committed offset redone");
    assert_eq!(transaction_store::open(&url).await.unwrap().count().await.unwrap(), 250);
}
