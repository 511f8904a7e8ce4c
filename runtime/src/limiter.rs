//! Keyed GCRA rate limiters (`governor`) in a map of bounded size whose
//! eviction cannot be turned into a way around the limit.
//!
//! * A key's limiter is forgotten only once it has been idle long enough to
//!   be full again (`Quota::burst_size_replenished_in`): forgetting it then
//!   loses nothing, since a new limiter starts full too.
//! * When the map is full of keys that are still being limited, a new key
//!   is charged to one shared overflow limiter with the same quota. Flooding
//!   the map with junk keys therefore makes the newcomers share one budget
//!   (fail closed) instead of giving them a fresh one each (fail open), and
//!   never resets a tracked key such as the operator's.
//!
//! In memory: a limit holds per process (per replica).

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

type Direct = RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<Instant>>;

/// How often, at most, a full map is scanned for idle keys.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub struct BoundedLimiter<K> {
    quota: Quota,
    capacity: usize,
    state: Mutex<State<K>>,
}

struct State<K> {
    slots: HashMap<K, Slot>,
    overflow: Direct,
    last_sweep: Option<Instant>,
}

struct Slot {
    limiter: Direct,
    last_charged: Instant,
}

/// Why a charge was refused: how long until it could pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
    /// Charged to the shared overflow budget because the map was full.
    pub overflow: bool,
}

impl<K: Hash + Eq + Clone> BoundedLimiter<K> {
    /// `capacity` keys at most (at least 1).
    pub fn new(quota: Quota, capacity: usize) -> Self {
        BoundedLimiter {
            quota,
            capacity: capacity.max(1),
            state: Mutex::new(State { slots: HashMap::new(), overflow: Self::direct(quota), last_sweep: None }),
        }
    }

    /// `per_window` events per `window`, all of them allowed at once.
    pub fn per_window(per_window: u32, window: Duration, capacity: usize) -> Self {
        let burst = NonZeroU32::new(per_window.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = window / burst.get();
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        Self::new(quota, capacity)
    }

    /// `per_second` sustained, `burst` at once.
    pub fn per_second(per_second: f64, burst: u32, capacity: usize) -> Self {
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = Duration::try_from_secs_f64(1.0 / per_second.max(1e-6)).unwrap_or(Duration::from_secs(3600));
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        Self::new(quota, capacity)
    }

    fn direct(quota: Quota) -> Direct {
        RateLimiter::direct_with_clock(quota, MonotonicClock)
    }

    /// Takes `cost` cells from `key`'s budget. A cost above the burst is
    /// charged as the whole burst (it could never pass otherwise).
    pub fn charge(&self, key: &K, cost: u32) -> Result<(), Limited> {
        let burst = self.quota.burst_size();
        let cost = NonZeroU32::new(cost.clamp(1, burst.get())).unwrap_or(NonZeroU32::MIN);
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.slots.contains_key(key) && state.slots.len() >= self.capacity {
            self.sweep(&mut state, now);
        }
        let (limiter, overflow) = if state.slots.contains_key(key) || state.slots.len() < self.capacity {
            let quota = self.quota;
            let slot = state
                .slots
                .entry(key.clone())
                .or_insert_with(|| Slot { limiter: Self::direct(quota), last_charged: now });
            slot.last_charged = now;
            (&slot.limiter, false)
        } else {
            (&state.overflow, true)
        };
        match limiter.check_n(cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Limited { retry_after: not_until.wait_time_from(now), overflow }),
            // Unreachable: the cost is clamped to the burst.
            Err(_) => Err(Limited { retry_after: self.quota.burst_size_replenished_in(), overflow }),
        }
    }

    /// Forgets keys idle long enough to be full again (lossless). At most
    /// once per `SWEEP_EVERY`, so a full map of active keys does not cost a
    /// scan per request.
    fn sweep(&self, state: &mut State<K>, now: Instant) {
        if state.last_sweep.is_some_and(|at| now.duration_since(at) < SWEEP_EVERY) {
            return;
        }
        state.last_sweep = Some(now);
        let full_after = self.quota.burst_size_replenished_in();
        state.slots.retain(|_, slot| now.duration_since(slot.last_charged) < full_after);
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_key_and_reports_the_wait() {
        let l = BoundedLimiter::per_window(3, Duration::from_secs(60), 10);
        for _ in 0..3 {
            assert!(l.charge(&"a", 1).is_ok());
        }
        let refused = l.charge(&"a", 1).unwrap_err();
        assert!(!refused.overflow);
        assert!(refused.retry_after > Duration::from_secs(15) && refused.retry_after <= Duration::from_secs(20));
        assert!(l.charge(&"b", 1).is_ok(), "per key");
        // A cost above the burst is charged as the whole burst.
        assert!(l.charge(&"c", 1000).is_ok());
        assert!(l.charge(&"c", 1).is_err());
    }

    #[test]
    fn a_full_map_sends_newcomers_to_a_shared_budget_and_keeps_tracked_keys() {
        let l = BoundedLimiter::per_window(2, Duration::from_secs(300), 4);
        l.charge(&"operator".to_string(), 1).unwrap();
        for i in 0..3 {
            l.charge(&format!("junk-{i}"), 1).unwrap();
        }
        assert_eq!(l.len(), 4);
        // The map is full of active keys: junk shares the overflow budget.
        let mut refused = 0;
        for i in 3..100 {
            if let Err(e) = l.charge(&format!("junk-{i}"), 1) {
                assert!(e.overflow);
                refused += 1;
            }
        }
        assert_eq!(refused, 95, "two newcomers pass, then the shared budget is spent");
        assert_eq!(l.len(), 4, "bounded");
        // The operator's count survived: one more failure allowed, then refused.
        assert!(l.charge(&"operator".to_string(), 1).is_ok());
        assert!(!l.charge(&"operator".to_string(), 1).unwrap_err().overflow);
    }

    #[test]
    fn idle_keys_are_forgotten_only_once_full_again() {
        let l = BoundedLimiter::per_window(1, Duration::from_millis(50), 1);
        l.charge(&1, 1).unwrap();
        assert!(l.charge(&2, 1).is_ok(), "the first newcomer takes the overflow budget");
        assert!(l.charge(&2, 1).unwrap_err().overflow);
        std::thread::sleep(Duration::from_millis(1100));
        // Key 1 is full again: the sweep forgets it and key 2 gets a slot.
        assert!(l.charge(&2, 1).is_ok());
        assert_eq!(l.len(), 1);
    }
}
