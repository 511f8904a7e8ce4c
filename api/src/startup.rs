//! Builds the API from its configuration and runs it until stopped.

use std::sync::Arc;
use std::time::Duration;

use card_envelope::{KeyPurpose, SharedKeyring};
use rdkafka::error::KafkaError;
use service_runtime::client_ip::TrustedProxies;
use service_runtime::dev_keys::{self, DevKeyError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transaction_model::{SecretHasher, WeakSecretKey};
use transaction_store::{ApiStore, StoreError};

use crate::account_cache::CachedAccounts;
use crate::auth_failures::FailedAuthLimiter;
use crate::coalesced_writes::CoalescingAccepted;
use crate::config::Config;
use crate::decisions::DecisionWaiters;
use crate::fingerprint::FINGERPRINT_PURPOSE;
use crate::housekeeping;
use crate::metrics::Metrics;
use crate::operator::OperatorToken;
use crate::publisher::Publisher;
use crate::rate_limit::RateLimiter;
use crate::results_listener::ResultsListener;
use crate::routes;
use crate::state::AppState;

/// Used only in development mode (`--development`) when no SECRET_HASH_KEY
/// is configured: secrets hashed with it are only as safe as this public
/// string. Without the flag the API refuses to start instead.
pub const DEVELOPMENT_SECRET_HASH_KEY: &str = "development-only-secret-hash-key";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("kafka client: {0}")]
    Kafka(#[from] KafkaError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("http listener: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    WeakKey(#[from] WeakSecretKey),
    #[error(transparent)]
    DevelopmentKey(#[from] DevKeyError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("stopped before start-up finished")]
    Cancelled,
}

/// The hasher of merchant secrets; the CLI and the server must agree on it.
pub fn secret_hasher(key: Option<&str>) -> Result<SecretHasher, WeakSecretKey> {
    match key {
        Some(key) => SecretHasher::new(key.as_bytes()),
        None => {
            tracing::warn!(
                "SECRET_HASH_KEY is not set: using the PUBLIC development key; merchant secrets are NOT protected. \
                 Set SECRET_HASH_KEY in production"
            );
            SecretHasher::new(DEVELOPMENT_SECRET_HASH_KEY.as_bytes())
        }
    }
}

/// The hasher of `serve` and the CLI: refuses a missing or published key
/// unless `development` is set.
pub fn checked_secret_hasher(key: Option<&str>, development: bool) -> Result<SecretHasher, StartupError> {
    dev_keys::require("SECRET_HASH_KEY", key, development)?;
    Ok(secret_hasher(key)?)
}

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    /// The internal listener: admin API, metrics, readiness.
    admin_listener: TcpListener,
    admin_router: axum::Router,
    state: AppState,
    limits: service_runtime::http_server::HttpLimits,
    results_listener: Option<ResultsListener>,
}

