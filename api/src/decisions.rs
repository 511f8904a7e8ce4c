//! Requests waiting for the processor's decision (`Prefer: wait`), by
//! transaction id. The results listener hands each decision to the waiters
//! of its id; a waiter that is dropped (answered, timed out, or its client
//! gone) removes itself, so abandoned waits hold no memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus::IntGauge;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use transaction_model::{CardBrand, Status};

/// A decision as read from `transactions_result`. The topic is a trust
/// boundary: the fields are checked before a merchant sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub status: Status,
    /// Empty when approved.
    pub error_message: String,
    pub account_id: Option<String>,
    pub card_brand: Option<CardBrand>,
    /// Only a value that reveals no more than first six and last four.
    pub card_masked: Option<String>,
    pub processed_at: OffsetDateTime,
}

/// The part of the result message the API uses; unknown fields are ignored
/// (the processor may add more).
#[derive(Deserialize)]
struct ResultFields {
    id: String,
    status: Status,
    #[serde(default)]
    error_message: String,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    card_brand: Option<CardBrand>,
    #[serde(default)]
    card_masked: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    processed_at: OffsetDateTime,
}

/// Longest error message passed on; the processor's are short sentences.
const MAX_ERROR_MESSAGE: usize = 200;

impl Decision {
    /// The id and decision of a result message, or `None` for one the API
    /// cannot use (malformed, or a masked card that shows too much).
    pub fn parse(payload: &[u8]) -> Option<(String, Decision)> {
        let f: ResultFields = serde_json::from_slice(payload).ok()?;
        let mut error_message = f.error_message;
        if error_message.len() > MAX_ERROR_MESSAGE || error_message.chars().any(char::is_control) {
            return None;
        }
        error_message.shrink_to_fit();
        let card_masked = f.card_masked.filter(|m| plausible_mask(m));
        Some((
            f.id,
            Decision {
                status: f.status,
                error_message,
                account_id: f.account_id,
                card_brand: f.card_brand,
                card_masked,
                processed_at: f.processed_at,
            },
        ))
    }
}

/// 13 to 19 characters of digits and `*` with at most ten digits: a masked
/// number, never a full one.
fn plausible_mask(m: &str) -> bool {
    (13..=19).contains(&m.len())
        && m.bytes().all(|b| b.is_ascii_digit() || b == b'*')
        && m.bytes().filter(u8::is_ascii_digit).count() <= 10
}

type Slot = Vec<(u64, oneshot::Sender<Arc<Decision>>)>;

/// The registry; cheap to clone.
#[derive(Clone)]
pub struct DecisionWaiters {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Mutex<HashMap<String, Slot>>,
    next_token: AtomicU64,
    /// Most waiters held at once; beyond it a request is answered without
    /// waiting rather than growing the map.
    capacity: usize,
    count: AtomicU64,
    /// `count`, exported.
    gauge: IntGauge,
}

impl Inner {
    fn add(&self, n: i64) {
        let now = if n >= 0 {
            self.count.fetch_add(n as u64, Ordering::Relaxed) + n as u64
        } else {
            self.count.fetch_sub(n.unsigned_abs(), Ordering::Relaxed) - n.unsigned_abs()
        };
        self.gauge.set(i64::try_from(now).unwrap_or(i64::MAX));
    }
}

/// One registered wait. Dropping it unregisters it.
pub struct Waiter {
    id: String,
    token: u64,
    receiver: oneshot::Receiver<Arc<Decision>>,
    registry: Arc<Inner>,
}

impl DecisionWaiters {
    pub fn new(capacity: usize, gauge: IntGauge) -> Self {
        DecisionWaiters {
            inner: Arc::new(Inner {
                slots: Mutex::new(HashMap::new()),
                next_token: AtomicU64::new(0),
                capacity,
                count: AtomicU64::new(0),
                gauge,
            }),
        }
    }

    /// Registers a wait for `id`; `None` when the registry is full.
    pub fn register(&self, id: &str) -> Option<Waiter> {
        let (sender, receiver) = oneshot::channel();
        let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        {
            let mut slots = self.inner.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if self.inner.count.load(Ordering::Relaxed) >= self.inner.capacity as u64 {
                return None;
            }
            slots.entry(id.to_owned()).or_default().push((token, sender));
            self.inner.add(1);
        }
        Some(Waiter { id: id.to_owned(), token, receiver, registry: Arc::clone(&self.inner) })
    }

