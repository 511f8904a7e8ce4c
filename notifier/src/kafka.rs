//! The results consumer: its own group, offsets stored by hand once a
//! batch's deliveries are recorded, and a rewind on assignment.
//!
//! The rewind is the processor's (see its `kafka.rs`): tansu 0.6 cannot
//! fetch from inside a stored record batch, so each partition starts
//! `resume_rewind_messages` before its committed offset. Here the re-read
//! results need no filtering: recording a delivery already recorded is a
//! no-op (`(endpoint_id, event_id)` is the key).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance, RebalanceProtocol, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;
use crate::metrics::Metrics;

pub type Consumer = StreamConsumer<NotifierContext>;

pub struct NotifierContext {
    metrics: Arc<Metrics>,
    rewind: i64,
}

impl NotifierContext {
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
                    tracing::info!(
                        topic = e.topic(),
                        partition = e.partition(),
                        committed = c,
                        start,
                        "resuming with rewind"
                    );
                }
            }
        }
    }
}

impl ClientContext for NotifierContext {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in stats.topics {
            for (partition, p) in t.partitions {
                if partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics.consumer_lag.with_label_values(&[&topic, &partition.to_string()]).set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for NotifierContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                for e in tpl.elements() {
                    let _ = self.metrics.consumer_lag.remove_label_values(&[e.topic(), &e.partition().to_string()]);
                }
            }
            let result = match (err, consumer.rebalance_protocol()) {
                (RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, RebalanceProtocol::Cooperative) => {
                    consumer.incremental_unassign(tpl)
                }
                _ => consumer.unassign(),
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "unassign failed");
            }
            tracing::info!(?err, "partitions revoked");
            return;
        }
        self.rewind_assignment(consumer, tpl);
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(tpl),
            _ => consumer.assign(tpl),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "assign failed");
        }
        tracing::info!(rebalance = ?Rebalance::Assign(tpl), "partitions assigned");
    }
}

pub fn consumer(config: &Config, metrics: Arc<Metrics>) -> Result<Consumer, KafkaError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka_brokers)
        .set("client.id", "webhook-notifier")
        .set("group.id", &config.consumer_group)
        // Stored by hand once a batch's deliveries are in the database.
        .set("enable.auto.offset.store", "false")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", (config.session_timeout_ms / 3).max(100).to_string())
        .set("fetch.wait.max.ms", "100")
        .set("statistics.interval.ms", "5000");
    for (k, v) in config.extra_kafka_options().map_err(KafkaError::ClientCreation)? {
        c.set(k, v);
    }
    c.create_with_context(NotifierContext { metrics, rewind: config.resume_rewind_messages })
}
