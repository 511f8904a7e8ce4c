//! Coalesces the database writes of concurrent requests: each round writes
//! every intent and every delivered mark queued since the last one, in one
//! database transaction (`record_and_mark`). With SQLite every commit is an
//! fsync and writers are serialised, so one commit per request would cap
//! throughput; under low load a round holds one request and adds no wait.
//! Intents are awaited by their request (nothing is produced before its
//! intent is stored); marks are not (`delivered_marks`).

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use transaction_model::{AccountId, TransactionId};
use transaction_store::{AcceptedRepository, AcceptedTransaction, ListCursor, StoreError, TransactionView};

use crate::delivered_marks::{DeliveredMarks, MarkQueue};

/// Most intents, and most marks, written in one round.
const MAX_ROWS_PER_ROUND: usize = 5000;
const QUEUE: usize = 4096;

struct Job {
    rows: Vec<AcceptedTransaction>,
    done: oneshot::Sender<Result<(), String>>,
}

pub struct CoalescingAccepted {
    inner: Arc<dyn AcceptedRepository>,
    intents: mpsc::Sender<Job>,
    marks: DeliveredMarks,
}

impl CoalescingAccepted {
    /// Starts the writer task; it stops when this is dropped.
    pub fn new(inner: Arc<dyn AcceptedRepository>) -> Self {
        let (intents, intent_rx) = mpsc::channel(QUEUE);
        let (marks, mark_rx) = DeliveredMarks::new();
        tokio::spawn(writer(intent_rx, mark_rx, Arc::clone(&inner)));
        CoalescingAccepted { inner, intents, marks }
    }
}

async fn writer(mut jobs: mpsc::Receiver<Job>, mut marks: MarkQueue, repo: Arc<dyn AcceptedRepository>) {
    loop {
        let (mut round, mut ids, mut mark_jobs) = (Vec::new(), Vec::new(), 0u64);
        // Whichever comes first starts a round; both senders live in the
        // coalescer, so either queue closing means it was dropped.
        tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => round.push(job),
                None => return,
            },
            queued = marks.recv() => match queued {
                Some(queued) => {
                    ids.extend(queued);
                    mark_jobs += 1;
                }
                None => return,
            },
        }
        let mut rows: usize = round.iter().map(|j| j.rows.len()).sum();
        while rows < MAX_ROWS_PER_ROUND {
            let Ok(job) = jobs.try_recv() else { break };
            rows += job.rows.len();
            round.push(job);
        }
        while ids.len() < MAX_ROWS_PER_ROUND {
            let Some(queued) = marks.try_recv() else { break };
            ids.extend(queued);
            mark_jobs += 1;
        }
        let all: Vec<AcceptedTransaction> = round.iter_mut().flat_map(|j| std::mem::take(&mut j.rows)).collect();
        // A failed round fails every request in it, none of which has
        // produced anything yet; its marks are lost, and those transactions
        // appear once the processor stores them.
        let result = repo.record_and_mark(&all, &ids).await.map_err(|e| e.to_string());
        if let Err(e) = &result {
            if !ids.is_empty() {
                tracing::warn!(error = %e, count = ids.len(),
                    "delivered transactions not marked; they appear once the processor stores them");
            }
        }
        for job in round {
            let _ = job.done.send(result.clone());
        }
        marks.finished(mark_jobs);
    }
}

async fn submit(queue: &mpsc::Sender<Job>, rows: Vec<AcceptedTransaction>) -> Result<(), StoreError> {
    let (done, wait) = oneshot::channel();
    queue.send(Job { rows, done }).await.map_err(|_| StoreError::Worker("write coalescer stopped".into()))?;
    wait.await.map_err(|_| StoreError::Worker("write coalescer stopped".into()))?.map_err(StoreError::Worker)
}

#[async_trait]
impl AcceptedRepository for CoalescingAccepted {
    async fn record_intents(&self, batch: &[AcceptedTransaction]) -> Result<(), StoreError> {
        submit(&self.intents, batch.to_vec()).await
    }

    /// Returns once the marks are queued; see `delivered_marks`.
    async fn mark_delivered(&self, ids: &[TransactionId]) -> Result<(), StoreError> {
        self.marks.queue(ids.to_vec()).await
    }