    /// Whether anyone waits for `id` (checked before parsing a payload).
    pub fn is_awaited(&self, id: &str) -> bool {
        self.inner.slots.lock().unwrap_or_else(PoisonError::into_inner).contains_key(id)
    }

    /// Hands `decision` to every waiter of `id`; how many there were.
    pub fn deliver(&self, id: &str, decision: Decision) -> usize {
        let slot = self.inner.slots.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        let Some(slot) = slot else { return 0 };
        self.inner.add(-(slot.len() as i64));
        let decision = Arc::new(decision);
        let n = slot.len();
        for (_, sender) in slot {
            // A waiter that has just given up is fine to miss.
            let _ = sender.send(Arc::clone(&decision));
        }
        n
    }

    /// Waits registered now.
    pub fn len(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Waiter {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The decision, once delivered; `None` if the registry went away.
    pub async fn decision(&mut self) -> Option<Arc<Decision>> {
        (&mut self.receiver).await.ok()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut slots = self.registry.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get_mut(&self.id) {
            let before = slot.len();
            slot.retain(|(t, _)| *t != self.token);
            self.registry.add(-((before - slot.len()) as i64));
            if slot.is_empty() {
                slots.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge() -> IntGauge {
        IntGauge::new("waiters", "test").unwrap()
    }

    fn result(id: &str, masked: &str) -> Vec<u8> {
        format!(
            r#"{{"id":"{id}","status":"rejected","error_message":"invalid credit card number","account_id":"m",
            "card_brand":"visa","card_masked":"{masked}","created_at":"2026-01-01T00:00:00Z",
            "processed_at":"2026-01-01T00:00:01Z","extra":1}}"#
        )
        .into_bytes()
    }

    #[test]
    fn parses_results_and_drops_a_mask_that_shows_too_much() {
        let (id, d) = Decision::parse(&result("t1", "411111******1111")).unwrap();
        assert_eq!(id, "t1");
        assert_eq!(d.status, Status::Rejected);
        assert_eq!(d.error_message, "invalid credit card number");
        assert_eq!(d.card_masked.as_deref(), Some("411111******1111"));
        let (_, d) = Decision::parse(&result("t1", "4111111111111111")).unwrap();
        assert_eq!(d.card_masked, None, "a full number is never passed on");
        assert!(Decision::parse(br#"{"id":"t","status":"maybe"}"#).is_none());
        assert!(Decision::parse(b"\xff").is_none());
    }

    #[tokio::test]
    async fn every_waiter_of_an_id_gets_the_decision_and_dropped_ones_leave_nothing() {
        let waiters = DecisionWaiters::new(10, gauge());
        let mut a = waiters.register("t1").unwrap();
        let mut b = waiters.register("t1").unwrap();
        let gone = waiters.register("t2").unwrap();
        assert_eq!(waiters.len(), 3);
        drop(gone);
        assert!(!waiters.is_awaited("t2"), "a dropped waiter unregisters");
        let (_, decision) = Decision::parse(&result("t1", "411111******1111")).unwrap();
        assert_eq!(waiters.deliver("t1", decision.clone()), 2);
        assert_eq!(*a.decision().await.unwrap(), decision);
        assert_eq!(*b.decision().await.unwrap(), decision);
        assert_eq!(waiters.deliver("t1", decision), 0, "delivered once");
        drop((a, b));
        assert!(waiters.is_empty());
        assert_eq!(waiters.inner.gauge.get(), 0);
    }

    #[test]
    fn a_full_registry_refuses_instead_of_growing() {
        let waiters = DecisionWaiters::new(2, gauge());
        let kept: Vec<Waiter> = (0..2).map(|i| waiters.register(&format!("t{i}")).unwrap()).collect();
        assert!(waiters.register("t9").is_none());
        drop(kept);
        assert!(waiters.register("t9").is_some(), "room again once waiters leave");
    }
}
