//! The API's record of the transactions it accepted, joined with the
//! processor's decisions to answer "what happened to my transaction".

use async_trait::async_trait;
use time::OffsetDateTime;
use transaction_model::{AccountId, Amount, CardBrand, MaskedCard, Status, TransactionId};

use crate::StoreError;

/// What the API knows of a transaction before producing it. No card data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedTransaction {
    pub id: TransactionId,
    pub account_id: AccountId,
    pub amount: Amount,
    /// Microsecond precision once stored.
    pub created_at: OffsetDateTime,
}

/// The processor's decision, once it has stored one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub status: Status,
    pub error_message: String,
    pub card_brand: Option<CardBrand>,
    pub card_masked: Option<MaskedCard>,
    pub processed_at: OffsetDateTime,
}

/// An accepted transaction with its decision, if any yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionView {
    pub accepted: AcceptedTransaction,
    pub decision: Option<Decision>,
}

/// Position in a newest-first listing: the last item of the previous page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListCursor {
    pub created_at: OffsetDateTime,
    pub id: TransactionId,
}

/// The order is: [`record_intents`](Self::record_intents) before producing,
/// [`mark_delivered`](Self::mark_delivered) after the broker's delivery
/// report. An intent never marked is invisible unless the processor stored
/// the transaction (a delivery the API could not confirm), so nothing the
/// merchant was not told about shows up as pending forever.
#[async_trait]
pub trait AcceptedRepository: Send + Sync + 'static {
    /// An id already recorded is left as it is (a retry of the same
    /// transaction under an Idempotency-Key).
    async fn record_intents(&self, batch: &[AcceptedTransaction]) -> Result<(), StoreError>;

    async fn mark_delivered(&self, ids: &[TransactionId]) -> Result<(), StoreError>;

    /// One round of the API's coalesced writes: `intents` recorded and
    /// `delivered` marked (intents first). SQLite does both in one database
    /// transaction, so a round costs one commit (one fsync); by default they
    /// are written one after the other.
    async fn record_and_mark(
        &self,
        intents: &[AcceptedTransaction],
        delivered: &[TransactionId],
    ) -> Result<(), StoreError> {
        if !intents.is_empty() {
            self.record_intents(intents).await?;
        }
        if !delivered.is_empty() {
            self.mark_delivered(delivered).await?;
        }
        Ok(())
    }

    /// Deletes intents created before `before` that were never marked
    /// delivered and that the processor never stored (the merchant was
    /// answered 503 and never saw them); returns how many.
    async fn purge_undelivered(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Only `account`'s own transaction; another merchant's id is `None`.
    async fn find_accepted(
        &self,
        account: &AccountId,
        id: &TransactionId,
    ) -> Result<Option<TransactionView>, StoreError>;

    /// Newest first (by `created_at`, then id), strictly after `after`.
    async fn list_accepted(
        &self,
        account: &AccountId,
        limit: usize,
        after: Option<&ListCursor>,
    ) -> Result<Vec<TransactionView>, StoreError>;
}
