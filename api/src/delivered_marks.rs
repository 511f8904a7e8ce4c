//! The delivered marks, written after the answer instead of before it.
//!
//! A mark only makes a transaction the broker acknowledged visible to `GET`
//! and the list before the processor has stored it; once the processor has
//! stored it, it is visible marked or not. So the request queues its mark
//! and answers 202 without waiting for a commit; the coalescing writer
//! (`coalesced_writes`) writes the queued marks with the next round of
//! intents, in the same database transaction. Reads in this replica first
//! wait for the marks queued before them, so a merchant who got a 202 here
//! finds the transaction here. Another replica (MySQL) may not see it for
//! the length of one round (milliseconds), or, if the write fails, until the
//! processor stores it (the failure is logged).

use std::sync::Mutex;

use tokio::sync::{mpsc, watch};
use transaction_model::TransactionId;
use transaction_store::StoreError;

/// Marks queued beyond this make requests wait (the database is behind).
const QUEUE: usize = 4096;

/// The requests' side: queue marks, wait for them before a read.
pub struct DeliveredMarks {
    sender: mpsc::Sender<Vec<TransactionId>>,
    /// Marks handed to the queue, counted under this lock together with the
    /// send so that the count is also their position in the queue.
    queued: Mutex<u64>,
    /// Marks the writer is done with (written, or failed and logged), in
    /// queue order.
    written: watch::Receiver<u64>,
}

/// The writer's side.
pub struct MarkQueue {
    jobs: mpsc::Receiver<Vec<TransactionId>>,
    done: watch::Sender<u64>,
}

impl DeliveredMarks {
    pub fn new() -> (Self, MarkQueue) {
        let (sender, jobs) = mpsc::channel(QUEUE);
        let (done, written) = watch::channel(0);
        (DeliveredMarks { sender, queued: Mutex::new(0), written }, MarkQueue { jobs, done })
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

impl MarkQueue {
    /// The next queued marks; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Vec<TransactionId>> {
        self.jobs.recv().await
    }

    /// Queued marks, without waiting.
    pub fn try_recv(&mut self) -> Option<Vec<TransactionId>> {
        self.jobs.try_recv().ok()
    }

    /// The writer is done with `jobs` more queued marks (in queue order).
    pub fn finished(&self, jobs: u64) {
        if jobs > 0 {
            self.done.send_modify(|n| *n += jobs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn id(text: &str) -> TransactionId {
        TransactionId::try_from(text).unwrap()
    }

    #[tokio::test]
    async fn queueing_does_not_wait_and_reads_wait_for_what_was_queued_before_them() {
        let (marks, mut queue) = DeliveredMarks::new();
        marks.written().await; // nothing queued: no wait
        marks.queue(vec![id("a")]).await.unwrap();
        marks.queue(vec![id("b"), id("c")]).await.unwrap();
        assert!(marks.written().now_or_never().is_none(), "a read waits for the queued marks");

        assert_eq!(queue.recv().await.unwrap().len(), 1);
        queue.finished(1);
        assert!(marks.written().now_or_never().is_none(), "one queued mark is still unwritten");
        assert_eq!(queue.try_recv().unwrap().len(), 2);
        queue.finished(1);
        assert!(marks.written().now_or_never().is_some());
    }
}
