//! Bounds password guessing: after too many failed logins for one account
//! (or for the operator token) within a window, further attempts are refused
//! until the window ends, right secret or not.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failed attempts allowed per key and window.
pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(300);
/// Keys tracked at most; beyond that, expired entries are pruned first.
const MAX_KEYS: usize = 100_000;

struct Entry {
    failures: u32,
    since: Instant,
}

pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Entry>>,
    max_failures: u32,
    window: Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(MAX_FAILURES, WINDOW)
    }
}

impl LoginThrottle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginThrottle { entries: Mutex::new(HashMap::new()), max_failures, window }
    }

    /// Seconds until `key` may try again, if it is locked out now.
    pub fn locked_for(&self, key: &str) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let e = entries.get(key)?;
        let left = self.window.checked_sub(e.since.elapsed())?;
        (e.failures >= self.max_failures).then(|| left.as_secs().max(1))
    }

    pub fn failed(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.window;
        if entries.len() >= MAX_KEYS && !entries.contains_key(key) {
            entries.retain(|_, e| e.since.elapsed() < window);
            if entries.len() >= MAX_KEYS {
                return;
            }
        }
        let e = entries.entry(key.to_owned()).or_insert(Entry { failures: 0, since: Instant::now() });
        if e.since.elapsed() >= window {
            *e = Entry { failures: 0, since: Instant::now() };
        }
        e.failures += 1;
    }

    pub fn succeeded(&self, key: &str) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_too_many_failures_per_key_until_the_window_ends() {
        let t = LoginThrottle::new(3, Duration::from_millis(200));
        for _ in 0..2 {
            t.failed("merchant:a");
        }
        assert_eq!(t.locked_for("merchant:a"), None);
        t.failed("merchant:a");
        assert_eq!(t.locked_for("merchant:a"), Some(1));
        assert_eq!(t.locked_for("merchant:b"), None, "other accounts are not affected");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.locked_for("merchant:a"), None);
        t.failed("merchant:a");
        assert_eq!(t.locked_for("merchant:a"), None, "a new window starts from zero");
    }

    #[test]
    fn success_clears_the_count() {
        let t = LoginThrottle::new(2, WINDOW);
        t.failed("operator");
        t.succeeded("operator");
        t.failed("operator");
        assert_eq!(t.locked_for("operator"), None);
    }
}
