//! Reads `transactions_result` for the requests waiting on a decision.
//!
//! Every replica reads every partition, from the end, with partitions
//! assigned by hand: no consumer group, so replicas never rebalance one
//! another and nothing is committed (a restarted replica has no waiters
//! from before). Results are keyed by transaction id, so a message nobody
//! here waits for is skipped without parsing its payload.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::decisions::{Decision, DecisionWaiters};
use crate::metrics::Metrics;

/// How often the topic's partitions are looked up again (a topic created
/// after start-up, partitions added).
const REFRESH: Duration = Duration::from_secs(10);
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

pub struct ResultsListener {
    consumer: Arc<StreamConsumer>,
    topic: String,
    assigned: HashSet<i32>,
    waiters: DecisionWaiters,
    metrics: Arc<Metrics>,
}

impl ResultsListener {
    pub fn new(config: &Config, waiters: DecisionWaiters, metrics: Arc<Metrics>) -> Result<Self, KafkaError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &config.kafka_brokers)
            .set("client.id", "transaction-api-results")
            // Required by the client (without it nothing is fetched), never
            // joined: partitions are assigned by hand and nothing committed.
            // The production ACLs grant Describe on this group only.
            .set("group.id", "transaction-api-decision-waits")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A decision should reach its waiter as soon as it is published.
            .set("fetch.wait.max.ms", "10")
            .set("fetch.min.bytes", "1")
            // Only live results matter; a replica does not need a deep queue.
            .set("queued.max.messages.kbytes", "4096")
            // When that queue is full, look again soon: librdkafka's default
            // postpones the next fetch by a second, and every waiter with it.
            .set("fetch.queue.backoff.ms", "10");
        // The same options as the producer (security, addresses); librdkafka
        // ignores producer-only ones here with a warning.
        for (k, v) in config.extra_kafka_options().map_err(KafkaError::ClientCreation)? {
            c.set(k, v);
        }
        Ok(ResultsListener {
            consumer: Arc::new(c.create()?),
            topic: config.results_topic.clone(),
            assigned: HashSet::new(),
            waiters,
            metrics,
        })
    }

    /// Assigns the partitions that exist now at their current end, so that
    /// a request served after this returns sees every result published after
    /// its transaction. A broker that cannot answer yet is not fatal: the
    /// partitions are looked up again every few seconds.
    pub async fn start_at_end(&mut self) {
        if let Err(e) = self.assign_new(true).await {
            tracing::warn!(error = %e, topic = %self.topic, "results topic not readable yet; decision waits answer pending until it is");
        }
    }

    /// Reads until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.tick().await;
        let consumer = Arc::clone(&self.consumer);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = refresh.tick() => {
                    if let Err(e) = self.assign_new(false).await {
                        tracing::debug!(error = %e, "results topic lookup failed");
                    }
                }
                message = consumer.recv() => match message {
                    Ok(m) => self.handle(m.key(), m.payload()),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading results failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
        }
    }

    fn handle(&self, key: Option<&[u8]>, payload: Option<&[u8]>) {
        self.metrics.decision_results_read.inc();
        // The processor keys results by id: skip what nobody here awaits.
        let key = key.and_then(|k| std::str::from_utf8(k).ok());
        if let Some(key) = key {
            if !self.waiters.is_awaited(key) {
                return;
            }
        } else if self.waiters.is_empty() {
            return;
        }
        let Some((id, decision)) = payload.and_then(Decision::parse) else {
            self.metrics.decision_results_unusable.inc();
            return;
        };
        if key.is_some_and(|k| k != id) {
            self.metrics.decision_results_unusable.inc();
            return;
        }
        self.waiters.deliver(&id, decision);
    }

    /// Adds partitions not assigned yet: at their high watermark on the
    /// first lookup, from their start when found later (a partition or topic
    /// created since holds only new results).
    async fn assign_new(&mut self, first: bool) -> Result<(), KafkaError> {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topic.clone();
        let known = self.assigned.clone();
        let found = tokio::task::spawn_blocking(move || -> Result<Vec<(i32, Offset)>, KafkaError> {
            let metadata = consumer.fetch_metadata(Some(&topic), METADATA_TIMEOUT)?;
            let mut found = Vec::new();
            for p in metadata.topics().iter().filter(|t| t.name() == topic && t.error().is_none()) {
                for partition in p.partitions().iter().map(|p| p.id()).filter(|id| !known.contains(id)) {
                    let offset = if first {
                        let (_, high) = consumer.fetch_watermarks(&topic, partition, METADATA_TIMEOUT)?;
                        Offset::Offset(high)
                    } else if known.is_empty() {
                        // The topic was unreadable at start-up: what it holds
                        // may be old, so only what comes next.
                        Offset::End
                    } else {
                        Offset::Beginning
                    };
                    found.push((partition, offset));
                }
            }
            Ok(found)
        })
        .await
        .map_err(|e| KafkaError::ClientCreation(e.to_string()))??;
        if found.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for (partition, offset) in &found {
            list.add_partition_offset(&self.topic, *partition, *offset)?;
        }
        self.consumer.incremental_assign(&list)?;
        self.assigned.extend(found.iter().map(|(p, _)| *p));
        tracing::info!(topic = %self.topic, partitions = self.assigned.len(), "reading results for decision waits");
        Ok(())
    }
}
