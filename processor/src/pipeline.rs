//! The batch loop: consume a batch, decide, store in one database
//! transaction, publish the stored decisions, and only then store offsets.
//!
//! A crash anywhere before the offsets are stored replays the batch: the
//! repository keeps each id's first decision, so replay adds no row and
//! re-publishes the same results.
//!
//! Failures are classified (see [`crate::failure`]): a transient one (the
//! database or the broker down) is retried with backoff while every
//! assigned partition is paused and the consumer is still polled, so the
//! group keeps this member; a permanent one (the database refuses a row,
//! the broker refuses a record) is isolated to its message, which goes to
//! the dead-letter topic with the reason, and the rest of the batch goes on.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use transaction_model::message::REQUEST_ID_HEADER;
use transaction_model::{ProcessedTransaction, RejectionReason, Status};
use transaction_store::TransactionRepository;

use crate::card_hash::CardHasher;
use crate::decode::DeadLetterReason;
use crate::kafka::{Consumer, ResumeFloors};
use crate::metrics::{Metrics, NO_REASON};
use crate::ownership::{Ownership, PartitionKey};
use crate::unseal::CardReader;

pub const DLQ_REASON_HEADER: &str = "dlq_reason";
/// Longest `request_id` header carried to a result; a longer one is dropped
/// (it is the API's id, a few dozen bytes; a huge one would make the result
/// too large to publish).
pub const MAX_REQUEST_ID_BYTES: usize = 256;

#[derive(Clone, Debug)]
pub struct Topics {
    pub transactions: String,
    pub results: String,
    pub dlq: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// Going on would be unsafe (see `RESUME_REWIND_MESSAGES`).
    #[error("stopped, failing closed: {0}")]
    FailClosed(String),
}

pub struct Pipeline {
    pub(crate) consumer: Consumer,
    pub(crate) floors: ResumeFloors,
    pub(crate) ownership: Ownership,
    pub(crate) producer: rdkafka::producer::FutureProducer,
    pub(crate) repo: Arc<dyn TransactionRepository>,
    pub(crate) hasher: CardHasher,
    pub(crate) cards: CardReader,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) topics: Topics,
    pub(crate) batch_size: usize,
    pub(crate) batch_wait: Duration,
}

/// One run of the pipeline: what the stages share.
pub(crate) struct Run<'c> {
    pub(crate) p: &'c Pipeline,
    pub(crate) shutdown: &'c CancellationToken,
    /// Messages received while a stage waited to retry (the consumer is
    /// polled then to keep the group membership); the next batch takes
    /// them first.
    pub(crate) stash: Mutex<VecDeque<BorrowedMessage<'c>>>,
    /// Set while `next_batch` is polling: a retrying stage then leaves the
    /// polling to it, so messages are never split between a batch and the
    /// stash out of order.
    pub(crate) filling: AtomicBool,
    /// Last offset committed per partition and assignment generation: a
    /// commit never goes below it.
    committed: Mutex<HashMap<(PartitionKey, u64), i64>>,
}

/// Clears `Run::filling` when `next_batch` returns, however it returns.
struct Filling<'a>(&'a AtomicBool);

impl Drop for Filling<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// A consumed batch, with the assignment generation each of its partitions
/// was read in (`None`: the partition changed hands while it was read).
pub(crate) struct Batch<'c> {
    pub(crate) messages: Vec<BorrowedMessage<'c>>,
    pub(crate) generations: HashMap<PartitionKey, Option<u64>>,
}

/// A message that goes to the dead-letter topic instead of (or after) the
/// rules.
pub(crate) struct DeadLetter {
    /// Position in the batch's messages.
    pub(crate) index: usize,
    pub(crate) reason: DeadLetterReason,
}

/// A decision stored in the database (or to be), for message `index`.
pub(crate) struct Decided {
    pub(crate) index: usize,
    pub(crate) transaction: ProcessedTransaction,
    pub(crate) request_id: Option<String>,
}

/// A batch written to the database, whose results are still to publish.
pub(crate) struct StoredBatch<'c> {
    pub(crate) batch: Batch<'c>,
    /// What the database holds for each stored message.
    pub(crate) stored: Vec<Decided>,
    pub(crate) dead: Vec<DeadLetter>,
    pub(crate) started: Instant,
}

