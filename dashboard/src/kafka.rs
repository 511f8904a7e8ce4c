//! The results consumer: a consumer group of its own per instance, starting
//! at the end of the topic, never committing (a restart starts live again).

use std::sync::atomic::{AtomicUsize, Ordering};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;

use crate::config::Config;

pub type Consumer = StreamConsumer<DashboardContext>;

/// Counts assigned partitions, for /readyz and the tests.
#[derive(Default)]
pub struct DashboardContext {
    assigned: AtomicUsize,
}

impl DashboardContext {
    pub fn assigned_partitions(&self) -> usize {
        self.assigned.load(Ordering::Relaxed)
    }
}

impl ClientContext for DashboardContext {}

impl ConsumerContext for DashboardContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => self.assigned.store(tpl.count(), Ordering::Relaxed),
            Rebalance::Revoke(_) => self.assigned.store(0, Ordering::Relaxed),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
        tracing::info!(?rebalance, "partition rebalance done");
    }
}

pub fn group_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub fn consumer(config: &Config) -> Result<Consumer, KafkaError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka_brokers)
        .set("client.id", "dashboard")
        .set("group.id", group_id(&config.consumer_group_prefix))
        // A live view: what happened before this instance started is not its
        // business, and it keeps no offsets to resume from.
        .set("auto.offset.reset", "latest")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in config.extra_kafka_options().map_err(KafkaError::ClientCreation)? {
        c.set(k, v);
    }
    c.create_with_context(DashboardContext::default())
}
