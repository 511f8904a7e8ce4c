//! Database calls retried with backoff until they succeed or shutdown.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// 200 ms, doubling, capped at 10 s.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    (Duration::from_millis(200) * 2u32.pow(exp)).min(MAX_BACKOFF)
}

/// Runs `attempt` until it succeeds; `None` if shutdown is asked for while
/// it is failing.
pub async fn retry<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    metrics: &Metrics,
    stage: &'static str,
    shutdown: &CancellationToken,
    mut attempt: impl FnMut() -> F,
) -> Option<T> {
    let mut failures: u32 = 0;
    loop {
        match attempt().await {
            Ok(value) => {
                if failures > 0 {
                    tracing::info!(stage, failures, "database reachable again");
                }
                return Some(value);
            }
            Err(e) => {
                failures += 1;
                metrics.stage_retries.with_label_values(&[stage]).inc();
                let wait = backoff(failures);
                tracing::warn!(stage, error = %e, failures, retry_in_ms = wait.as_millis() as u64, "database call failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
