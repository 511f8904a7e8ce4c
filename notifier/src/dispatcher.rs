//! From the outbox to the merchants: claims due deliveries endpoint by
//! endpoint, runs at most `endpoint_concurrency` attempts per endpoint (and
//! `max_in_flight` in all) so a slow merchant only ever holds its own
//! slots, and writes each attempt's outcome back (coalesced into one
//! database transaction per round).
//!
//! Claiming moves a delivery's `next_attempt_at` forward by a lease: if this
//! process dies mid-attempt, the delivery becomes due again once the lease
//! has passed (at-least-once; receivers deduplicate on `webhook-id`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use transaction_store::webhooks::{Attempt, AttemptResult, Delivery, NextState, WebhookEndpoint, OUTCOME_REFUSED};
use transaction_store::WebhookRepository;

use crate::clock::Clock;
use crate::metrics::{Metrics, RESULT_DELIVERED, RESULT_EXHAUSTED, STAGE_COMPLETE, STAGE_DISPATCH};
use crate::retry::backoff;
use crate::schedule::RetrySchedule;
use crate::sender::{AttemptOutcome, Sender, SignedRequest};
use crate::signing::signature_header;

/// Deliveries claimed ahead per endpoint, in multiples of its concurrency.
const PREFETCH_FACTOR: usize = 4;
/// Most outcomes written in one database transaction.
const MAX_WRITE_BATCH: usize = 1000;
/// Claims asked for by finishing attempts are at least this far apart, so
/// a busy endpoint costs a database round trip per batch of attempts, not
/// per attempt.
const MIN_REFRESH_GAP: Duration = Duration::from_millis(10);
/// Longest kept text of an attempt's error.
const MAX_ERROR_LEN: usize = 200;

type Key = (String, String);

pub struct Dispatcher {
    pub(crate) repo: Arc<dyn WebhookRepository>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sender: Sender,
    pub(crate) schedule: RetrySchedule,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) endpoint_concurrency: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) disable_after: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) wake: Arc<Notify>,
}

/// One endpoint's claimed deliveries and running attempts.
struct Lane {
    endpoint: Arc<WebhookEndpoint>,
    queue: VecDeque<Delivery>,
    in_flight: usize,
}

struct Finished {
    endpoint_id: String,
    result: AttemptResult,
    outcome: AttemptOutcome,
    decided_at: OffsetDateTime,
}

fn plus(t: OffsetDateTime, d: Duration) -> Option<OffsetDateTime> {
    time::Duration::try_from(d).ok().and_then(|d| t.checked_add(d))
}

fn minus(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    time::Duration::try_from(d).ok().and_then(|d| t.checked_sub(d)).unwrap_or(PrimitiveDateTime::MIN.assume_utc())
}

