//! Hourly purges that keep the API's own tables bounded.

use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::idempotency;
use crate::state::AppState;

const INTERVAL: Duration = Duration::from_secs(3600);

/// How long an intent the broker never confirmed is kept. The broker may
/// still have taken it (a delivery report lost to a timeout), and the
/// processor makes it visible by storing it; past Kafka's default retention
/// (7 days) no processor can, so the row is only clutter.
pub const UNDELIVERED_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

pub async fn run(state: AppState, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
        purge_once(&state, OffsetDateTime::now_utc()).await;
    }
}

/// Failures are logged and retried at the next round: nothing depends on it.
pub async fn purge_once(state: &AppState, now: OffsetDateTime) {
    // Expired keys are also dropped lazily per key; this bounds the table.
    match state.store.idempotency.purge_idempotency(now - idempotency::TTL).await {
        Ok(n) => tracing::info!(purged = n, "expired idempotency keys purged"),
        Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
    }
    match state.store.accepted.purge_undelivered(now - UNDELIVERED_RETENTION).await {
        Ok(n) => tracing::info!(purged = n, "undelivered intents purged"),
        Err(e) => tracing::warn!(error = %e, "undelivered intent purge failed"),
    }
}
