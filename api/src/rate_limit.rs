//! Per-merchant rate limit (GCRA, `governor`): every authenticated request
//! costs one token, a batch one per item. In memory, so the limit is per
//! replica: N replicas behind a load balancer allow up to N times the
//! configured rate (the Ingress adds a coarse per-client limit in front).

use service_runtime::limiter::{BoundedLimiter, Limited};
use transaction_model::AccountId;

/// Merchants tracked at once; only authenticated ids are keys.
pub const MAX_MERCHANTS: usize = 100_000;

pub struct RateLimiter(BoundedLimiter<AccountId>);

impl RateLimiter {
    pub fn new(per_second: f64, burst: f64) -> Self {
        let burst = burst.clamp(1.0, f64::from(u32::MAX)) as u32;
        RateLimiter(BoundedLimiter::per_second(per_second, burst, MAX_MERCHANTS))
    }

    /// Takes `cost` tokens, or says how long until they would be there. A
    /// cost above the burst is charged as the whole burst.
    pub fn take(&self, account: &AccountId, cost: u32) -> Result<(), Limited> {
        self.0.charge(account, cost)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn allows_the_burst_then_the_rate() {
        let limiter = RateLimiter::new(10.0, 5.0);
        let a = AccountId::try_from("a").unwrap();
        let b = AccountId::try_from("b").unwrap();
        for _ in 0..5 {
            assert!(limiter.take(&a, 1).is_ok());
        }
        let wait = limiter.take(&a, 1).unwrap_err().retry_after;
        assert!(wait > Duration::from_millis(50) && wait <= Duration::from_millis(100), "{wait:?}");
        assert!(limiter.take(&b, 1).is_ok(), "per merchant");
        assert!(limiter.take(&b, 500).is_err(), "a batch larger than the burst costs the whole burst");
    }
}
