//! The two Kafka clients, configured for batched at-least-once delivery.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::ownership::Ownership;

pub type Consumer = StreamConsumer<ProcessorContext>;

/// Prefetched messages kept by the consumer, at most (about 25,000
/// transactions of the usual 330 bytes: a dozen full batches).
const CONSUMER_QUEUE_KBYTES: usize = 8 * 1024;
/// Largest fetch response asked for; each partition's share is still
/// bounded by `max.partition.fetch.bytes` (1 MiB), and a single larger
/// message is still fetched.
const FETCH_MAX_BYTES: usize = 4 * 1024 * 1024;
/// How soon a full consumer queue is looked at again (see `consumer`).
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// Committed offset of each assigned partition at assignment time: messages
/// below it were already stored and published, and are dropped.
#[derive(Clone, Default)]
pub struct ResumeFloors(Arc<Mutex<HashMap<(String, i32), i64>>>);

impl ResumeFloors {
    pub fn get(&self) -> HashMap<(String, i32), i64> {
        self.0.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Forgets a floor once the partition has been read past it.
    pub fn passed(&self, topic: &str, partition: i32) {
        if let Ok(mut f) = self.0.lock() {
            f.remove(&(topic.to_owned(), partition));
        }
    }

    fn set(&self, topic: &str, partition: i32, offset: i64) {
        if let Ok(mut f) = self.0.lock() {
            f.insert((topic.to_owned(), partition), offset);
        }
    }
}

/// Logs rebalances, tracks which partitions this member owns, rewinds
/// resumed partitions when asked to, and turns librdkafka statistics into
/// lag gauges.
pub struct ProcessorContext {
    metrics: Arc<Metrics>,
    floors: ResumeFloors,
    ownership: Ownership,
    rewind: i64,
}

impl ProcessorContext {
    /// Starts each partition `rewind` messages before its committed offset.
    ///
    /// Only for a broker that cannot serve a fetch from the middle of a
    /// stored record batch (tansu 0.6 before the fix skipped that whole
    /// batch, or answered nothing): starting at least one producer batch
    /// earlier lands on or before the batch that holds the committed offset;
    /// what lies below it is dropped by the pipeline. Off by default.
    ///
    /// Fails closed: when the committed offsets cannot be read, the
    /// partitions are not resumed without the rewind. The caller keeps them
    /// paused and the pipeline stops with an error (another member, or this
    /// one restarted, takes them over).
    fn rewind_assignment(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) -> Result<(), String> {
        if self.rewind <= 0 {
            return Ok(());
        }
        let committed = consumer
            .committed_offsets(tpl.clone(), Duration::from_secs(10))
            .map_err(|e| format!("could not read committed offsets for the resume rewind: {e}"))?;
        for e in committed.elements() {
            if let Offset::Offset(c) = e.offset() {
                let start = c.saturating_sub(self.rewind).max(0);
                if start < c {
                    tpl.set_partition_offset(e.topic(), e.partition(), Offset::Offset(start))
                        .map_err(|err| format!("could not rewind {}[{}]: {err}", e.topic(), e.partition()))?;
                    self.floors.set(e.topic(), e.partition(), c);
                    tracing::info!(
                        topic = e.topic(),
                        partition = e.partition(),
                        committed = c,
                        start,
                        "resuming partition with rewind"
                    );
                }
            }
        }
        Ok(())
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        self.pre_rebalance(consumer, &rebalance_of(err, tpl));
        if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
            // Offsets of finished batches may still be on their way (commits
            // are asynchronous): commit them before the partitions move, so
            // the next owner starts after them.
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(e) => tracing::warn!(error = %e, "commit on revoke failed; the next owner may redo a batch"),
            }
            for e in tpl.elements() {
                self.floors.passed(e.topic(), e.partition());
            }
        }
        let result = match (err, consumer.rebalance_protocol()) {
            (RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, RebalanceProtocol::Cooperative) => {
                self.ownership.revoked(tpl);
                consumer.incremental_unassign(tpl)
            }
            _ => {
                self.ownership.revoked_all();
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "unassign failed");
        }
        self.post_rebalance(consumer, &rebalance_of(err, tpl));
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        self.pre_rebalance(consumer, &Rebalance::Assign(tpl));
        let rewound = self.rewind_assignment(consumer, tpl);
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(tpl),
            _ => consumer.assign(tpl),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "assign failed");
        }
        self.ownership.assigned(tpl);
        // Assigned while a stage is retrying, or without the rewind it
        // needs: nothing may be fetched from them yet.
        if let Err(reason) = &rewound {
            tracing::error!(reason, "partitions kept paused: not resuming without the rewind (fail closed)");
            self.ownership.fail(reason.clone());
        }
        if rewound.is_err() || self.ownership.is_paused() {
            if let Err(e) = consumer.pause(tpl) {
                tracing::error!(error = %e, "could not pause newly assigned partitions");
                self.ownership.fail(format!("could not pause newly assigned partitions: {e}"));
            }
        } else if let Err(e) = consumer.resume(tpl) {
            // A partition paused during an earlier assignment keeps
            // librdkafka's pause flag; it must fetch again now.
            tracing::warn!(error = %e, "could not resume newly assigned partitions");
        }
        self.post_rebalance(consumer, &Rebalance::Assign(tpl));
    }
}

