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

use futures::{FutureExt as _, StreamExt as _};
use rdkafka::consumer::{CommitMode, Consumer as _, MessageStream};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use transaction_model::message::REQUEST_ID_HEADER;
use transaction_model::{ProcessedTransaction, RejectionReason, Status};
use transaction_store::TransactionRepository;

use crate::card_hash::CardHasher;
use crate::decode::DeadLetterReason;
use crate::kafka::{Consumer, ProcessorContext, ResumeFloors};
use crate::metrics::{Metrics, NO_REASON};
use crate::ownership::{Ownership, PartitionKey};
use crate::unseal::CardReader;
use crate::write_stage::DecidedBatch;

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
    /// Longest a batch keeps taking messages that are already buffered,
    /// after its first; a batch never waits for messages still to come.
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
    /// A handful of partitions per member: a list searched in place costs
    /// no allocation per message, unlike a map keyed by an owned topic.
    pub(crate) generations: Vec<(PartitionKey, Option<u64>)>,
}

impl Batch<'_> {
    fn generation(&self, topic: &str, partition: i32) -> Option<u64> {
        self.generations.iter().find(|((t, p), _)| *p == partition && t == topic).and_then(|(_, g)| *g)
    }
}

/// A message that goes to the dead-letter topic instead of (or after) the
/// rules.
pub(crate) struct DeadLetter {
    /// Position in the batch's messages.
    pub(crate) index: usize,
    pub(crate) reason: DeadLetterReason,
}

/// A decision stored in the database, for message `index`.
pub(crate) struct Decided {
    pub(crate) index: usize,
    pub(crate) transaction: ProcessedTransaction,
    /// The rule that rejected it (`None`: approved), for the metrics.
    pub(crate) reason: Option<RejectionReason>,
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
    /// Three batches overlap: while batch N's results are published and
    /// acknowledged, batch N+1 is written to the database and batch N+2 is
    /// consumed and decided. Batch N's offsets are still committed only
    /// after its own write and deliveries, and always before batch N+1's,
    /// and its results are produced first.
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
        let mut decided: Option<DecidedBatch<'c>> = None;
        let mut in_flight: Option<StoredBatch<'c>> = None;
        loop {
            // Wakes the deciding stage when the two others are done, so a
            // batch written meanwhile is published now rather than after
            // the next message arrives.
            let others_done = Notify::new();
            let busy = decided.is_some() || in_flight.is_some();
            let finishing = async {
                match in_flight.take() {
                    Some(batch) => self.finish(batch).await,
                    None => Ok(()),
                }
            };
            let writing = async {
                match decided.take() {
                    Some(batch) => self.store(batch).await.map(Some),
                    None => Ok(None),
                }
            };
            let others = async {
                let done = tokio::join!(finishing, writing);
                others_done.notify_one();
                done
            };
            let deciding = async {
                let batch = self.drop_already_committed(self.next_batch(busy.then_some(&others_done)).await?);
                if batch.messages.is_empty() {
                    return Some(None);
                }
                Some(Some(self.decide(batch)))
            };
            let ((finished, written), next) = tokio::join!(others, deciding);
            if finished.is_err() {
                tracing::warn!("stopping with a batch not done; it will be redelivered");
                break;
            }
            match written {
                Ok(stored) => in_flight = stored,
                Err(Interrupted) => {
                    tracing::warn!("stopping with a batch not stored; it will be redelivered");
                    break;
                }
            }
            match next {
                Some(next) => decided = next,
                // Shutdown, or failing closed: the batch just written is
                // finished (published, offsets committed) before stopping.
                None => {
                    if let Some(batch) = in_flight.take() {
                        if self.finish(batch).await.is_err() {
                            tracing::warn!("stopping with a batch not done; it will be redelivered");
                        }
                    }
                    break;
                }
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

    /// Waits for a first message, then takes what the consumer already
    /// holds, without waiting for more: the batch closes when it is full,
    /// when nothing more is buffered, or `batch_wait` after its first
    /// message. A lone message is thus decided at once, while under load
    /// batches still fill up by themselves: messages pile up in the
    /// consumer's queue while the previous batch is written and published.
    /// `None` when shutdown is asked for. With `others` (batches before it
    /// still being written or published), an empty batch once they are
    /// done and no message came meanwhile.
    async fn next_batch(&self, others: Option<&Notify>) -> Option<Batch<'c>> {
        let consumer: &'c Consumer = &self.p.consumer;
        self.filling.store(true, Ordering::SeqCst);
        let _filling = Filling(&self.filling);
        let mut batch = Batch { messages: Vec::with_capacity(self.p.batch_size), generations: Vec::new() };
        let stashed: Vec<_> = self.lock_stash().drain(..).collect();
        for m in stashed {
            self.add(&mut batch, m);
        }
        // One stream for the whole batch: `recv()` registers a waker slot
        // per call, a lock and an allocation per message.
        let mut stream = consumer.stream();
        while batch.messages.is_empty() {
            if self.must_stop() {
                return None;
            }
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return None,
                // Nothing taken from the consumer yet: returning is safe.
                _ = async { match others { Some(done) => done.notified().await, None => std::future::pending().await } } => {
                    return Some(batch);
                }
                received = tokio::time::timeout(Duration::from_millis(500), stream.next()) => match received {
                    Ok(Some(Ok(m))) => self.add(&mut batch, m),
                    Ok(Some(Err(e))) => {
                        tracing::warn!(error = %e, "kafka consumer error; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    // Timed out (or the stream ended, which librdkafka's never does): check for shutdown.
                    Ok(None) | Err(_) => {}
                },
            }
        }
        let deadline = Instant::now() + self.p.batch_wait;
        while batch.messages.len() < self.p.batch_size && Instant::now() < deadline {
            match buffered(&mut stream) {
                Some(Ok(m)) => self.add(&mut batch, m),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "kafka consumer error while filling a batch");
                    break;
                }
                None => break,
            }
        }
        self.settle_generations(&mut batch);
        Some(batch)
    }

