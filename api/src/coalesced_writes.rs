//! Coalesces the intent writes of concurrent requests: each round writes
//! everything queued in one database transaction. With SQLite every commit
//! is an fsync and writers are serialised, so one commit per request would
//! cap throughput; under low load a round holds one request and adds no
//! wait. The delivered marks are coalesced the same way but written after
//! the answer (`delivered_marks`).

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use transaction_model::{AccountId, TransactionId};
use transaction_store::{AcceptedRepository, AcceptedTransaction, ListCursor, StoreError, TransactionView};

use crate::delivered_marks::DeliveredMarks;

/// Most rows written in one round.
const MAX_ROWS_PER_ROUND: usize = 5000;
const QUEUE: usize = 4096;

struct Job<T> {
    rows: Vec<T>,
    done: oneshot::Sender<Result<(), String>>,
}

pub struct CoalescingAccepted {
    inner: Arc<dyn AcceptedRepository>,
    intents: mpsc::Sender<Job<AcceptedTransaction>>,
    marks: DeliveredMarks,
}

impl CoalescingAccepted {
    /// Starts the writer tasks; they stop when this is dropped.
    pub fn new(inner: Arc<dyn AcceptedRepository>) -> Self {
        let (intents, intent_rx) = mpsc::channel(QUEUE);
        let repo = Arc::clone(&inner);
        tokio::spawn(writer(intent_rx, move |rows: Vec<AcceptedTransaction>| {
            let repo = Arc::clone(&repo);
            Box::pin(async move { repo.record_intents(&rows).await })
        }));
        let marks = DeliveredMarks::new(Arc::clone(&inner));
        CoalescingAccepted { inner, intents, marks }
    }
}

async fn writer<T: Send + 'static>(
    mut jobs: mpsc::Receiver<Job<T>>,
    write: impl Fn(Vec<T>) -> BoxFuture<'static, Result<(), StoreError>>,
) {
    while let Some(first) = jobs.recv().await {
        let mut round = vec![first];
        let mut rows = round[0].rows.len();
        while rows < MAX_ROWS_PER_ROUND {
            match jobs.try_recv() {
                Ok(job) => {
                    rows += job.rows.len();
                    round.push(job);
                }
                Err(_) => break,
            }
        }
        let all: Vec<T> = round.iter_mut().flat_map(|j| std::mem::take(&mut j.rows)).collect();
        // A failed round fails every request in it; none of them has
        // produced anything yet.
        let result = write(all).await.map_err(|e| e.to_string());
        for job in round {
            let _ = job.done.send(result.clone());
        }
    }
}

async fn submit<T>(queue: &mpsc::Sender<Job<T>>, rows: Vec<T>) -> Result<(), StoreError> {
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
    use std::sync::Mutex;
    use transaction_model::Amount;

    /// Records each write's size; fails writes containing the id "fail".
    #[derive(Default)]
    struct Recorder {
        rounds: Mutex<Vec<usize>>,
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
        async fn mark_delivered(&self, _: &[TransactionId]) -> Result<(), StoreError> {
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
}
