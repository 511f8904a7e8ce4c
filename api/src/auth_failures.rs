//! Slows down credential guessing without letting anyone lock others out.
//! Credentials are verified first; only a *failed* authentication is
//! charged, to the client's address (behind trusted proxies, the forwarded
//! client) and to the account id it named. When either budget is spent, the
//! failure is answered 429 instead of 401. A valid credential is never
//! refused here, whoever failed before it.
//!
//! Both maps are bounded ([`BoundedLimiter`]): once full of active keys, new
//! keys share one overflow budget, so junk ids or spoofed addresses cannot
//! make guessing unlimited or push a tracked key out. In memory, per replica.

use std::net::IpAddr;
use std::time::Duration;

use service_runtime::limiter::BoundedLimiter;
use transaction_model::account::MAX_ACCOUNT_ID_LEN;

const WINDOW: Duration = Duration::from_secs(60);
/// Client addresses tracked at once.
pub const MAX_CLIENTS: usize = 100_000;
/// Account ids tracked at once.
pub const MAX_ACCOUNTS: usize = 100_000;
/// The key of failed admin-token attempts in the per-account map (not a
/// valid account id, so no account shares it).
pub const ADMIN_KEY: &str = "@admin";

/// Which budget refused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    Client,
    Account,
}

impl Exhausted {
    pub fn label(self) -> &'static str {
        match self {
            Exhausted::Client => "auth_failures_client",
            Exhausted::Account => "auth_failures_account",
        }
    }
}

pub struct FailedAuthLimiter {
    by_client: BoundedLimiter<IpAddr>,
    by_account: BoundedLimiter<String>,
}

impl FailedAuthLimiter {
    pub fn new(per_client_per_minute: u32, per_account_per_minute: u32) -> Self {
        FailedAuthLimiter {
            by_client: BoundedLimiter::per_window(per_client_per_minute, WINDOW, MAX_CLIENTS),
            by_account: BoundedLimiter::per_window(per_account_per_minute, WINDOW, MAX_ACCOUNTS),
        }
    }

    /// Charges one failure to the client and to the account id (if one was
    /// named). `Err` with the longer wait when either budget is spent.
    pub fn record_failure(&self, ip: IpAddr, account: Option<&str>) -> Result<(), (Exhausted, Duration)> {
        let client = self.by_client.charge(&ip, 1).err().map(|l| (Exhausted::Client, l.retry_after));
        let account = account.and_then(|id| {
            // Bounded key: ids longer than an account id cannot exist anyway.
            let key: String = id.chars().take(MAX_ACCOUNT_ID_LEN + 1).collect();
            self.by_account.charge(&key, 1).err().map(|l| (Exhausted::Account, l.retry_after))
        });
        match (client, account) {
            (None, None) => Ok(()),
            (Some(c), None) => Err(c),
            (None, Some(a)) => Err(a),
            (Some(c), Some(a)) => Err(if a.1 > c.1 { a } else { c }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_client_and_per_account() {
        let limiter = FailedAuthLimiter::new(3, 5);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.record_failure(ip, Some("shop")).is_ok());
        }
        let (which, wait) = limiter.record_failure(ip, Some("shop")).unwrap_err();
        assert_eq!(which, Exhausted::Client);
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20), "{wait:?}");
        // Other clients guessing the same account: the account budget (5) runs out.
        let others: Vec<IpAddr> = (2..10).map(|i| format!("10.0.0.{i}").parse().unwrap()).collect();
        assert!(limiter.record_failure(others[0], Some("shop")).is_ok(), "the fifth failure for shop");
        assert_eq!(limiter.record_failure(others[1], Some("shop")).unwrap_err().0, Exhausted::Account);
        assert!(limiter.record_failure(others[2], Some("another")).is_ok());
    }
}