impl ClientContext for ProcessorContext {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in stats.topics {
            for (partition, p) in t.partitions {
                // -1 is librdkafka's "unknown" (not assigned, or no offset yet).
                if partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics.consumer_lag.with_label_values(&[&topic, &partition.to_string()]).set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for ProcessorContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            self.assign(consumer, tpl);
        } else {
            // Revocations, and errors (which unassign everything).
            self.revoke(consumer, err, tpl);
        }
    }

    fn pre_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        tracing::info!(?rebalance, "partition rebalance starting");
    }

    fn post_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            for e in tpl.elements() {
                let _ = self.metrics.consumer_lag.remove_label_values(&[e.topic(), &e.partition().to_string()]);
            }
        }
        tracing::info!(?rebalance, "partition rebalance done");
    }
}

fn rebalance_of(err: RDKafkaRespErr, tpl: &TopicPartitionList) -> Rebalance<'_> {
    match err {
        RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
        other => Rebalance::Error(KafkaError::Rebalance(other.into())),
    }
}

fn base_config(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka_brokers).set("client.id", "transaction-processor");
    c
}

/// Operator-supplied options go last so they win over the defaults here.
fn apply_extra_options(c: &mut ClientConfig, config: &Config) -> Result<(), KafkaError> {
    for (k, v) in config.extra_kafka_options().map_err(KafkaError::ClientCreation)? {
        c.set(k, v);
    }
    Ok(())
}

pub fn consumer(
    config: &Config,
    metrics: Arc<Metrics>,
    floors: ResumeFloors,
    ownership: Ownership,
) -> Result<Consumer, KafkaError> {
    let mut c = base_config(config);
    c.set("group.id", &config.consumer_group)
        // Offsets are stored by hand once a batch is in the database and its
        // results are acknowledged, then committed right away (see pipeline).
        .set("enable.auto.offset.store", "false")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", (config.session_timeout_ms / 3).max(100).to_string())
        // Apache Kafka answers a fetch as soon as data arrives, whatever
        // this is; the local broker (tansu) re-checks a waiting fetch at
        // half the remaining wait, so at 100 ms a lone message waited about
        // 20 ms there (`broker_latency`). The cost: an idle processor sends
        // about a hundred empty fetches a second to each broker.
        .set("fetch.wait.max.ms", "10")
        // Memory: by default librdkafka prefetches up to 64 MiB into the
        // consumer's queue and asks for up to 50 MiB per fetch, most of a
        // processor's footprint. A few batches ahead keep the stages fed
        // (a batch takes what is buffered); more only costs memory.
        .set("queued.max.messages.kbytes", CONSUMER_QUEUE_KBYTES.to_string())
        .set("fetch.max.bytes", FETCH_MAX_BYTES.to_string())
        // Once that queue is full, librdkafka postpones the partition's next
        // fetch by this much (default 1 s): with a queue a few batches deep
        // it is full at every batch under load, and the processor stalled
        // about a second at a time (36k tx/s instead of 64k in `e2e`).
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
        .set("statistics.interval.ms", "5000");
    apply_extra_options(&mut c, config)?;
    c.create_with_context(ProcessorContext { metrics, floors, ownership, rewind: config.resume_rewind_messages })
}

pub fn producer(config: &Config) -> Result<FutureProducer, KafkaError> {
    let mut c = base_config(config);
    c.set("acks", "all")
        // Low, so a lone result leaves at once; a batch's results are all
        // handed over within about a millisecond, so they still travel in
        // few requests, and under load requests fill while others are in
        // flight.
        .set("linger.ms", "1")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        // A dead broker fails a delivery after this long; the batch is then
        // retried as a whole, offsets held.
        .set("message.timeout.ms", "30000");
    apply_extra_options(&mut c, config)?;
    c.create()
}
