//! Retrying a batch stage: transient failures with backoff while the
//! consumer's partitions are paused (and the consumer still polled, so the
//! group keeps this member past `max.poll.interval.ms`); permanent ones
//! handed back to the stage, which isolates the offending message.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rdkafka::consumer::Consumer as _;

use crate::failure::FailureKind;
use crate::pipeline::{Interrupted, Run};

const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Failures of unknown kind retried before they count as permanent.
const MAX_UNKNOWN_RETRIES: u32 = 3;

pub(crate) enum StageError<E> {
    Interrupted,
    Permanent(E),
}

/// Consumption paused while this lives (nested: the last one resumes).
pub(crate) struct Paused<'r, 'c> {
    run: &'r Run<'c>,
}

impl Drop for Paused<'_, '_> {
    fn drop(&mut self) {
        // Failing closed: what is paused stays paused until the process exits.
        if self.run.p.ownership.resume_requested() && self.run.p.ownership.fatal().is_none() {
            let consumer = &self.run.p.consumer;
            match consumer.assignment() {
                Ok(assigned) => {
                    if let Err(e) = consumer.resume(&assigned) {
                        tracing::error!(error = %e, "could not resume partitions");
                    } else {
                        tracing::info!("partitions resumed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not read the assignment to resume it"),
            }
        }
    }
}

impl<'c> Run<'c> {
    /// Pauses every assigned partition until the guard is dropped.
    pub(crate) fn pause(&self) -> Paused<'_, 'c> {
        if self.p.ownership.pause_requested() {
            let consumer = &self.p.consumer;
            match consumer.assignment().and_then(|assigned| consumer.pause(&assigned)) {
                Ok(()) => tracing::info!("partitions paused while a batch stage is retried"),
                Err(e) => tracing::error!(error = %e, "could not pause partitions"),
            }
        }
        Paused { run: self }
    }

    /// Runs `attempt` until it succeeds or fails permanently; transient
    /// failures are retried with backoff, partitions paused meanwhile.
    pub(crate) async fn retry<T, E, F>(
        &self,
        stage: &'static str,
        kind: impl Fn(&E) -> FailureKind,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T, StageError<E>>
    where
        E: std::fmt::Display,
        F: Future<Output = Result<T, E>>,
    {
        let mut failures: u32 = 0;
        let mut unknown: u32 = 0;
        let mut paused = None;
        loop {
            let e = match attempt().await {
                Ok(value) => {
                    if failures > 0 {
                        tracing::info!(stage, failures, "recovered; batch continues");
                    }
                    return Ok(value);
                }
                Err(e) => e,
            };
            let permanent = match kind(&e) {
                FailureKind::Permanent => true,
                FailureKind::Transient => false,
                FailureKind::Unknown => {
                    unknown += 1;
                    unknown > MAX_UNKNOWN_RETRIES
                }
            };
            if permanent {
                tracing::warn!(stage, error = %e, "batch stage failed permanently; isolating the message");
                return Err(StageError::Permanent(e));
            }
            failures += 1;
            self.p.metrics.batch_retries.with_label_values(&[stage]).inc();
            let wait = backoff(failures);
            tracing::warn!(stage, error = %e, failures, retry_in_ms = wait.as_millis() as u64,
                "batch stage failed; partitions paused, offsets held, retrying");
            if paused.is_none() {
                paused = Some(self.pause());
            }
            if self.wait(wait).await.is_err() {
                return Err(StageError::Interrupted);
            }
        }
    }

    /// Sleeps `wait` while polling the consumer (rebalances, membership);
    /// a message received meanwhile is kept for the next batch. While the
    /// next batch is being filled, that polls the consumer instead.
    pub(crate) async fn wait(&self, wait: Duration) -> Result<(), Interrupted> {
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            let tick = deadline.min(tokio::time::Instant::now() + Duration::from_millis(100));
            if self.filling.load(Ordering::SeqCst) {
                tokio::select! {
                    _ = self.shutdown.cancelled() => return Err(Interrupted),
                    _ = tokio::time::sleep_until(tick) => {}
                }
                continue;
            }
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Err(Interrupted),
                _ = tokio::time::sleep_until(tick) => {}
                received = self.p.consumer.recv() => match received {
                    Ok(m) => self.lock_stash().push_back(m),
                    Err(e) => {
                        tracing::debug!(error = %e, "kafka consumer error while waiting to retry");
                        tokio::time::sleep_until(tick).await;
                    }
                },
            }
        }
        Ok(())
    }
}

/// 200 ms, doubling, capped at [`MAX_BACKOFF`].
pub(crate) fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    (Duration::from_millis(200) * 2u32.pow(exp)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(7), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
