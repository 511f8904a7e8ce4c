use async_trait::async_trait;
use transaction_model::{ProcessedTransaction, TransactionId};

use crate::StoreError;

/// Storage of decided transactions, keyed by transaction id.
#[async_trait]
pub trait TransactionRepository: Send + Sync + 'static {
    /// Stores a batch in one database transaction. An id that is already
    /// stored (a redelivery, or a duplicate inside the batch) keeps its first
    /// decision: the returned list holds, in input order, the version that
    /// is stored for each input, which is what must be published.
    async fn record_batch(&self, batch: Vec<ProcessedTransaction>) -> Result<Vec<ProcessedTransaction>, StoreError>;

    async fn find(&self, id: &TransactionId) -> Result<Option<ProcessedTransaction>, StoreError>;

    /// Number of stored transactions.
    async fn count(&self) -> Result<u64, StoreError>;

    /// Cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
}