    async fn purge_undelivered(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.purge_undelivered(before).await
    }

    async fn find_accepted(
        &self,
        account: &AccountId,
        id: &TransactionId,
    ) -> Result<Option<TransactionView>, StoreError> {
        // A transaction answered 202 here is found here.
        self.marks.written().await;
        self.inner.find_accepted(account, id).await
    }

    async fn list_accepted(
        &self,
        account: &AccountId,
        limit: usize,
        after: Option<&ListCursor>,
    ) -> Result<Vec<TransactionView>, StoreError> {
        self.marks.written().await;
        self.inner.list_accepted(account, limit, after).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    use tokio::sync::Notify;
    use transaction_model::Amount;

    /// Records each write's size; fails writes containing the id "fail";
    /// holds mark writes while `hold_marks`, until `release`.
    #[derive(Default)]
    struct Recorder {
        rounds: Mutex<Vec<usize>>,
        marked: Mutex<Vec<TransactionId>>,
        hold_marks: AtomicBool,
        release: Notify,
    }

    #[async_trait]
    impl AcceptedRepository for Recorder {
        async fn record_intents(&self, batch: &[AcceptedTransaction]) -> Result<(), StoreError> {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            self.rounds.lock().unwrap().push(batch.len());
            if batch.iter().any(|a| a.id.as_str() == "fail") {
                return Err(StoreError::Worker("disk full".into()));
            }
            Ok(())
        }
        async fn mark_delivered(&self, ids: &[TransactionId]) -> Result<(), StoreError> {
            if self.hold_marks.load(Ordering::SeqCst) {
                self.release.notified().await;
            }
            self.marked.lock().unwrap().extend_from_slice(ids);
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

    fn row(id: &str) -> AcceptedTransaction {
        AcceptedTransaction {
            id: TransactionId::try_from(id).unwrap(),
            account_id: AccountId::try_from("m").unwrap(),
            amount: Amount::from_cents(100),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn concurrent_writes_share_rounds_and_failures_reach_every_waiter() {
        let recorder = Arc::new(Recorder::default());
        let coalescer = Arc::new(CoalescingAccepted::new(recorder.clone()));
        let calls = (0..50).map(|i| {
            let c = Arc::clone(&coalescer);
            async move { c.record_intents(&[row(&format!("t{i}"))]).await }
        });
        for r in futures::future::join_all(calls).await {
            r.unwrap();
        }
        let rounds = recorder.rounds.lock().unwrap().clone();
        assert_eq!(rounds.iter().sum::<usize>(), 50, "every row written once");
        assert!(rounds.len() < 50, "rows were coalesced: {rounds:?}");

        let (fail, ok) = ([row("fail")], [row("ok")]);
        let (a, b) = tokio::join!(coalescer.record_intents(&fail), coalescer.record_intents(&ok));
        assert!(a.is_err());
        // "ok" either shared the failed round (and fails with it) or ran alone.
        let shared = recorder.rounds.lock().unwrap().last() == Some(&2);
        assert_eq!(b.is_err(), shared);
    }

    #[tokio::test]
    async fn marks_do_not_hold_the_request_but_hold_the_reads_until_written() {
        let recorder = Arc::new(Recorder::default());
        let coalescer = CoalescingAccepted::new(recorder.clone());
        let account = AccountId::try_from("m").unwrap();
        let id = TransactionId::try_from("t1").unwrap();
        recorder.hold_marks.store(true, Ordering::SeqCst);
        // Returns although no mark can be written yet.
        coalescer.mark_delivered(std::slice::from_ref(&id)).await.unwrap();
        let read = coalescer.find_accepted(&account, &id);
        tokio::pin!(read);
        assert!(futures::poll!(read.as_mut()).is_pending());
        // Let the writer try, and the read still waits for the held mark.
        tokio::task::yield_now().await;
        assert!(futures::poll!(read.as_mut()).is_pending());
        recorder.hold_marks.store(false, Ordering::SeqCst);
        recorder.release.notify_one();
        read.await.unwrap();
        assert_eq!(recorder.marked.lock().unwrap().as_slice(), std::slice::from_ref(&id));
    }
}
