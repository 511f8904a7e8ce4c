//! Probes the local broker with the cases the gateway's delivery depends on,
//! so a broker that gets them wrong fails here and not as lost or stalled
//! transactions: a fetch from an offset inside a record batch, a group
//! resuming at a committed offset inside a batch, a killed member's
//! partitions taken over at its committed offsets, and a broker restart.
//!
//! The default broker (on `KAFKA_BROKERS`) is the prebuilt memory one; the
//! `durable_` tests probe the durable one with the same cases, plus a
//! restart that keeps messages and offsets (scripts/test-durable).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use testkit::{brokers, create_topics_at, unique, PrivateBroker};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Produces `n` messages to `partition` in one burst under a long linger,
/// so the broker stores them as one record batch; returns their offsets.
async fn produce_one_batch(brokers: &str, topic: &str, partition: i32, n: usize) -> Vec<i64> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "1000")
        .set("batch.num.messages", "100000")
        .create()
        .expect("producer");
    let payloads: Vec<String> = (0..n).map(|i| format!("p{partition}-m{i}")).collect();
    let sends = payloads.iter().map(|p| {
        producer.send(FutureRecord::<str, str>::to(topic).partition(partition).payload(p), Duration::from_secs(30))
    });
    let mut offsets: Vec<i64> =
        futures::future::join_all(sends).await.into_iter().map(|r| r.expect("delivered").offset).collect();
    offsets.sort_unstable();
    offsets
}

fn consumer(brokers: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "300")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer")
}

