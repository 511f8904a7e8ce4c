//! The results consumer: its own group, offsets stored by hand once a
//! batch's deliveries are recorded.
//!
//! No resume rewind (unlike the processor, where it stays as an opt-in that
//! fails closed): every broker the notifier runs against serves a fetch from
//! inside a record batch (Apache Kafka, the prebuilt local tansu, tansu's
//! SQLite engine), so a resumed partition starts at its committed offset.

use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance, RebalanceProtocol, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;

use crate::config::Config;
use crate::metrics::Metrics;

pub type Consumer = StreamConsumer<NotifierContext>;

pub struct NotifierContext {
    metrics: Arc<Metrics>,
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
        // As in the processor: Apache Kafka answers a waiting fetch when
        // data arrives; the local broker re-checks at half the remaining
        // wait, so 100 ms held a decision ~25 ms before its webhook left
        // (`broker_latency --fetch-wait-ms 100,10`: hop p50 27.6 / 3.8 ms).
        .set("fetch.wait.max.ms", "10")
        .set("statistics.interval.ms", "5000");
    for (k, v) in config.extra_kafka_options().map_err(KafkaError::ClientCreation)? {
        c.set(k, v);
    }
    c.create_with_context(NotifierContext { metrics })
}
