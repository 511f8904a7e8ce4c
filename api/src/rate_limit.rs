//! Per-merchant token bucket. In memory, so the limit is per replica: N
//! replicas behind a load balancer allow up to N times the configured rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use transaction_model::AccountId;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<AccountId, Bucket>>,
}

struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: f64) -> Self {
        RateLimiter { per_second: per_second.max(0.001), burst: burst.max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes `cost` tokens (one per transaction), or says how long until
    /// they would be there. A cost above the burst can never pass: it is
    /// charged as the whole burst.
    pub fn take(&self, account: &AccountId, cost: u32, now: Instant) -> Result<(), Duration> {
        let cost = f64::from(cost.max(1)).min(self.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(account.clone()).or_insert(Bucket { tokens: self.burst, refilled_at: now });
        let elapsed = now.saturating_duration_since(bucket.refilled_at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.refilled_at = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((cost - bucket.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_the_rate() {
        let limiter = RateLimiter::new(10.0, 5.0);
        let a = AccountId::try_from("a").unwrap();
        let b = AccountId::try_from("b").unwrap();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.take(&a, 1, t0).is_ok());
        }
        let wait = limiter.take(&a, 1, t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100), "{wait:?}");
        assert!(limiter.take(&b, 1, t0).is_ok(), "per merchant");
        assert!(limiter.take(&a, 1, t0 + Duration::from_millis(100)).is_ok());
        assert!(limiter.take(&a, 2, t0 + Duration::from_millis(100)).is_err());
        // A batch larger than the burst costs the whole burst, not forever.
        assert!(limiter.take(&a, 500, t0 + Duration::from_secs(10)).is_ok());
    }
}