impl Application {
    pub async fn build(config: Config, shutdown: &CancellationToken) -> Result<Self, StartupError> {
        if config.max_batch_items == 0 || config.max_body_bytes == 0 {
            return Err(StartupError::Config("MAX_BATCH_ITEMS and MAX_BODY_BYTES must be positive".into()));
        }
        if !(config.rate_limit_per_second > 0.0 && config.rate_limit_burst >= 1.0) {
            return Err(StartupError::Config("RATE_LIMIT_PER_SECOND must be > 0 and RATE_LIMIT_BURST >= 1".into()));
        }
        config.extra_kafka_options().map_err(StartupError::Config)?;
        config.http_limits().validate().map_err(StartupError::Config)?;
        // A wait plus the broker's delivery must end before the request
        // timeout cuts the answer off.
        if config.max_decision_wait_ms + config.delivery_timeout_ms >= config.http_request_timeout_secs * 1000 {
            return Err(StartupError::Config(
                "MAX_DECISION_WAIT_MS + DELIVERY_TIMEOUT_MS must be below HTTP_REQUEST_TIMEOUT_SECS".into(),
            ));
        }
        let trusted_proxies = TrustedProxies::parse(&config.trusted_proxies).map_err(StartupError::Config)?;
        let hasher = checked_secret_hasher(config.secret_hash_key.as_deref(), config.development)?;
        if let Some(token) = config.admin_token.as_deref() {
            dev_keys::require("ADMIN_TOKEN", Some(token), config.development)?;
        }
        let mut store = open_store(&config.database_url, shutdown).await?;
        store.accepted = Arc::new(CoalescingAccepted::new(store.accepted));
        let accounts = Arc::new(CachedAccounts::new(store.accounts, config.account_cache_ttl()));
        store.accounts = accounts.clone();
        let keyring = SharedKeyring::for_service(
            KeyPurpose::Card,
            config.card_encryption_keys.as_deref(),
            config.card_encryption_keys_file.as_deref(),
            config.development,
        )
        .map_err(|e| StartupError::Config(format!("card keyring: {e}")))?;
        let cvv_keyring = SharedKeyring::for_service(
            KeyPurpose::Cvv,
            config.cvv_encryption_keys.as_deref(),
            config.cvv_encryption_keys_file.as_deref(),
            config.development,
        )
        .map_err(|e| StartupError::Config(format!("CVV keyring: {e}")))?;
        let publisher = Publisher::new(&config, keyring, cvv_keyring)?;
        let metrics = Arc::new(Metrics::new());
        let decisions = DecisionWaiters::new(config.max_decision_waiters, metrics.decision_waiters.clone());
        let max_decision_wait = Duration::from_millis(config.max_decision_wait_ms);
        let results_listener = if max_decision_wait.is_zero() {
            None
        } else {
            let mut listener = ResultsListener::new(&config, decisions.clone(), Arc::clone(&metrics))?;
            // Before the listener serves: a waiting request must find the
            // results read from where its transaction was produced.
            listener.start_at_end().await;
            Some(listener)
        };
        let state = AppState {
            store,
            accounts,
            fingerprints: hasher.derive(FINGERPRINT_PURPOSE),
            hasher,
            publisher,
            metrics,
            auth_failures: Arc::new(FailedAuthLimiter::new(
                config.auth_failures_per_minute,
                config.account_auth_failures_per_minute,
            )),
            rate_limiter: Arc::new(RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst)),
            operator_token: config.admin_token.as_deref().filter(|t| !t.is_empty()).map(OperatorToken::new),
            trusted_proxies: Arc::new(trusted_proxies),
            max_batch_items: config.max_batch_items,
            webhook_policy: notifier::url_policy::UrlPolicy { allow_loopback_http: config.webhook_allow_loopback_http },
            decisions,
            max_decision_wait,
        };
        if state.operator_token.is_none() {
            tracing::info!("ADMIN_TOKEN is not set: the admin endpoints are disabled");
        }
        let listener = TcpListener::bind(config.http_addr).await?;
        let admin_listener = TcpListener::bind(config.admin_http_addr).await?;
        let router = routes::router(state.clone(), config.max_body_bytes);
        let admin_router = routes::internal_router(state.clone(), config.max_body_bytes);
        Ok(Application {
            listener,
            router,
            admin_listener,
            admin_router,
            state,
            limits: config.http_limits(),
            results_listener,
        })
    }

    /// The HTTP port (useful when configured as port 0).
    pub fn http_port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The internal port of /v1/admin, /metrics and /readyz.
    pub fn admin_port(&self) -> u16 {
        self.admin_listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.state.metrics)
    }

    /// Serves until `shutdown` is cancelled; requests in flight finish first.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), std::io::Error> {
        tokio::spawn(housekeeping::run(self.state.clone(), shutdown.clone()));
        if let Some(listener) = self.results_listener {
            tokio::spawn(listener.run(shutdown.clone()));
        }
        let internal = tokio::spawn(service_runtime::http_server::serve(
            self.admin_listener,
            self.admin_router,
            self.limits,
            shutdown.clone(),
        ));
        let result =
            service_runtime::http_server::serve(self.listener, self.router, self.limits, shutdown.clone()).await;
        shutdown.cancel();
        match internal.await {
            Ok(Err(e)) => tracing::error!(error = %e, "internal listener failed"),
            Err(e) => tracing::error!(error = %e, "internal listener task failed"),
            Ok(Ok(())) => {}
        }
        shutdown.cancel();
        let publisher = self.state.publisher.clone();
        let _ = tokio::task::spawn_blocking(move || publisher.flush(Duration::from_secs(5))).await;
        result
    }
}

/// The database may start after the API: keep trying, with backoff.
async fn open_store(url: &str, shutdown: &CancellationToken) -> Result<ApiStore, StartupError> {
    transaction_store::open_with_retry(url, || transaction_store::open_api_store(url), shutdown.cancelled())
        .await?
        .ok_or(StartupError::Cancelled)
}
