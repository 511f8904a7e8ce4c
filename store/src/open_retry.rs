use std::future::Future;
use std::time::Duration;

use crate::{redact_url, StoreError};

/// Opens a database that may come up after the service: `open` is retried
/// with backoff (200 ms doubling to 10 s), each failure logged. A bad URL or
/// a failed migration is returned at once, since waiting will not fix it.
/// `Ok(None)` when `stop` completes first.
pub async fn open_with_retry<T, F, Fut>(
    url: &str,
    mut open: F,
    stop: impl Future<Output = ()>,
) -> Result<Option<T>, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    tokio::pin!(stop);
    let mut wait = Duration::from_millis(200);
    loop {
        match open().await {
            Ok(opened) => return Ok(Some(opened)),
            Err(e @ (StoreError::UnsupportedUrl(_) | StoreError::Migration(_))) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, database = %redact_url(url),
                    retry_in_ms = wait.as_millis() as u64, "database unavailable; retrying");
            }
        }
        tokio::select! {
            _ = &mut stop => return Ok(None),
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}
