//! `Prefer: wait=N` (RFC 7240): the client may wait up to N seconds (capped
//! by `MAX_DECISION_WAIT_MS`) for the processor's decision. Transactions
//! decided in time are answered with it; the others stay `pending`, exactly
//! as without the preference.
//!
//! A fresh request registers its waits before producing (see `accept`), so
//! a result cannot slip past it. A replayed request (same Idempotency-Key)
//! registers, then reads the database (the processor stores before it
//! publishes), then waits: the replay answers the decision once known.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::HeaderMap;
use tokio::time::Instant;
use transaction_model::{AccountId, TransactionId};

use crate::decisions::{Decision, DecisionWaiters, Waiter};
use crate::state::AppState;
use crate::transaction_resource::{rfc3339, TransactionResource};

/// The wait a request asked for, capped by the server's maximum; `None`
/// without the preference, with `wait=0`, or when waits are disabled.
/// A malformed preference is ignored, as RFC 7240 asks.
pub fn requested_wait(headers: &HeaderMap, max: Duration) -> Option<Duration> {
    if max.is_zero() {
        return None;
    }
    let seconds = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|pref| {
            // `wait=N` possibly followed by `;param`s.
            let (name, value) = pref.split(';').next()?.split_once('=')?;
            name.trim().eq_ignore_ascii_case("wait").then(|| value.trim().trim_matches('"').parse::<u64>().ok())?
        })
        .next()?;
    let wait = Duration::from_secs(seconds).min(max);
    (!wait.is_zero()).then_some(wait)
}

/// Waits registered by `accept` just before it produces, by id; shared
/// between the accepting task and the handler that awaits them.
#[derive(Clone)]
pub struct PendingWaits {
    registry: DecisionWaiters,
    waits: Arc<Mutex<HashMap<String, Waiter>>>,
}

impl PendingWaits {
    pub fn new(registry: DecisionWaiters) -> Self {
        PendingWaits { registry, waits: Arc::new(Mutex::new(HashMap::new())) }
    }

    pub fn register(&self, ids: &[TransactionId]) {
        let mut waits = self.waits.lock().unwrap_or_else(PoisonError::into_inner);
        for id in ids {
            if let Some(w) = self.registry.register(id.as_str()) {
                waits.insert(w.id().to_owned(), w);
            }
        }
    }

    fn take(&self) -> HashMap<String, Waiter> {
        std::mem::take(&mut *self.waits.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// How a request asked to wait.
pub struct WaitRequest {
    pub wait: Duration,
    pub pending: PendingWaits,
}

impl WaitRequest {
    /// `None` when the request does not wait.
    pub fn from_headers(state: &AppState, headers: &HeaderMap) -> Option<Self> {
        let wait = requested_wait(headers, state.max_decision_wait)?;
        Some(WaitRequest { wait, pending: PendingWaits::new(state.decisions.clone()) })
    }
}

/// Fills the pending resources in place with their decisions: from the
/// database first when `replayed` (the decision may be long known), then
/// from the results within the wait, if one was asked for. Returns whether
/// every resource is decided.
pub async fn settle(
    state: &AppState,
    account: &AccountId,
    resources: &mut [&mut TransactionResource],
    request: Option<WaitRequest>,
    replayed: bool,
) -> bool {
    let is_pending = |r: &TransactionResource| r.status == "pending";
    if !resources.iter().any(|r| is_pending(r)) {
        return true;
    }
    let mut waits = request.as_ref().map(|r| r.pending.take()).unwrap_or_default();
    if replayed {
        if let Some(request) = &request {
            // Registered before reading, so a decision published in between
            // is not missed.
            let ids: Vec<TransactionId> = resources
                .iter()
                .filter(|r| is_pending(r))
                .filter_map(|r| TransactionId::try_from(r.id.as_str()).ok())
                .collect();
            request.pending.register(&ids);
            waits.extend(request.pending.take());
        }
        for r in resources.iter_mut().filter(|r| is_pending(r)) {
            let Ok(id) = TransactionId::try_from(r.id.as_str()) else { continue };
            match state.store.accepted.find_accepted(account, &id).await {
                Ok(Some(view)) if view.decision.is_some() => **r = TransactionResource::from_view(&view),
                Ok(_) => {}
                // The replay is still a valid answer, only less fresh.
                Err(e) => tracing::warn!(error = %e, "could not read a replayed transaction's decision"),
            }
        }
    }
    let Some(request) = request else {
        return !resources.iter().any(|r| is_pending(r));
    };
    let started = Instant::now();
    let deadline = started + request.wait;
    let metrics = &state.metrics;
    for r in resources.iter_mut().filter(|r| is_pending(r)) {
        let Some(mut waiter) = waits.remove(&r.id) else {
            // The registry was full: answered pending, never held.
            metrics.decision_waits.with_label_values(&["unregistered"]).inc();
            continue;
        };
        match tokio::time::timeout_at(deadline, waiter.decision()).await {
            Ok(Some(decision)) if belongs_to(&decision, account) => {
                apply(r, &decision);
                metrics.decision_waits.with_label_values(&["decided"]).inc();
            }
            Ok(_) => {
                tracing::warn!(id = %r.id, "a result for this id names another account; ignored");
                metrics.decision_waits.with_label_values(&["foreign"]).inc();
            }
            Err(_) => metrics.decision_waits.with_label_values(&["timed_out"]).inc(),
        }
    }
    metrics.decision_wait_duration.observe(started.elapsed().as_secs_f64());
    !resources.iter().any(|r| is_pending(r))
}

/// A result names its account; one for another merchant's transaction (a
/// forged or corrupted result) is never shown.
fn belongs_to(d: &Decision, account: &AccountId) -> bool {
    d.account_id.as_deref().is_none_or(|a| a == account.as_str())
}

fn apply(r: &mut TransactionResource, d: &Decision) {
    r.status = d.status.as_str().to_owned();
    r.processed_at = Some(rfc3339(d.processed_at));
    r.error_message = (!d.error_message.is_empty()).then(|| d.error_message.clone());
    r.card_brand = d.card_brand.map(|b| b.as_str().to_owned());
    r.card_masked = d.card_masked.clone();
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn prefer(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("prefer", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_the_wait_preference_and_caps_it() {
        let max = Duration::from_secs(10);
        assert_eq!(requested_wait(&prefer(&["wait=5"]), max), Some(Duration::from_secs(5)));
        assert_eq!(requested_wait(&prefer(&["respond-async, Wait = \"3\""]), max), Some(Duration::from_secs(3)));
        assert_eq!(requested_wait(&prefer(&["return=minimal", "wait=2;x=y"]), max), Some(Duration::from_secs(2)));
        assert_eq!(requested_wait(&prefer(&["wait=3600"]), max), Some(max), "capped by the server");
        assert_eq!(requested_wait(&prefer(&["wait=0"]), max), None);
        assert_eq!(requested_wait(&prefer(&["wait=-1"]), max), None, "malformed: ignored");
        assert_eq!(requested_wait(&prefer(&["wait=1.5"]), max), None, "delta-seconds are whole");
        assert_eq!(requested_wait(&prefer(&["waiting=5"]), max), None);
        assert_eq!(requested_wait(&HeaderMap::new(), max), None);
        assert_eq!(requested_wait(&prefer(&["wait=5"]), Duration::ZERO), None, "waits disabled");
    }
}
