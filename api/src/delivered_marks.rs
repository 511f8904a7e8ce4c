//! The delivered marks, written after the answer instead of before it.
//!
//! A mark only makes a transaction the broker acknowledged visible to `GET`
//! and the list before the processor has stored it; once the processor has
//! stored it, it is visible marked or not. So the request queues its mark
//! and answers 202 without waiting for a commit, and a writer task writes
//! every queued mark of a round in one database transaction. Reads in this
//! replica first wait for the marks queued before them, so a merchant who
//! got a 202 here finds the transaction here. Another replica (MySQL) may
//! not see it for the length of one round (milliseconds), or, if the write
//! fails, until the processor stores it (a failure is logged).

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use transaction_model::TransactionId;
use transaction_store::{AcceptedRepository, StoreError};

/// Most ids written in one round.
const MAX_IDS_PER_ROUND: usize = 5000;
/// Marks queued beyond this make requests wait (the database is behind).
const QUEUE: usize = 4096;

pub struct DeliveredMarks {
    sender: mpsc::Sender<Vec<TransactionId>>,
    /// Marks handed to the queue, counted under this lock together with the
    /// send so that the count is also their position in the queue.
    queued: Mutex<u64>,
    /// Marks the writer is done with (written, or failed and logged), in
    /// queue order.
    written: watch::Receiver<u64>,
}

impl DeliveredMarks {
    /// Starts the writer task; it stops when this is dropped.
    pub fn new(repo: Arc<dyn AcceptedRepository>) -> Self {
        let (sender, jobs) = mpsc::channel(QUEUE);
        let (done, written) = watch::channel(0);
        tokio::spawn(writer(jobs, repo, done));
        DeliveredMarks { sender, queued: Mutex::new(0), written }
    }

    /// Queues the marks; returns once they are queued, not written.
    pub async fn queue(&self, ids: Vec<TransactionId>) -> Result<(), StoreError> {
        let permit = self.sender.reserve().await.map_err(|_| StoreError::Worker("mark writer stopped".into()))?;
        let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        permit.send(ids);
        *queued += 1;
        Ok(())
    }

    /// Waits until every mark queued before this call is written (or its
    /// write failed). Immediate when nothing is queued.
    pub async fn written(&self) {
        let target = *self.queued.lock().unwrap_or_else(|p| p.into_inner());
        let mut written = self.written.clone();
        // An error means the writer stopped: nothing more will be written.
        let _ = written.wait_for(|n| *n >= target).await;
    }
}

async fn writer(
    mut jobs: mpsc::Receiver<Vec<TransactionId>>,
    repo: Arc<dyn AcceptedRepository>,
    done: watch::Sender<u64>,
) {
    while let Some(first) = jobs.recv().await {
        let mut ids = first;
        let mut count = 1u64;
        while ids.len() < MAX_IDS_PER_ROUND {
            match jobs.try_recv() {
                Ok(more) => {
                    ids.extend(more);
                    count += 1;
                }
                Err(_) => break,
            }
        }
        if let Err(e) = repo.mark_delivered(&ids).await {
            tracing::warn!(error = %e, count = ids.len(),
                "delivered transactions not marked; they appear once the processor stores them");
        }
        done.send_modify(|n| *n += count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use futures::FutureExt;
    use time::OffsetDateTime;
    use tokio::sync::Semaphore;
    use transaction_model::AccountId;
    use transaction_store::{AcceptedTransaction, ListCursor, TransactionView};

    /// Records marks, each write held until the test lets it through.
    struct Gated {
        gate: Semaphore,
        marked: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl AcceptedRepository for Gated {
        async fn record_intents(&self, _: &[AcceptedTransaction]) -> Result<(), StoreError> {
            Ok(())
        }
        async fn mark_delivered(&self, ids: &[TransactionId]) -> Result<(), StoreError> {
            self.gate.acquire().await.map_err(|e| StoreError::Worker(e.to_string()))?.forget();
            self.marked.lock().unwrap().extend(ids.iter().map(|i| i.to_string()));
            Ok(())
        }
        async fn purge_undelivered(&self, _: OffsetDateTime) -> Result<u64, StoreError> {
            Ok(0)
        }
        async fn find_accepted(&self, _: &AccountId, _: &TransactionId) -> Result<Option<TransactionView>, StoreError> {
            Ok(None)
        }
        async fn list_accepted(
            &self,
            _: &AccountId,
            _: usize,
            _: Option<&ListCursor>,
        ) -> Result<Vec<TransactionView>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn id(text: &str) -> TransactionId {
        TransactionId::try_from(text).unwrap()
    }

    #[tokio::test]
    async fn marks_are_queued_without_waiting_and_reads_wait_for_them() {
        let repo = Arc::new(Gated { gate: Semaphore::new(0), marked: Mutex::new(Vec::new()) });
        let marks = DeliveredMarks::new(repo.clone());
        marks.written().await; // nothing queued: no wait

        // Queued while every write is held: the request does not wait.
        marks.queue(vec![id("a")]).await.unwrap();
        marks.queue(vec![id("b"), id("c")]).await.unwrap();
        assert!(marks.written().now_or_never().is_none(), "a read waits for the queued marks");
        assert!(repo.marked.lock().unwrap().is_empty());

        repo.gate.add_permits(2);
        marks.written().await;
        let mut marked = repo.marked.lock().unwrap().clone();
        marked.sort();
        assert_eq!(marked, ["a", "b", "c"]);
    }
}
