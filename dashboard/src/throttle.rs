//! Bounds password guessing without letting anyone lock others out.
//! Credentials are checked first: the right ones always sign in. Only a
//! *failed* sign-in is charged, to the client's address (behind trusted
//! proxies, the forwarded client) and to the principal it named (an account
//! id, or the operator). Once either budget is spent, failures are answered
//! 429 until it refills.
//!
//! Both maps are bounded (`service_runtime::limiter::BoundedLimiter`): a
//! tracked principal is never pushed out by junk ids, and once the map is
//! full of active keys, new ones share a single overflow budget, so 100k
//! junk ids cannot make operator or merchant guessing unlimited. In memory,
//! per replica.

use std::net::IpAddr;
use std::time::Duration;

use service_runtime::limiter::BoundedLimiter;

/// Failed sign-ins allowed per principal and window.
pub const MAX_FAILURES: u32 = 10;
/// Failed sign-ins allowed per client address and window.
pub const MAX_CLIENT_FAILURES: u32 = 30;
pub const WINDOW: Duration = Duration::from_secs(300);
/// Keys tracked at most, per map.
pub const MAX_KEYS: usize = 100_000;

pub struct LoginThrottle {
    by_principal: BoundedLimiter<String>,
    by_client: BoundedLimiter<IpAddr>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(MAX_FAILURES, MAX_CLIENT_FAILURES, WINDOW, MAX_KEYS)
    }
}

impl LoginThrottle {
    pub fn new(per_principal: u32, per_client: u32, window: Duration, max_keys: usize) -> Self {
        LoginThrottle {
            by_principal: BoundedLimiter::per_window(per_principal, window, max_keys),
            by_client: BoundedLimiter::per_window(per_client, window, max_keys),
        }
    }

    /// Charges a failed sign-in. `Err(seconds)` once the principal or the
    /// client has failed too often: answer 429 with that wait.
    pub fn failed(&self, client: IpAddr, principal: &str) -> Result<(), u64> {
        let by_principal = self.by_principal.charge(&principal.to_owned(), 1).err();
        let by_client = self.by_client.charge(&client, 1).err();
        match by_principal.into_iter().chain(by_client).map(|l| l.retry_after).max() {
            None => Ok(()),
            Some(wait) => Err(wait.as_secs().max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn limits_failures_per_principal_and_per_client() {
        let t = LoginThrottle::new(3, 5, Duration::from_secs(60), 1000);
        for i in 0..3 {
            assert!(t.failed(ip(i), "merchant:a").is_ok());
        }
        assert!(t.failed(ip(10), "merchant:a").is_err(), "from any address");
        assert!(t.failed(ip(11), "merchant:b").is_ok(), "other principals are not affected");
        for p in 0..5 {
            assert!(t.failed(ip(20), &format!("merchant:p{p}")).is_ok());
        }
        assert!(t.failed(ip(20), "merchant:p9").is_err(), "one address, many principals");
    }

    #[test]
    fn junk_principals_do_not_make_operator_guessing_unlimited() {
        let t = LoginThrottle::default();
        // 100,000 junk ids from 100,000 addresses fill both maps…
        for i in 0..100_000u32 {
            let _ = t.failed(ip(i), &format!("merchant:junk-{i}"));
        }
        // …and the operator, first seen now, still meets a limit: its
        // failures share the overflow budget the junk already spent…
        let guesser = ip(200_000);
        let refused = (0..MAX_FAILURES + 1).filter(|_| t.failed(guesser, "operator").is_err()).count();
        assert!(refused >= 1, "operator guessing must stay limited");

        // …and when the operator was tracked before the flood, its own count survives it.
        let t = LoginThrottle::default();
        for _ in 0..MAX_FAILURES - 1 {
            t.failed(ip(1), "operator").unwrap();
        }
        for i in 0..100_000u32 {
            let _ = t.failed(ip(i + 10), &format!("merchant:junk-{i}"));
        }
        assert!(t.failed(ip(300_000), "operator").is_ok(), "the tenth failure");
        assert!(t.failed(ip(300_001), "operator").is_err(), "the eleventh is refused");
    }
}