impl Dispatcher {
    /// How long a claimed delivery is held: its wait in the lane's queue
    /// plus its own attempt, with a margin.
    pub fn lease(&self) -> Duration {
        self.sender.timeout() * (PREFETCH_FACTOR as u32 + 1) + Duration::from_secs(5)
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let in_flight_keys: Arc<Mutex<HashSet<Key>>> = Arc::default();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let writer_stop = CancellationToken::new();
        let writer = tokio::spawn(write_outcomes(
            Arc::clone(&self.repo),
            Arc::clone(&self.clock),
            Arc::clone(&self.metrics),
            self.disable_after,
            done_rx,
            Arc::clone(&in_flight_keys),
            writer_stop.clone(),
        ));
        let mut lanes: HashMap<String, Lane> = HashMap::new();
        let mut tasks: JoinSet<Finished> = JoinSet::new();
        let mut total = 0usize;
        let mut refresh = true;
        let mut last_refresh = Instant::now();
        let mut failures = 0u32;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let since = last_refresh.elapsed();
            if since >= self.poll_interval || (refresh && since >= MIN_REFRESH_GAP) {
                refresh = false;
                last_refresh = Instant::now();
                match self.claim(&mut lanes, &in_flight_keys).await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        self.metrics.stage_retries.with_label_values(&[STAGE_DISPATCH]).inc();
                        tracing::warn!(error = %e, failures, "could not claim due deliveries; retrying");
                        last_refresh = Instant::now() + backoff(failures).saturating_sub(self.poll_interval);
                    }
                }
            }
            self.start_attempts(&mut lanes, &mut tasks, &mut total);
            lanes.retain(|_, lane| !lane.queue.is_empty() || lane.in_flight > 0);
            let wait = if refresh { MIN_REFRESH_GAP } else { self.poll_interval };
            let next_poll = tokio::time::Instant::from_std(last_refresh + wait);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    total -= 1;
                    self.metrics.attempts_in_flight.set(total as i64);
                    let Ok(finished) = joined else { continue };
                    if let Some(lane) = lanes.get_mut(&finished.endpoint_id) {
                        lane.in_flight -= 1;
                        // Running dry: claim more of this endpoint's due work.
                        refresh |= lane.queue.len() < self.endpoint_concurrency;
                    }
                    self.observe(&finished);
                    let _ = done_tx.send(finished.result);
                }
                _ = self.wake.notified() => refresh = true,
                _ = tokio::time::sleep_until(next_poll) => refresh = true,
            }
        }
        // Attempts already running finish (bounded by the attempt timeout)
        // and are written; claimed but unstarted ones wait for their lease.
        while let Some(joined) = tasks.join_next().await {
            if let Ok(finished) = joined {
                self.observe(&finished);
                let _ = done_tx.send(finished.result);
            }
        }
        drop(done_tx);
        let stop_writer = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            writer_stop.cancel();
        };
        tokio::select! {
            _ = writer => {}
            _ = stop_writer => tracing::warn!("outcomes not written at shutdown; those deliveries will be retried"),
        }
        self.metrics.attempts_in_flight.set(0);
    }

    /// Claims due deliveries for every endpoint whose lane has room.
    async fn claim(
        &self,
        lanes: &mut HashMap<String, Lane>,
        in_flight_keys: &Mutex<HashSet<Key>>,
    ) -> Result<(), transaction_store::StoreError> {
        let now = self.clock.now();
        let lease_until = plus(now, self.lease()).unwrap_or(now);
        let prefetch = self.endpoint_concurrency * PREFETCH_FACTOR;
        for endpoint in self.repo.due_endpoints(now).await? {
            let id = endpoint.id.clone();
            let lane = lanes.entry(id.clone()).or_insert_with(|| Lane {
                endpoint: Arc::new(endpoint.clone()),
                queue: VecDeque::new(),
                in_flight: 0,
            });
            lane.endpoint = Arc::new(endpoint);
            let room = prefetch.saturating_sub(lane.queue.len() + lane.in_flight);
            if room == 0 {
                continue;
            }
            let claimed = self.repo.claim_due(&id, now, lease_until, room).await?;
            let Ok(mut keys) = in_flight_keys.lock() else { continue };
            for d in claimed {
                // Still running or not yet written here: its outcome wins.
                if keys.insert((d.endpoint_id.clone(), d.event_id.clone())) {
                    lane.queue.push_back(d);
                }
            }
        }
        Ok(())
    }

    /// Starts queued deliveries, one endpoint after the other, within the
    /// per-endpoint and total limits.
    fn start_attempts(&self, lanes: &mut HashMap<String, Lane>, tasks: &mut JoinSet<Finished>, total: &mut usize) {
        let mut progressed = true;
        while progressed && *total < self.max_in_flight {
            progressed = false;
            for lane in lanes.values_mut() {
                if *total >= self.max_in_flight {
                    break;
                }
                if lane.in_flight >= self.endpoint_concurrency {
                    continue;
                }
                let Some(delivery) = lane.queue.pop_front() else { continue };
                lane.in_flight += 1;
                *total += 1;
                progressed = true;
                tasks.spawn(attempt(
                    self.sender.clone(),
                    Arc::clone(&self.clock),
                    self.schedule.clone(),
                    Arc::clone(&lane.endpoint),
                    delivery,
                ));
            }
        }
        self.metrics.attempts_in_flight.set(*total as i64);
    }

    fn observe(&self, f: &Finished) {
        let m = &self.metrics;
        m.attempts.with_label_values(&[f.outcome.outcome]).inc();
        m.attempt_duration.observe(f.outcome.duration.as_secs_f64());
        match f.result.next {
            NextState::Delivered => {
                m.deliveries_completed.with_label_values(&[RESULT_DELIVERED]).inc();
                let since = OffsetDateTime::now_utc() - f.decided_at;
                m.decision_to_delivery.observe(since.as_seconds_f64().max(0.0));
            }
            NextState::Exhausted => m.deliveries_completed.with_label_values(&[RESULT_EXHAUSTED]).inc(),
            NextState::RetryAt(_) => {}
        }
    }
}