/// Polls until `n` messages arrived or `limit` passed, then a little longer
/// so that extra (replayed) messages show up too: `(partition, offset, payload)`.
fn poll(consumer: &BaseConsumer, n: usize, limit: Duration) -> Vec<(i32, i64, String)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    let mut settle: Option<Instant> = None;
    while Instant::now() < deadline && settle.is_none_or(|s| Instant::now() < s) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let payload = m.payload().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
            got.push((m.partition(), m.offset(), payload));
        }
        if got.len() >= n && settle.is_none() {
            settle = Some(Instant::now() + Duration::from_secs(1));
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_from_inside_a_record_batch_returns_the_rest_of_that_batch() {
    fetch_inside_a_batch(&brokers()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the durable broker: scripts/test-durable"]
async fn durable_fetch_from_inside_a_record_batch_returns_the_rest_of_that_batch() {
    let broker = PrivateBroker::start_durable().await.expect("TANSU_DURABLE names the durable tansu");
    fetch_inside_a_batch(&broker.address()).await;
}

async fn fetch_inside_a_batch(b: &str) {
    let topic = unique("probe-fetch");
    create_topics_at(b, &[(&topic, 1)]).await;
    let offsets = produce_one_batch(b, &topic, 0, 100).await;
    assert_eq!(offsets, (0..100).collect::<Vec<i64>>());

    let consumer = consumer(b, &unique("probe"));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(50)).unwrap();
    consumer.assign(&tpl).unwrap();
    let got = poll(&consumer, 50, Duration::from_secs(20));

    let got_offsets: Vec<i64> = got.iter().map(|m| m.1).collect();
    assert_eq!(got_offsets, (50..100).collect::<Vec<i64>>(), "exactly offsets 50..100, in order");
    assert_eq!(got[0].2, "p0-m50", "the message at offset 50 is the 51st produced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_resumes_at_a_committed_offset_inside_a_record_batch() {
    group_resume_inside_a_batch(&brokers()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the durable broker: scripts/test-durable"]
async fn durable_group_resumes_at_a_committed_offset_inside_a_record_batch() {
    let broker = PrivateBroker::start_durable().await.expect("TANSU_DURABLE names the durable tansu");
    group_resume_inside_a_batch(&broker.address()).await;
}

async fn group_resume_inside_a_batch(b: &str) {
    let topic = unique("probe-resume");
    create_topics_at(b, &[(&topic, 1)]).await;
    produce_one_batch(b, &topic, 0, 100).await;
    let group = unique("probe");
    let committer = consumer(b, &group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(37)).unwrap();
    committer.commit(&tpl, CommitMode::Sync).unwrap();
    drop(committer);

    let member = consumer(b, &group);
    member.subscribe(&[&topic]).unwrap();
    let got = poll(&member, 63, Duration::from_secs(30));

    let got_offsets: Vec<i64> = got.iter().map(|m| m.1).collect();
    assert_eq!(got_offsets, (37..100).collect::<Vec<i64>>(), "from the committed offset on, nothing before");
}

/// A member SIGKILLed mid-stream (no LeaveGroup): once its session expires
/// another member gets its partitions and starts exactly at the offsets it
/// had committed, with no gap and no replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_members_partitions_move_on_at_its_committed_offsets() {
    takeover_after_kill(&brokers()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the durable broker: scripts/test-durable"]
async fn durable_killed_members_partitions_move_on_at_its_committed_offsets() {
    let broker = PrivateBroker::start_durable().await.expect("TANSU_DURABLE names the durable tansu");
    takeover_after_kill(&broker.address()).await;
}

async fn takeover_after_kill(b: &str) {
    let topic = unique("probe-takeover");
    create_topics_at(b, &[(&topic, 2)]).await;
    for p in 0..2 {
        for _ in 0..4 {
            produce_one_batch(b, &topic, p, 50).await;
        }
    }
    let group = unique("probe");
    let mut member = tokio::process::Command::new(env!("CARGO_BIN_EXE_group_member"))
        .args([b, topic.as_str(), group.as_str(), "3000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("group member starts");
    let mut lines = BufReader::new(member.stdout.take().unwrap()).lines();
    let mut printed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        while count < 120 {
            let line = lines.next_line().await.unwrap().expect("member still running");
            let (p, o) = line.split_once(' ').unwrap();
            printed.insert(p.parse().unwrap(), o.parse().unwrap());
            count += 1;
        }
    })
    .await;
    assert!(read.is_ok(), "the first member consumed {count} messages in 60 s");
    member.kill().await.unwrap(); // SIGKILL: no LeaveGroup, no close

    let survivor = consumer(b, &group);
    let mut all = TopicPartitionList::new();
    all.add_partition(&topic, 0);
    all.add_partition(&topic, 1);
    let committed: BTreeMap<i32, i64> = survivor
        .committed_offsets(all, Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .map(|e| (e.partition(), if let Offset::Offset(o) = e.offset() { o } else { 0 }))
        .collect();
    for (p, last) in &printed {
        // It commits before it prints, so the kill may fall between the two.
        let c = committed[p];
        assert!(c == last + 1 || c == last + 2, "partition {p}: printed {last}, committed {c}");
    }
    let remaining: i64 = committed.values().map(|c| 200 - c).sum();
    survivor.subscribe(&[&topic]).unwrap();
    let got = poll(&survivor, remaining as usize, Duration::from_secs(60));

    for p in 0..2 {
        let offsets: Vec<i64> = got.iter().filter(|m| m.0 == p).map(|m| m.1).collect();
        assert_eq!(offsets, (committed[&p]..200).collect::<Vec<i64>>(), "partition {p} resumes exactly");
    }
}

/// The memory broker keeps nothing across a restart (which is why the
/// local run has a durable mode); clients that lived through it reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_broker_restarts_empty_and_its_clients_reconnect() {
    let mut broker = PrivateBroker::start().await;
    let topic = unique("probe-restart");
    create_topics_at(&broker.address(), &[(&topic, 1)]).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    for i in 0..10 {
        let payload = format!("before-{i}");
        producer.send(FutureRecord::<str, str>::to(&topic).payload(&payload), Duration::from_secs(10)).await.unwrap();
    }
    broker.kill().await;
    broker.restart().await;
    create_topics_at(&broker.address(), &[(&topic, 1)]).await;
    let delivered = producer
        .send(FutureRecord::<str, str>::to(&topic).payload("after"), Duration::from_secs(20))
        .await
        .expect("the producer reconnects");
    assert_eq!(delivered.offset, 0, "the restarted memory broker started empty");

    let reader = consumer(&broker.address(), &unique("probe"));
    reader.subscribe(&[&topic]).unwrap();
    let got = poll(&reader, 1, Duration::from_secs(30));
    broker.kill().await;
    assert_eq!(got.iter().map(|m| m.2.as_str()).collect::<Vec<_>>(), ["after"]);
}

/// The durable broker keeps messages and committed group offsets across a
/// restart of its process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the durable broker: scripts/test-durable"]
async fn durable_broker_keeps_messages_and_group_offsets_across_a_restart() {
    let mut broker = PrivateBroker::start_durable().await.expect("TANSU_DURABLE names the durable tansu");
    let topic = unique("probe-durable");
    create_topics_at(&broker.address(), &[(&topic, 1)]).await;
    produce_one_batch(&broker.address(), &topic, 0, 100).await;
    let group = unique("probe");
    let committer = consumer(&broker.address(), &group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(60)).unwrap();
    committer.commit(&tpl, CommitMode::Sync).unwrap();
    drop(committer);

    broker.kill().await;
    broker.restart().await;

    let member = consumer(&broker.address(), &group);
    member.subscribe(&[&topic]).unwrap();
    let got = poll(&member, 40, Duration::from_secs(60));
    broker.kill().await;
    let got_offsets: Vec<i64> = got.iter().map(|m| m.1).collect();
    assert_eq!(got_offsets, (60..100).collect::<Vec<i64>>(), "messages and the group's offset survived");
    assert_eq!(got[0].2, "p0-m60");
}
