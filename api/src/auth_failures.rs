//! Slows down credential guessing: after too many failed authentications
//! from one client IP within a minute, that IP gets 429 until the minute
//! ends. In memory, per replica.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Above this many tracked IPs, expired entries are swept on insert.
const SWEEP_ABOVE: usize = 10_000;

pub struct FailedAuthLimiter {
    max_failures: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailedAuthLimiter {
    pub fn new(max_failures_per_minute: u32) -> Self {
        FailedAuthLimiter { max_failures: max_failures_per_minute, windows: Mutex::new(HashMap::new()) }
    }

    /// `Err(retry_after)` when `ip` has used up its failures.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match windows.get(&ip) {
            Some(&(start, failures)) if failures >= self.max_failures => {
                let ends = start + WINDOW;
                if now < ends {
                    Err(ends - now)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = windows.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let limiter = FailedAuthLimiter::new(3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(ip, t0).is_ok());
            limiter.record_failure(ip, t0);
        }
        let wait = limiter.check(ip, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(limiter.check(other, t0).is_ok(), "per IP");
        assert!(limiter.check(ip, t0 + WINDOW).is_ok(), "window over");
        limiter.record_failure(ip, t0 + WINDOW);
        assert!(limiter.check(ip, t0 + WINDOW).is_ok(), "counting restarted");
    }
}
