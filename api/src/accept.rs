//! Accepting transactions: the one place that writes to the database and
//! produces to Kafka, in an order that never half-accepts.
//!
//! 1. Record an *intent* row per transaction (id, account, amount, time; no
//!    card data). Intents are invisible to merchants. A database failure
//!    here fails the request before anything is produced.
//! 2. Produce every message and wait for every delivery report.
//! 3. Mark the delivered ones; answer 202 for them. A transaction without a
//!    delivery report is answered 503 and its intent stays invisible, unless
//!    the broker did take it after all and the processor stores it: then
//!    it shows up with its decision (the merchant can find it by listing).
//!    Under an Idempotency-Key the retry sends the same id again, so such a
//!    transaction is still decided and stored once.
//!
//! If marking fails after delivery, the answer is still 202: the broker has
//! the transaction, and it becomes visible once the processor stores it.

use transaction_model::{AccountId, TransactionId, TransactionMessage};
use transaction_store::AcceptedTransaction;

use crate::decision_wait::PendingWaits;
use crate::error::ApiError;
use crate::new_transaction::NewTransaction;
use crate::state::AppState;
use crate::transaction_ids::{KeyedAttempt, TransactionIds};
use crate::transaction_resource::TransactionResource;

/// How long a client should wait before retrying after a broker failure.
const BROKER_RETRY_AFTER_SECS: u64 = 2;

/// Per input, in order: the pending resource, or why it was not accepted.
/// Fails as a whole only when nothing could be attempted (database down).
/// Under an Idempotency-Key (`attempt`), ids and time come from the key, so
/// a retry re-sends the same transactions (see `transaction_ids`).
pub async fn accept(
    state: &AppState,
    account: &AccountId,
    items: Vec<NewTransaction>,
    request_id: &str,
    attempt: Option<&KeyedAttempt>,
    waits: Option<&PendingWaits>,
) -> Result<Vec<Result<TransactionResource, ApiError>>, ApiError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let ids = TransactionIds::new(account, attempt);
    let created_at = ids.created_at();
    let accepted: Vec<AcceptedTransaction> = items
        .iter()
        .enumerate()
        .map(|(i, t)| AcceptedTransaction { id: ids.id(i), account_id: account.clone(), amount: t.amount, created_at })
        .collect();
    state.store.accepted.record_intents(&accepted).await?;

    let messages: Vec<TransactionMessage> = items
        .into_iter()
        .zip(&accepted)
        .map(|(t, a)| TransactionMessage {
            id: a.id.to_string(),
            account_id: account.to_string(),
            credit_card_number: t.card_number,
            credit_card_name: t.card_name,
            credit_card_expiration_month: t.expiration_month,
            credit_card_expiration_year: t.expiration_year,
            credit_card_cvv: t.cvv,
            amount: t.amount,
            created_at: Some(created_at),
        })
        .collect();
    if let Some(waits) = waits {
        // Before producing, so that no decision can arrive unheard.
        let ids: Vec<TransactionId> = accepted.iter().map(|a| a.id.clone()).collect();
        waits.register(&ids);
    }
    let reports = state.publisher.publish(&messages, request_id).await;
    drop(messages);

    let delivered: Vec<TransactionId> =
        accepted.iter().zip(&reports).filter(|(_, r)| r.is_ok()).map(|(a, _)| a.id.clone()).collect();
    let failed = reports.len() - delivered.len();
    if failed > 0 {
        state.metrics.delivery_failures.inc_by(failed as u64);
        if let Some(Err(e)) = reports.iter().find(|r| r.is_err()) {
            tracing::warn!(error = %e, failed, "broker did not acknowledge transactions");
        }
    }
    if !delivered.is_empty() {
        if let Err(e) = state.store.accepted.mark_delivered(&delivered).await {
            tracing::warn!(error = %e, count = delivered.len(),
                "delivered transactions not marked; they appear once the processor stores them");
        }
        state.metrics.transactions_accepted.inc_by(delivered.len() as u64);
    }
    Ok(accepted
        .iter()
        .zip(reports)
        .map(|(a, report)| match report {
            Ok(()) => Ok(TransactionResource::pending(a)),
            Err(_) => Err(ApiError::BrokerUnavailable { retry_after_secs: BROKER_RETRY_AFTER_SECS }),
        })
        .collect())
}