async fn attempt(
    sender: Sender,
    clock: Arc<dyn Clock>,
    schedule: RetrySchedule,
    endpoint: Arc<WebhookEndpoint>,
    d: Delivery,
) -> Finished {
    let started_at = clock.now();
    let number = d.attempts.saturating_add(1);
    let timestamp = started_at.unix_timestamp();
    let outcome =
        match signature_header(&endpoint.signing_secrets(started_at), &d.event_id, timestamp, d.payload.as_bytes()) {
            Ok(signature) => {
                let request =
                    SignedRequest { event_id: &d.event_id, timestamp, signature: &signature, body: &d.payload };
                sender.send(&endpoint.url, request).await
            }
            Err(e) => AttemptOutcome {
                outcome: OUTCOME_REFUSED,
                status_code: None,
                error: Some(e.to_string()),
                duration: Duration::ZERO,
            },
        };
    let next = if outcome.succeeded() {
        NextState::Delivered
    } else {
        schedule
            .next_delay(number, &mut rand::thread_rng())
            .and_then(|delay| plus(started_at, delay))
            .map_or(NextState::Exhausted, NextState::RetryAt)
    };
    if !outcome.succeeded() {
        tracing::debug!(endpoint = %endpoint.id, event = %d.event_id, attempt = number,
            outcome = outcome.outcome, status = ?outcome.status_code, "delivery attempt failed");
    }
    let error = outcome.error.as_ref().map(|e| e.chars().take(MAX_ERROR_LEN).collect());
    Finished {
        endpoint_id: d.endpoint_id.clone(),
        result: AttemptResult {
            attempt: Attempt {
                endpoint_id: d.endpoint_id,
                event_id: d.event_id,
                attempt: number,
                started_at,
                duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
                status_code: outcome.status_code,
                outcome: outcome.outcome.to_owned(),
                error,
            },
            next,
        },
        outcome,
        decided_at: d.decided_at,
    }
}

/// Writes outcomes as they come, all that are waiting in one transaction,
/// retrying until the database takes them (or `stop`).
async fn write_outcomes(
    repo: Arc<dyn WebhookRepository>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    disable_after: Duration,
    mut done: mpsc::UnboundedReceiver<AttemptResult>,
    in_flight_keys: Arc<Mutex<HashSet<Key>>>,
    stop: CancellationToken,
) {
    while let Some(first) = done.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_WRITE_BATCH {
            match done.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut failures = 0u32;
        loop {
            let now = clock.now();
            match repo.complete_attempts(batch.clone(), now, minus(now, disable_after)).await {
                Ok(disabled) => {
                    for endpoint in disabled {
                        metrics.endpoints_disabled.inc();
                        tracing::warn!(%endpoint, "endpoint disabled: every attempt failed for the whole disable period");
                    }
                    break;
                }
                Err(e) => {
                    failures += 1;
                    metrics.stage_retries.with_label_values(&[STAGE_COMPLETE]).inc();
                    tracing::warn!(error = %e, failures, "could not write attempt outcomes; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff(failures)) => {}
                    }
                }
            }
        }
        if let Ok(mut keys) = in_flight_keys.lock() {
            for r in &batch {
                keys.remove(&(r.attempt.endpoint_id.clone(), r.attempt.event_id.clone()));
            }
        }
    }
}

/// Refreshes the queue gauges every `every` until `shutdown`.
pub async fn report_queue(
    repo: Arc<dyn WebhookRepository>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let now = clock.now();
        match repo.queue_stats(now).await {
            Ok(stats) => {
                let age = |t: Option<OffsetDateTime>| t.map_or(0, |t| (now - t).whole_seconds().max(0));
                metrics.queue_pending.set(i64::try_from(stats.pending).unwrap_or(i64::MAX));
                metrics.queue_oldest_age.set(age(stats.oldest_pending_created_at));
                metrics.queue_due.set(i64::try_from(stats.due).unwrap_or(i64::MAX));
                metrics.queue_oldest_due_age.set(age(stats.oldest_due_at));
            }
            Err(e) => tracing::warn!(error = %e, "could not read the delivery queue's size"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
