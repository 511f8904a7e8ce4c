//! The batch loop: consume a batch, decide, store in one database
//! transaction, publish the stored decisions, and only then store offsets.
//!
//! A crash anywhere before the offsets are stored replays the batch: the
//! repository keeps each id's first decision, so replay adds no row and
//! re-publishes the same results.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use transaction_model::message::REQUEST_ID_HEADER;
use transaction_model::{ProcessedTransaction, RejectionReason, Status};
use transaction_store::TransactionRepository;

use crate::card_hash::CardHasher;
use crate::decode::{decode, redact_for_dead_letter, DeadLetterReason};
use crate::kafka::{Consumer, ResumeFloors};
use crate::metrics::{Metrics, NO_REASON, STAGE_DB_WRITE, STAGE_DECIDE, STAGE_PRODUCE};
use crate::rules;
use crate::unseal::CardReader;

pub const DLQ_REASON_HEADER: &str = "dlq_reason";

#[derive(Clone, Debug)]
pub struct Topics {
    pub transactions: String,
    pub results: String,
    pub dlq: String,
}

pub struct Pipeline {
    pub(crate) consumer: Consumer,
    pub(crate) floors: ResumeFloors,
    pub(crate) producer: FutureProducer,
    pub(crate) repo: Arc<dyn TransactionRepository>,
    pub(crate) hasher: CardHasher,
    pub(crate) cards: CardReader,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) topics: Topics,
    pub(crate) batch_size: usize,
    pub(crate) batch_wait: Duration,
}

/// A message that goes to the dead-letter topic instead of the rules.
struct DeadLetter {
    /// Position in the batch's messages.
    index: usize,
    reason: DeadLetterReason,
}

/// A batch written to the database, whose results are still to publish.
struct StoredBatch<'c> {
    messages: Vec<BorrowedMessage<'c>>,
    /// What the database holds for each readable message, in order.
    stored: Vec<ProcessedTransaction>,
    request_ids: Vec<Option<String>>,
    dead: Vec<DeadLetter>,
    started: Instant,
}

/// The batch was given up because shutdown was asked for while a stage
/// was failing; its offsets were not stored, so nothing is lost.
struct Interrupted;

