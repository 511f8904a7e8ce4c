//! Deciding a batch and writing it in one database transaction; a row the
//! database refuses is found by splitting the batch and dead-lettered, the
//! rest is stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Message;
use time::OffsetDateTime;
use transaction_model::{ProcessedTransaction, RejectionReason};
use transaction_store::StoreError;

use crate::decode::{decode, DeadLetterReason};
use crate::metrics::{STAGE_DB_WRITE, STAGE_DECIDE};
use crate::pipeline::{Batch, DeadLetter, Decided, Interrupted, Run, StoredBatch};
use crate::rules;
use crate::stage_retry::StageError;

/// Rows to write in one database transaction, beside what the pipeline
/// keeps about each: its message and the rule that decided it. The rows are
/// shared with the repository, so a retried attempt hands the same rows
/// again instead of a copy of the batch.
struct Part {
    rows: Arc<Vec<ProcessedTransaction>>,
    meta: Vec<Meta>,
}

struct Meta {
    index: usize,
    reason: Option<RejectionReason>,
}

impl Part {
    /// The rows back, owned: the repository dropped its handle when it
    /// answered, so this moves them; copying is only a fallback.
    fn take_rows(rows: Arc<Vec<ProcessedTransaction>>) -> Vec<ProcessedTransaction> {
        Arc::try_unwrap(rows).unwrap_or_else(|shared| (*shared).clone())
    }

    fn halves(self) -> (Part, Part) {
        let mut rows = Part::take_rows(self.rows);
        let mut meta = self.meta;
        let at = meta.len() / 2;
        let (rows_2, meta_2) = (rows.split_off(at), meta.split_off(at));
        (Part { rows: Arc::new(rows), meta }, Part { rows: Arc::new(rows_2), meta: meta_2 })
    }
}

/// A batch decided, still to be written.
pub(crate) struct DecidedBatch<'c> {
    batch: Batch<'c>,
    part: Part,
    dead: Vec<DeadLetter>,
    started: Instant,
}

impl<'c> Run<'c> {
    /// Decides a batch: pure computation, no waiting, so it runs while the
    /// batch before it is written by the database.
    pub(crate) fn decide(&self, batch: Batch<'c>) -> DecidedBatch<'c> {
        let started = Instant::now();
        let received_at = OffsetDateTime::now_utc();
        let mut rows = Vec::with_capacity(batch.messages.len());
        let mut meta = Vec::with_capacity(batch.messages.len());
        let mut dead = Vec::new();
        let mut plaintext = 0;
        for (index, message) in batch.messages.iter().enumerate() {
            match decode(message.payload()).and_then(|(id, raw)| Ok((id, self.p.cards.read(&raw)?, raw))) {
                Ok((id, opened, raw)) => {
                    plaintext += u64::from(opened.plaintext);
                    let (row, reason) =
                        rules::decide(id, &opened.apply(&raw), received_at, &self.p.hasher, opened.cvv_destroyed);
                    rows.push(row);
                    meta.push(Meta { index, reason });
                }
                Err(reason) => dead.push(DeadLetter { index, reason }),
            }
        }
        self.p.metrics.plaintext_card_messages.inc_by(plaintext);
        self.observe(STAGE_DECIDE, started);
        DecidedBatch { batch, part: Part { rows: Arc::new(rows), meta }, dead, started }
    }

    /// Writes a decided batch in one database transaction (see [`Self::write`]).
    pub(crate) async fn store(&self, decided: DecidedBatch<'c>) -> Result<StoredBatch<'c>, Interrupted> {
        let DecidedBatch { batch, part, mut dead, started } = decided;
        let db_started = Instant::now();
        let stored = self.write(part, &mut dead).await?;
        self.observe(STAGE_DB_WRITE, db_started);
        Ok(StoredBatch { batch, stored, dead, started })
    }

    /// Writes `decided`, each part in one database transaction. On a
    /// permanent failure the part is halved until the refused row is alone;
    /// that one becomes a dead letter, provided the database still answers
    /// (otherwise it is an outage after all, and the part is retried).
    async fn write(&self, decided: Part, dead: &mut Vec<DeadLetter>) -> Result<Vec<Decided>, Interrupted> {
        let mut stored = Vec::with_capacity(decided.meta.len());
        let mut parts = vec![decided];
        while let Some(part) = parts.pop() {
            if part.meta.is_empty() {
                continue;
            }
            let outcome = self
                .retry(STAGE_DB_WRITE, StoreError::kind, || self.p.repo.record_shared(Arc::clone(&part.rows)))
                .await;
            match outcome {
                Ok(kept) => {
                    let rows = Part::take_rows(part.rows);
                    for ((meta, row), first) in part.meta.into_iter().zip(rows).zip(kept) {
                        stored.push(match first {
                            None => Decided { index: meta.index, transaction: row, reason: meta.reason },
                            // An id stored before keeps its first decision,
                            // which is what gets published; its reason is
                            // known only from its message.
                            Some(first) => Decided {
                                index: meta.index,
                                reason: RejectionReason::from_message(&first.error_message),
                                transaction: first,
                            },
                        });
                    }
                }
                Err(StageError::Interrupted) => return Err(Interrupted),
                Err(StageError::Permanent(e)) if part.meta.len() > 1 => {
                    let (first, second) = part.halves();
                    parts.push(second);
                    parts.push(first);
                    tracing::info!(error = %e, "splitting the batch to find the row the database refuses");
                }
                Err(StageError::Permanent(e)) => {
                    if !self.database_answers().await {
                        tracing::warn!(error = %e, "database does not answer; retrying the row");
                        self.wait(Duration::from_secs(1)).await?;
                        parts.push(part);
                        continue;
                    }
                    for (meta, row) in part.meta.iter().zip(part.rows.iter()) {
                        tracing::warn!(id = %row.id, error = %e, "the database refuses the row; dead-lettered");
                        self.p.metrics.permanent_failures.with_label_values(&[STAGE_DB_WRITE]).inc();
                        dead.push(DeadLetter {
                            index: meta.index,
                            reason: DeadLetterReason::new(format!("database refused the row: {e}")),
                        });
                    }
                }
            }
        }
        Ok(stored)
    }

    async fn database_answers(&self) -> bool {
        matches!(tokio::time::timeout(Duration::from_secs(5), self.p.repo.ping()).await, Ok(Ok(())))
    }
}
