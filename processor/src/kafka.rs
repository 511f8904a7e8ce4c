//! The two Kafka clients, configured for batched at-least-once delivery.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance, RebalanceProtocol, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;
use crate::metrics::Metrics;

pub type Consumer = StreamConsumer<ProcessorContext>;

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

/// Logs rebalances, rewinds resumed partitions, and turns librdkafka
/// statistics into lag gauges.
pub struct ProcessorContext {
    metrics: Arc<Metrics>,
    floors: ResumeFloors,
    rewind: i64,
}

impl ProcessorContext {
    /// Starts each partition `rewind` messages before its committed offset.
    ///
    /// Why: a broker that cannot serve a fetch from the middle of a stored
    /// record batch (tansu 0.6 skips that whole batch, or answers nothing)
    /// would otherwise lose the rest of the batch on every resume. Starting
    /// at least one producer batch earlier lands on or before the batch
    /// that holds the committed offset; what lies below it is dropped by the
    /// pipeline. With Apache Kafka this only re-reads `rewind` messages.
    fn rewind_assignment(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        if self.rewind <= 0 {
            return;
        }
        let committed = match consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not read committed offsets; resuming without rewind");
                return;
            }
        };
        for e in committed.elements() {
            if let Offset::Offset(c) = e.offset() {
                let start = (c - self.rewind).max(0);
                if start < c && tpl.set_partition_offset(e.topic(), e.partition(), Offset::Offset(start)).is_ok() {
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
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            // Revocations and errors: librdkafka's default handling.
            if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                for e in tpl.elements() {
                    self.floors.passed(e.topic(), e.partition());
                }
            }
            self.pre_rebalance(consumer, &rebalance_of(err, tpl));
            let result = match (err, consumer.rebalance_protocol()) {
                (RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, RebalanceProtocol::Cooperative) => {
                    consumer.incremental_unassign(tpl)
                }
                _ => consumer.unassign(),
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "unassign failed");
            }
            self.post_rebalance(consumer, &rebalance_of(err, tpl));
            return;
        }
        self.pre_rebalance(consumer, &Rebalance::Assign(tpl));
        self.rewind_assignment(consumer, tpl);
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(tpl),
            _ => consumer.assign(tpl),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "assign failed");
        }
        self.post_rebalance(consumer, &Rebalance::Assign(tpl));
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

pub fn consumer(config: &Config, metrics: Arc<Metrics>, floors: ResumeFloors) -> Result<Consumer, KafkaError> {
    let mut c = base_config(config);
    c.set("group.id", &config.consumer_group)
        // Offsets are stored by hand once a batch is in the database and its
        // results are acknowledged, then committed right away (see pipeline).
        .set("enable.auto.offset.store", "false")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", (config.session_timeout_ms / 3).max(100).to_string())
        .set("fetch.wait.max.ms", "100")
        .set("statistics.interval.ms", "5000");
    apply_extra_options(&mut c, config)?;
    c.create_with_context(ProcessorContext { metrics, floors, rewind: config.resume_rewind_messages })
}

pub fn producer(config: &Config) -> Result<FutureProducer, KafkaError> {
    let mut c = base_config(config);
    c.set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        // A dead broker fails a delivery after this long; the batch is then
        // retried as a whole, offsets held.
        .set("message.timeout.ms", "30000");
    apply_extra_options(&mut c, config)?;
    c.create()
}
