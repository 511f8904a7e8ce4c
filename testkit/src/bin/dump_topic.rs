//! Writes every message of a topic, raw, to a file: key, header names and
//! values, payload, each followed by a newline. For tests that scan what a
//! topic holds byte for byte (the card-data canary).
//!
//! Usage: dump_topic BROKERS TOPIC OUT_FILE

use std::io::Write;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, out] = args.as_slice() else {
        eprintln!("usage: dump_topic BROKERS TOPIC OUT_FILE");
        std::process::exit(2);
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("dump-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout).expect("metadata");
    let mut partitions = TopicPartitionList::new();
    let mut expected = 0;
    for p in metadata.topics().iter().filter(|t| t.name() == topic).flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout).expect("watermarks");
        expected += high - low;
        partitions.add_partition_offset(topic, p.id(), Offset::Beginning).expect("partition");
    }
    consumer.assign(&partitions).expect("assign");
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).expect("output file"));
    let (mut read, deadline) = (0, Instant::now() + Duration::from_secs(60));
    while read < expected && Instant::now() < deadline {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else { continue };
        file.write_all(m.key().unwrap_or_default()).expect("write");
        file.write_all(b"\n").expect("write");
        for h in m.headers().iter().flat_map(|hs| hs.iter()) {
            file.write_all(h.key.as_bytes()).expect("write");
            file.write_all(b"=").expect("write");
            file.write_all(h.value.unwrap_or_default()).expect("write");
            file.write_all(b"\n").expect("write");
        }
        file.write_all(m.payload().unwrap_or_default()).expect("write");
        file.write_all(b"\n").expect("write");
        read += 1;
    }
    file.flush().expect("write");
    eprintln!("dump_topic: {topic}: {read} of {expected} messages");
    if read < expected {
        std::process::exit(1);
    }
}