/// The batch was given up because shutdown was asked for while a stage
/// was failing; its offsets were not stored, so nothing is lost.
pub(crate) struct Interrupted;

impl Pipeline {
    /// Runs until `shutdown` is cancelled, then finishes the batch in hand,
    /// commits the stored offsets and returns.
    ///
    /// Two batches overlap: while batch N's results are published and
    /// acknowledged, batch N+1 is consumed, decided and written. Batch N's
    /// offsets are still committed only after its own write and deliveries,
    /// and always before batch N+1's, and its results are produced first.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), PipelineError> {
        self.consumer.subscribe(&[&self.topics.transactions])?;
        tracing::info!(topic = %self.topics.transactions, "consuming");
        let run = Run {
            p: &self,
            shutdown: &shutdown,
            stash: Mutex::new(VecDeque::new()),
            filling: AtomicBool::new(false),
            committed: Mutex::new(HashMap::new()),
        };
        let outcome = run.run().await;
        drop(run);
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!("offsets committed; processor stopped"),
            // Nothing consumed since the last commit.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => tracing::info!("processor stopped"),
            Err(e) => tracing::warn!(error = %e, "final offset commit failed; the last batches will be redelivered"),
        }
        outcome
    }
}

impl<'c> Run<'c> {
    async fn run(&self) -> Result<(), PipelineError> {
        let mut in_flight: Option<StoredBatch<'c>> = None;
        loop {
            let finishing = async {
                match in_flight.take() {
                    Some(batch) => self.finish(batch).await,
                    None => Ok(()),
                }
            };
            let storing = async {
                let batch = self.drop_already_committed(self.next_batch().await?);
                if batch.messages.is_empty() {
                    return Some(Ok(None));
                }
                Some(self.store(batch).await.map(Some))
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
                // Shutdown, or failing closed: the batch in flight was finished above.
                None => break,
            }
        }
        match self.p.ownership.fatal() {
            Some(reason) => Err(PipelineError::FailClosed(reason)),
            None => Ok(()),
        }
    }

    fn must_stop(&self) -> bool {
        if let Some(reason) = self.p.ownership.fatal() {
            tracing::error!(reason, "stopping the processor");
            self.shutdown.cancel();
        }
        self.shutdown.is_cancelled()
    }

