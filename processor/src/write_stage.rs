//! Deciding a batch and writing it in one database transaction; a row the
//! database refuses is found by splitting the batch and dead-lettered, the
//! rest is stored.

use std::time::{Duration, Instant};

use rdkafka::Message;
use time::OffsetDateTime;
use transaction_store::StoreError;

use crate::decode::{decode, DeadLetterReason};
use crate::metrics::{STAGE_DB_WRITE, STAGE_DECIDE};
use crate::pipeline::{request_id, Batch, DeadLetter, Decided, Interrupted, Run, StoredBatch};
use crate::rules;
use crate::stage_retry::StageError;

impl<'c> Run<'c> {
    /// Decides a batch and writes it.
    pub(crate) async fn store(&self, batch: Batch<'c>) -> Result<StoredBatch<'c>, Interrupted> {
        let started = Instant::now();
        let received_at = OffsetDateTime::now_utc();
        let mut decided = Vec::with_capacity(batch.messages.len());
        let mut dead = Vec::new();
        let mut plaintext = 0;
        for (index, message) in batch.messages.iter().enumerate() {
            match decode(message.payload()).and_then(|(id, raw)| Ok((id, self.p.cards.read(&raw)?, raw))) {
                Ok((id, opened, raw)) => {
                    plaintext += u64::from(opened.plaintext);
                    decided.push(Decided {
                        index,
                        transaction: rules::evaluate_opened(
                            id,
                            &opened.apply(&raw),
                            received_at,
                            &self.p.hasher,
                            opened.cvv_destroyed,
                        ),
                        request_id: request_id(message),
                    });
                }
                Err(reason) => dead.push(DeadLetter { index, reason }),
            }
        }
        self.p.metrics.plaintext_card_messages.inc_by(plaintext);
        self.observe(STAGE_DECIDE, started);

        let db_started = Instant::now();
        let stored = self.write(decided, &mut dead).await?;
        self.observe(STAGE_DB_WRITE, db_started);
        Ok(StoredBatch { batch, stored, dead, started })
    }

    /// Writes `decided`, each part in one database transaction. On a
    /// permanent failure the part is halved until the refused row is alone;
    /// that one becomes a dead letter, provided the database still answers
    /// (otherwise it is an outage after all, and the part is retried).
    async fn write(&self, decided: Vec<Decided>, dead: &mut Vec<DeadLetter>) -> Result<Vec<Decided>, Interrupted> {
        let mut stored = Vec::with_capacity(decided.len());
        let mut parts = vec![decided];
        while let Some(mut part) = parts.pop() {
            if part.is_empty() {
                continue;
            }
            let rows: Vec<_> = part.iter().map(|d| d.transaction.clone()).collect();
            let outcome = self.retry(STAGE_DB_WRITE, StoreError::kind, || self.p.repo.record_batch(rows.clone())).await;
            match outcome {
                Ok(rows) => {
                    // The stored version of each row: the first decision of an id.
                    for (mut d, row) in part.into_iter().zip(rows) {
                        d.transaction = row;
                        stored.push(d);
                    }
                }
                Err(StageError::Interrupted) => return Err(Interrupted),
                Err(StageError::Permanent(e)) if part.len() > 1 => {
                    let second = part.split_off(part.len() / 2);
                    parts.push(second);
                    parts.push(part);
                    tracing::info!(error = %e, "splitting the batch to find the row the database refuses");
                }
                Err(StageError::Permanent(e)) => {
                    if !self.database_answers().await {
                        tracing::warn!(error = %e, "database does not answer; retrying the row");
                        self.wait(Duration::from_secs(1)).await?;
                        parts.push(part);
                        continue;
                    }
                    for d in part {
                        tracing::warn!(id = %d.transaction.id, error = %e, "the database refuses the row; dead-lettered");
                        self.p.metrics.permanent_failures.with_label_values(&[STAGE_DB_WRITE]).inc();
                        dead.push(DeadLetter {
                            index: d.index,
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
