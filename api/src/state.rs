//! What every handler shares.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use transaction_model::{AccountId, SecretHasher};
use transaction_store::ApiStore;

use crate::auth_failures::FailedAuthLimiter;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::operator::OperatorToken;
use crate::publisher::Publisher;
use crate::rate_limit::RateLimiter;

#[derive(Clone)]
pub struct AppState {
    pub store: ApiStore,
    pub hasher: SecretHasher,
    /// Idempotency fingerprints, under a key derived from `hasher`'s.
    pub fingerprints: SecretHasher,
    pub publisher: Publisher,
    pub metrics: Arc<Metrics>,
    pub auth_failures: Arc<FailedAuthLimiter>,
    pub rate_limiter: Arc<RateLimiter>,
    pub operator_token: Option<OperatorToken>,
    pub max_batch_items: usize,
    /// Which webhook URLs merchants may register (https, public addresses).
    pub webhook_policy: notifier::url_policy::UrlPolicy,
}

/// Whole seconds for Retry-After, at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl AppState {
    pub fn check_auth_failures(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.auth_failures.check(ip, Instant::now()).map_err(|wait| {
            self.metrics.rate_limited.with_label_values(&["auth_failures"]).inc();
            ApiError::RateLimited {
                code: "too_many_failed_authentications",
                message: "too many failed authentications from this address; retry later".into(),
                retry_after_secs: retry_after_secs(wait).max(1),
            }
        })
    }

    pub fn record_auth_failure(&self, ip: IpAddr, reason: &str) {
        self.metrics.auth_failures.with_label_values(&[reason]).inc();
        self.auth_failures.record_failure(ip, Instant::now());
    }

    /// Charges `cost` transactions to the merchant's bucket.
    pub fn charge_rate(&self, account: &AccountId, cost: usize) -> Result<(), ApiError> {
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        self.rate_limiter.take(account, cost, Instant::now()).map_err(|wait| {
            self.metrics.rate_limited.with_label_values(&["merchant"]).inc();
            ApiError::RateLimited {
                code: "rate_limited",
                message: "too many transactions for this account; retry later".into(),
                retry_after_secs: retry_after_secs(wait).max(1),
            }
        })
    }
}