    /// Adds a message, noting the assignment generation of its partition
    /// when it is the partition's first in the batch.
    fn add(&self, batch: &mut Batch<'c>, m: BorrowedMessage<'c>) {
        let (topic, partition) = (m.topic(), m.partition());
        if !batch.generations.iter().any(|((t, p), _)| *p == partition && t == topic) {
            let now = self.p.ownership.generation(topic, partition);
            batch.generations.push(((topic.to_owned(), partition), now));
        }
        batch.messages.push(m);
    }

    /// A partition whose generation is not the same now as at its first
    /// message changed hands while the batch was read (generations only
    /// grow, so any change in between still shows at the end).
    fn settle_generations(&self, batch: &mut Batch<'c>) {
        for ((topic, partition), seen) in &mut batch.generations {
            if *seen != self.p.ownership.generation(topic, *partition) {
                *seen = None;
            }
        }
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
        let mut next: Vec<(&str, i32, i64)> = Vec::with_capacity(batch.generations.len());
        for m in &batch.messages {
            let (topic, partition, offset) = (m.topic(), m.partition(), m.offset() + 1);
            match next.iter_mut().find(|(t, p, _)| *p == partition && *t == topic) {
                Some((_, _, o)) => *o = (*o).max(offset),
                None => next.push((topic, partition, offset)),
            }
        }
        let mut tpl = TopicPartitionList::with_capacity(next.len());
        for (topic, partition, offset) in next {
            let read_in = batch.generation(topic, partition);
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
            let reason = match (d.transaction.status, d.reason) {
                (Status::Approved, _) => NO_REASON,
                (Status::Rejected, Some(r)) => r.label(),
                (Status::Rejected, None) => "other",
            };
            *by_reason.entry((d.transaction.status, reason)).or_default() += 1;
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

/// The API's request id, carried to the result when it is short UTF-8;
/// borrowed from the message, which lives until its result is delivered.
pub(crate) fn request_id<'m>(message: &'m BorrowedMessage<'_>) -> Option<&'m str> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == REQUEST_ID_HEADER)
        .and_then(|h| h.value)
        .filter(|v| v.len() <= MAX_REQUEST_ID_BYTES)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The next message the consumer already holds, without waiting for one.
/// An event that is not a message (a rebalance, statistics) answers a poll
/// with "pending" once; the second poll reaches a message queued behind it.
fn buffered<'c>(stream: &mut MessageStream<'c, ProcessorContext>) -> Option<KafkaResult<BorrowedMessage<'c>>> {
    for _ in 0..2 {
        if let Some(item) = stream.next().now_or_never() {
            return item;
        }
    }
    None
}