    /// Waits for a first message, then fills the batch until it is full or
    /// `batch_wait` has passed. `None` when shutdown is asked for.
    async fn next_batch(&self) -> Option<Batch<'c>> {
        let consumer = &self.p.consumer;
        self.filling.store(true, Ordering::SeqCst);
        let _filling = Filling(&self.filling);
        let mut batch = Batch { messages: Vec::with_capacity(self.p.batch_size), generations: HashMap::new() };
        let stashed: Vec<_> = self.lock_stash().drain(..).collect();
        for m in stashed {
            self.add(&mut batch, m);
        }
        while batch.messages.is_empty() {
            if self.must_stop() {
                return None;
            }
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return None,
                received = tokio::time::timeout(Duration::from_millis(500), consumer.recv()) => match received {
                    Ok(Ok(m)) => self.add(&mut batch, m),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "kafka consumer error; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(_) => {}
                },
            }
        }
        let deadline = tokio::time::Instant::now() + self.p.batch_wait;
        while batch.messages.len() < self.p.batch_size {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => self.add(&mut batch, m),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka consumer error while filling a batch");
                    break;
                }
                Err(_) => break,
            }
        }
        Some(batch)
    }

    /// Adds a message, noting the assignment generation of its partition.
    fn add(&self, batch: &mut Batch<'c>, m: BorrowedMessage<'c>) {
        let now = self.p.ownership.generation(m.topic(), m.partition());
        let key = (m.topic().to_owned(), m.partition());
        let seen = batch.generations.entry(key).or_insert(now);
        if *seen != now {
            *seen = None;
        }
        batch.messages.push(m);
    }

    pub(crate) fn lock_stash(&self) -> std::sync::MutexGuard<'_, VecDeque<BorrowedMessage<'c>>> {
        self.stash.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops messages re-read by the resume rewind (see `kafka`): below the
    /// committed offset they are already stored and published.
    fn drop_already_committed(&self, mut batch: Batch<'c>) -> Batch<'c> {
        let floors = self.p.floors.get();
        if floors.is_empty() {
            return batch;
        }
        let mut passed = Vec::new();
        batch.messages.retain(|m| match floors.get(&(m.topic().to_owned(), m.partition())) {
            Some(&floor) if m.offset() < floor => false,
            Some(_) => {
                passed.push((m.topic().to_owned(), m.partition()));
                true
            }
            None => true,
        });
        for (topic, partition) in passed {
            self.p.floors.passed(&topic, partition);
        }
        batch
    }

    /// Publishes a stored batch, waits for every acknowledgement, then
    /// stores and commits its offsets.
    async fn finish(&self, stored: StoredBatch<'c>) -> Result<(), Interrupted> {
        let delivered = self.publish(&stored).await?;
        self.store_offsets(&stored.batch);
        self.count(&stored, delivered);
        self.p.metrics.batch_duration.observe(stored.started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Marks the batch done: the next offset of each partition it read, for
    /// the partitions this member still owns in the assignment the batch
    /// was read in. A partition revoked meanwhile is left to its new owner,
    /// which redoes those messages (the repository keeps the first
    /// decision), so an offset is never committed over another member's.
    fn store_offsets(&self, batch: &Batch<'_>) {
        let mut next: HashMap<(&str, i32), i64> = HashMap::new();
        for m in &batch.messages {
            let offset = next.entry((m.topic(), m.partition())).or_insert(0);
            *offset = (*offset).max(m.offset() + 1);
        }
        let mut tpl = TopicPartitionList::with_capacity(next.len());
        for ((topic, partition), offset) in next {
            let read_in = batch.generations.get(&(topic.to_owned(), partition)).copied().flatten();
            let owned_now = self.p.ownership.generation(topic, partition);
            let Some(generation) = read_in.filter(|g| owned_now == Some(*g)) else {
                tracing::info!(
                    topic,
                    partition,
                    offset,
                    "partition changed hands during the batch; offset left to its owner"
                );
                continue;
            };
            {
                let mut committed = self.committed.lock().unwrap_or_else(|p| p.into_inner());
                let last = committed.entry(((topic.to_owned(), partition), generation)).or_insert(0);
                if offset <= *last {
                    continue;
                }
                *last = offset;
            }
            if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
                tracing::warn!(error = %e, topic, partition, "bad offset");
            }
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = self.p.consumer.store_offsets(&tpl) {
            tracing::warn!(error = %e, "could not store offsets; the batch will be redelivered");
            return;
        }
        // Commit every batch (asynchronously) rather than on a timer, so a
        // crash replays at most the batches whose commit was in flight.
        if let Err(e) = self.p.consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(error = %e, "offset commit failed; a crash now would replay this batch");
        }
    }

    fn count(&self, batch: &StoredBatch<'_>, delivered: Delivered) {
        let m = &self.p.metrics;
        let consumed = batch.batch.messages.len();
        m.messages_consumed.inc_by(consumed as u64);
        m.batch_size.observe(consumed as f64);
        m.results_published.inc_by(delivered.results);
        m.dlq_messages.inc_by(delivered.dead_letters);
        let mut by_reason: HashMap<(Status, &'static str), u64> = HashMap::new();
        for d in &batch.stored {
            let t = &d.transaction;
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
        tracing::debug!(consumed, published = delivered.results, dead = delivered.dead_letters, "batch done");
    }

    pub(crate) fn observe(&self, stage: &str, since: Instant) {
        self.p.metrics.stage_duration.with_label_values(&[stage]).observe(since.elapsed().as_secs_f64());
    }
}

/// What a batch's publish got acknowledged.
#[derive(Default, Clone, Copy)]
pub(crate) struct Delivered {
    pub(crate) results: u64,
    pub(crate) dead_letters: u64,
}

/// The API's request id, carried to the result when it is short UTF-8.
pub(crate) fn request_id(message: &BorrowedMessage<'_>) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == REQUEST_ID_HEADER)
        .and_then(|h| h.value)
        .filter(|v| v.len() <= MAX_REQUEST_ID_BYTES)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
}
