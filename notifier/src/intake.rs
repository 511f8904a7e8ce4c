//! From the results topic to the outbox: read a batch of decisions, record
//! one delivery per (event, subscribed endpoint) in one database
//! transaction, and only then store and commit the batch's offsets.
//!
//! A crash before the offsets are committed re-reads the batch; recording is
//! idempotent, so nothing is lost and nothing is recorded twice.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use transaction_model::{AccountId, ResultMessage};
use transaction_store::webhooks::{NewDelivery, WebhookEndpoint};
use transaction_store::WebhookRepository;

use crate::clock::Clock;
use crate::event::{event_of, Event};
use crate::kafka::Consumer;
use crate::metrics::{Metrics, SKIP_INVALID, SKIP_NO_MERCHANT, STAGE_RECORD};
use crate::retry::retry;

pub struct Intake {
    pub(crate) consumer: Consumer,
    pub(crate) repo: Arc<dyn WebhookRepository>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) topic: String,
    pub(crate) batch_size: usize,
    pub(crate) batch_wait: Duration,
    /// Woken after each recorded batch: new deliveries are due at once.
    pub(crate) wake: Arc<Notify>,
}

impl Intake {
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), KafkaError> {
        self.consumer.subscribe(&[&self.topic])?;
        tracing::info!(topic = %self.topic, "consuming results");
        while let Some(batch) = self.next_batch(&shutdown).await {
            let deliveries = match self.deliveries_of(&batch, &shutdown).await {
                Some(d) => d,
                None => break,
            };
            let recorded =
                retry(&self.metrics, STAGE_RECORD, &shutdown, || self.repo.record_deliveries(deliveries.clone())).await;
            let Some(recorded) = recorded else {
                tracing::warn!("stopping with a batch not recorded; it will be re-read");
                break;
            };
            self.metrics.deliveries_recorded.inc_by(recorded);
            self.store_offsets(&batch);
            self.wake.notify_one();
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(error = %e, "final offset commit failed; the last batches will be re-read"),
        }
        Ok(())
    }

    async fn next_batch(&self, shutdown: &CancellationToken) -> Option<Vec<BorrowedMessage<'_>>> {
        let first = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return None,
                received = self.consumer.recv() => match received {
                    Ok(m) => break m,
                    Err(e) => {
                        tracing::warn!(error = %e, "kafka consumer error; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
        };
        let deadline = tokio::time::Instant::now() + self.batch_wait;
        let mut batch = Vec::with_capacity(self.batch_size);
        batch.push(first);
        while batch.len() < self.batch_size {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka consumer error while filling a batch");
                    break;
                }
                Err(_) => break,
            }
        }
        Some(batch)
    }

    /// The deliveries a batch makes: each readable decision, for each of its
    /// merchant's enabled endpoints subscribed to its type. `None` when
    /// shutdown is asked for while the database is down.
    async fn deliveries_of(
        &self,
        batch: &[BorrowedMessage<'_>],
        shutdown: &CancellationToken,
    ) -> Option<Vec<NewDelivery>> {
        self.metrics.results_consumed.inc_by(batch.len() as u64);
        let mut events: Vec<Event> = Vec::with_capacity(batch.len());
        for m in batch {
            let Some(result) = m.payload().and_then(|p| serde_json::from_slice::<ResultMessage>(p).ok()) else {
                self.metrics.results_skipped.with_label_values(&[SKIP_INVALID]).inc();
                tracing::warn!(partition = m.partition(), offset = m.offset(), "unreadable result skipped");
                continue;
            };
            match event_of(&result) {
                Ok(e) => events.push(e),
                Err(_) => self.metrics.results_skipped.with_label_values(&[SKIP_NO_MERCHANT]).inc(),
            }
        }
        if events.is_empty() {
            return Some(Vec::new());
        }
        let accounts: Vec<AccountId> =
            events.iter().map(|e| e.account.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let endpoints =
            retry(&self.metrics, STAGE_RECORD, shutdown, || self.repo.enabled_endpoints_of(&accounts)).await?;
        let mut by_account: HashMap<&str, Vec<&WebhookEndpoint>> = HashMap::new();
        for e in &endpoints {
            by_account.entry(e.account_id.as_str()).or_default().push(e);
        }
        let now = self.clock.now();
        let mut deliveries = Vec::new();
        for event in events {
            for endpoint in by_account.get(event.account.as_str()).into_iter().flatten() {
                if endpoint.wants(event.event_type) {
                    deliveries.push(NewDelivery {
                        endpoint_id: endpoint.id.clone(),
                        event_id: event.id.clone(),
                        account_id: event.account.clone(),
                        event_type: event.event_type.to_owned(),
                        transaction_id: event.transaction_id.clone(),
                        payload: event.payload.clone(),
                        decided_at: event.decided_at,
                        created_at: now,
                    });
                }
            }
        }
        Some(deliveries)
    }

    fn store_offsets(&self, batch: &[BorrowedMessage<'_>]) {
        let mut next: HashMap<(&str, i32), i64> = HashMap::new();
        for m in batch {
            let offset = next.entry((m.topic(), m.partition())).or_insert(0);
            *offset = (*offset).max(m.offset() + 1);
        }
        let mut tpl = TopicPartitionList::with_capacity(next.len());
        for ((topic, partition), offset) in next {
            if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
                tracing::warn!(error = %e, topic, partition, "bad offset");
            }
        }
        if let Err(e) = self.consumer.store_offsets(&tpl) {
            tracing::warn!(error = %e, "could not store offsets; the batch will be re-read");
            return;
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(error = %e, "offset commit failed; a crash now would re-read this batch");
        }
    }
}
