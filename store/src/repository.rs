use std::sync::Arc;

use async_trait::async_trait;
use transaction_model::{ProcessedTransaction, TransactionId};

use crate::StoreError;

/// Storage of decided transactions, keyed by transaction id.
#[async_trait]
pub trait TransactionRepository: Send + Sync + 'static {
    /// Stores a batch in one database transaction. An id that is already
    /// stored (a redelivery, or a duplicate inside the batch) keeps its first
    /// decision: the returned list holds, in input order, `None` where the
    /// stored row is the input row (inserted now, or identical already), and
    /// `Some(first)` where another decision is kept, which is then what must
    /// be published.
    ///
    /// The batch is shared, not consumed, so a caller that retries after a
    /// transient failure hands the same rows again without copying them.
    async fn record_shared(
        &self,
        batch: Arc<Vec<ProcessedTransaction>>,
    ) -> Result<Vec<Option<ProcessedTransaction>>, StoreError>;

    /// [`record_shared`](Self::record_shared) for an owned batch: the
    /// returned list holds, in input order, the version that is stored for
    /// each input, which is what must be published.
    async fn record_batch(&self, batch: Vec<ProcessedTransaction>) -> Result<Vec<ProcessedTransaction>, StoreError> {
        let batch = Arc::new(batch);
        let kept = self.record_shared(Arc::clone(&batch)).await?;
        // The implementations drop their handle before answering, so this
        // does not copy; if one kept it, copying is still correct.
        let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
        Ok(batch.into_iter().zip(kept).map(|(input, first)| first.unwrap_or(input)).collect())
    }

    async fn find(&self, id: &TransactionId) -> Result<Option<ProcessedTransaction>, StoreError>;

    /// Number of stored transactions.
    async fn count(&self) -> Result<u64, StoreError>;

    /// Cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
}
