//! What every handler shares.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::request::Parts;
use service_runtime::client_ip::TrustedProxies;
use transaction_model::{AccountId, SecretHasher};
use transaction_store::ApiStore;

use crate::account_cache::CachedAccounts;
use crate::auth_failures::FailedAuthLimiter;
use crate::decisions::DecisionWaiters;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::operator::OperatorToken;
use crate::publisher::Publisher;
use crate::rate_limit::RateLimiter;

#[derive(Clone)]
pub struct AppState {
    /// `store.accounts` is `accounts` too: admin changes invalidate it.
    pub store: ApiStore,
    /// Authentication's cached account reads.
    pub accounts: Arc<CachedAccounts>,
    pub hasher: SecretHasher,
    /// Idempotency fingerprints, under a key derived from `hasher`'s.
    pub fingerprints: SecretHasher,
    pub publisher: Publisher,
    pub metrics: Arc<Metrics>,
    pub auth_failures: Arc<FailedAuthLimiter>,
    pub rate_limiter: Arc<RateLimiter>,
    pub trusted_proxies: Arc<TrustedProxies>,
    pub operator_token: Option<OperatorToken>,
    pub max_batch_items: usize,
    /// Which webhook URLs merchants may register (https, public addresses).
    pub webhook_policy: notifier::url_policy::UrlPolicy,
    /// Requests waiting for decisions (`Prefer: wait`).
    pub decisions: DecisionWaiters,
    /// The longest wait a request may ask for; zero disables waits.
    pub max_decision_wait: Duration,
}

/// Whole seconds for Retry-After, at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl AppState {
    /// The client's address: the TCP peer, or the forwarded client when the
    /// peer is a trusted proxy. Unknown (a router driven directly) counts as
    /// one shared address.
    pub fn client_ip(&self, parts: &Parts) -> IpAddr {
        let peer = service_runtime::http_server::peer(&parts.extensions)
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let forwarded = parts.headers.get_all("x-forwarded-for").into_iter().filter_map(|v| v.to_str().ok());
        self.trusted_proxies.client_ip(peer, forwarded)
    }

    /// Counts a failed authentication (`reason` for the metric) against the
    /// client and the account id it named; the error to answer: 401, or 429
    /// once either has failed too often.
    pub fn auth_failed(&self, ip: IpAddr, account: Option<&str>, reason: &str, unauthenticated: ApiError) -> ApiError {
        self.metrics.auth_failures.with_label_values(&[reason]).inc();
        match self.auth_failures.record_failure(ip, account) {
            Ok(()) => unauthenticated,
            Err((which, wait)) => {
                self.metrics.rate_limited.with_label_values(&[which.label()]).inc();
                ApiError::RateLimited {
                    code: "too_many_failed_authentications",
                    message: "too many failed authentications; retry later".into(),
                    retry_after_secs: retry_after_secs(wait).max(1),
                }
            }
        }
    }

    /// Charges `cost` requests (a batch: its items) to the merchant's bucket.
    pub fn charge_rate(&self, account: &AccountId, cost: usize) -> Result<(), ApiError> {
        if cost == 0 {
            return Ok(());
        }
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        self.rate_limiter.take(account, cost).map_err(|limited| {
            self.metrics.rate_limited.with_label_values(&["merchant"]).inc();
            ApiError::RateLimited {
                code: "rate_limited",
                message: "too many requests for this account; retry later".into(),
                retry_after_secs: retry_after_secs(limited.retry_after).max(1),
            }
        })
    }
}
