//! A consumer-group member in a process of its own, for the broker probe
//! test to SIGKILL: it joins `GROUP` on `TOPIC`, and for every message
//! commits the next offset synchronously, then prints `partition offset`.
//! A line on stdout is thus an offset the group has committed.
//!
//! Usage: group_member BROKERS TOPIC GROUP SESSION_TIMEOUT_MS

use std::io::Write;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, group, session_ms] = args.as_slice() else {
        eprintln!("usage: group_member BROKERS TOPIC GROUP SESSION_TIMEOUT_MS");
        std::process::exit(2);
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", session_ms)
        .set("heartbeat.interval.ms", "300")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = std::io::stdout().lock();
    loop {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else { continue };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(m.topic(), m.partition(), Offset::Offset(m.offset() + 1)).expect("offset");
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
        writeln!(out, "{} {}", m.partition(), m.offset()).expect("stdout");
        out.flush().expect("stdout");
    }
}