const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Pipeline {
    /// Runs until `shutdown` is cancelled, then finishes the batch in hand,
    /// commits the stored offsets and returns.
    ///
    /// Two batches overlap: while batch N's results are published and
    /// acknowledged, batch N+1 is consumed, decided and written. Batch N's
    /// offsets are still committed only after its own write and deliveries,
    /// and always before batch N+1's, and its results are produced first.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), KafkaError> {
        self.consumer.subscribe(&[&self.topics.transactions])?;
        tracing::info!(topic = %self.topics.transactions, "consuming");
        let mut in_flight: Option<StoredBatch<'_>> = None;
        loop {
            let finishing = async {
                match in_flight.take() {
                    Some(batch) => self.finish(batch, &shutdown).await,
                    None => Ok(()),
                }
            };
            let storing = async {
                let batch = self.drop_already_committed(self.next_batch(&shutdown).await?);
                if batch.is_empty() {
                    return Some(Ok(None));
                }
                Some(self.store(batch, &shutdown).await.map(Some))
            };
            let (finished, stored) = tokio::join!(finishing, storing);
            if finished.is_err() {
                tracing::warn!("stopping with a batch not done; it will be redelivered");
                break;
            }
            match stored {
                Some(Ok(next)) => in_flight = next,
                Some(Err(Interrupted)) => {
                    tracing::warn!("stopping with a batch not stored; it will be redelivered");
                    break;
                }
                // Shutdown: the batch in flight was finished above.
                None => break,
            }
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!("offsets committed; processor stopped"),
            // Nothing consumed since the last commit.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => tracing::info!("processor stopped"),
            Err(e) => tracing::warn!(error = %e, "final offset commit failed; the last batches will be redelivered"),
        }
        Ok(())
    }

    /// Waits for a first message, then fills the batch until it is full or
    /// `batch_wait` has passed. `None` when shutdown is asked for.
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

    /// Drops messages re-read by the resume rewind (see `kafka`): below the
    /// committed offset they are already stored and published.
    fn drop_already_committed<'c>(&self, batch: Vec<BorrowedMessage<'c>>) -> Vec<BorrowedMessage<'c>> {
        let floors = self.floors.get();
        if floors.is_empty() {
            return batch;
        }
        let mut passed = Vec::new();
        let kept: Vec<_> = batch
            .into_iter()
            .filter(|m| match floors.get(&(m.topic().to_owned(), m.partition())) {
                Some(&floor) if m.offset() < floor => false,
                Some(_) => {
                    passed.push((m.topic().to_owned(), m.partition()));
                    true
                }
                None => true,
            })
            .collect();
        for (topic, partition) in passed {
            self.floors.passed(&topic, partition);
        }
        kept
    }

    /// Decides a batch and writes it in one database transaction.
    async fn store<'c>(
        &self,
        batch: Vec<BorrowedMessage<'c>>,
        shutdown: &CancellationToken,
    ) -> Result<StoredBatch<'c>, Interrupted> {
        let started = Instant::now();
        let received_at = OffsetDateTime::now_utc();
        let mut decisions = Vec::with_capacity(batch.len());
        let mut request_ids = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        let mut plaintext = 0;
        for (index, message) in batch.iter().enumerate() {
            match decode(message.payload()).and_then(|(id, raw)| Ok((id, self.cards.read(&raw)?, raw))) {
                Ok((id, opened, raw)) => {
                    plaintext += u64::from(opened.plaintext);
                    decisions.push(rules::evaluate(id, &opened.apply(&raw), received_at, &self.hasher));
                    request_ids.push(request_id(message));
                }
                Err(reason) => dead.push(DeadLetter { index, reason }),
            }
        }
        self.metrics.plaintext_card_messages.inc_by(plaintext);
        self.observe(STAGE_DECIDE, started);

        let db_started = Instant::now();
        let stored = self.retry(STAGE_DB_WRITE, shutdown, || self.repo.record_batch(decisions.clone())).await?;
        self.observe(STAGE_DB_WRITE, db_started);
        Ok(StoredBatch { messages: batch, stored, request_ids, dead, started })
    }

    /// Publishes a stored batch, waits for every acknowledgement, then
    /// stores and commits its offsets.
    async fn finish(&self, batch: StoredBatch<'_>, shutdown: &CancellationToken) -> Result<(), Interrupted> {
        let produce_started = Instant::now();
        self.retry(STAGE_PRODUCE, shutdown, || self.publish(&batch)).await?;
        self.observe(STAGE_PRODUCE, produce_started);

        self.store_offsets(&batch.messages);
        self.count(batch.messages.len(), &batch.stored, batch.dead.len());
        self.metrics.batch_duration.observe(batch.started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Runs `stage` until it succeeds, backing off between failures. Gives
    /// up only if shutdown is asked for meanwhile.
    async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
        &self,
        stage: &'static str,
        shutdown: &CancellationToken,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T, Interrupted> {
        let mut failures: u32 = 0;
        loop {
            match attempt().await {
                Ok(value) => {
                    if failures > 0 {
                        tracing::info!(stage, failures, "recovered; batch continues");
                    }
                    return Ok(value);
                }
                Err(e) => {
                    failures += 1;
                    self.metrics.batch_retries.with_label_values(&[stage]).inc();
                    let wait = backoff(failures);
                    tracing::warn!(stage, error = %e, failures, retry_in_ms = wait.as_millis() as u64,
                        "batch stage failed; offsets held, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Err(Interrupted),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Sends every result and dead letter, then waits for all delivery reports.
    async fn publish(&self, batch: &StoredBatch<'_>) -> Result<(), KafkaError> {
        let StoredBatch { messages, stored, request_ids, dead, .. } = batch;
        let queue_timeout = Timeout::After(Duration::from_secs(5));
        let payloads: Vec<Vec<u8>> = stored.iter().map(|t| t.to_result_message().to_json()).collect();
        let results = stored.iter().zip(&payloads).zip(request_ids).map(|((t, payload), rid)| {
            let mut record = FutureRecord::to(&self.topics.results).key(t.id.as_str()).payload(payload.as_slice());
            if let Some(rid) = rid {
                record =
                    record.headers(OwnedHeaders::new().insert(Header { key: REQUEST_ID_HEADER, value: Some(rid) }));
            }
            self.producer.send(record, queue_timeout)
        });

        let dead_payloads: Vec<Vec<u8>> =
            dead.iter().map(|d| redact_for_dead_letter(messages[d.index].payload().unwrap_or_default())).collect();
        let dead_letters = dead.iter().zip(&dead_payloads).map(|(d, payload)| {
            let m = &messages[d.index];
            let headers = OwnedHeaders::new()
                .insert(Header { key: DLQ_REASON_HEADER, value: Some(d.reason.as_str()) })
                .insert(Header { key: "source_topic", value: Some(m.topic()) })
                .insert(Header { key: "source_partition", value: Some(&m.partition().to_string()) })
                .insert(Header { key: "source_offset", value: Some(&m.offset().to_string()) });
            let mut record =
                FutureRecord::<[u8], [u8]>::to(&self.topics.dlq).payload(payload.as_slice()).headers(headers);
            if let Some(key) = m.key() {
                record = record.key(key);
            }
            self.producer.send(record, queue_timeout)
        });

        let (r, d) = futures::join!(try_join_all(results), try_join_all(dead_letters));
        r.map_err(|(e, _)| e)?;
        d.map_err(|(e, _)| e)?;
        Ok(())
    }

    /// Marks the batch done: the next offset of each partition it read.
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
            // The partition was revoked meanwhile: its new owner replays the
            // batch, and the repository keeps the first decision.
            tracing::warn!(error = %e, "could not store offsets; the batch will be redelivered");
            return;
        }
        // Commit every batch (asynchronously) rather than on a timer, so a
        // crash replays at most the batches whose commit was in flight.
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(error = %e, "offset commit failed; a crash now would replay this batch");
        }
    }

    fn count(&self, consumed: usize, stored: &[ProcessedTransaction], dead: usize) {
        let m = &self.metrics;
        m.messages_consumed.inc_by(consumed as u64);
        m.batch_size.observe(consumed as f64);
        m.results_published.inc_by(stored.len() as u64);
        m.dlq_messages.inc_by(dead as u64);
        let mut by_reason: HashMap<(Status, &'static str), u64> = HashMap::new();
        for t in stored {
            let reason = match t.status {
                Status::Approved => NO_REASON,
                Status::Rejected => {
                    RejectionReason::from_message(&t.error_message).map_or("other", RejectionReason::label)
                }
            };
            *by_reason.entry((t.status, reason)).or_default() += 1;
        }
        for ((status, reason), n) in by_reason {
            m.transactions.with_label_values(&[status.as_str(), reason]).inc_by(n);
        }
        m.last_batch_timestamp.set(OffsetDateTime::now_utc().unix_timestamp());
        tracing::debug!(consumed, published = stored.len(), dead, "batch done");
    }

    fn observe(&self, stage: &str, since: Instant) {
        self.metrics.stage_duration.with_label_values(&[stage]).observe(since.elapsed().as_secs_f64());
    }
}

fn request_id(message: &BorrowedMessage<'_>) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == REQUEST_ID_HEADER)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
}

/// 200 ms, doubling, capped at [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    (Duration::from_millis(200) * 2u32.pow(exp)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(7), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
