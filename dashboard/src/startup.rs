//! Builds the dashboard from its configuration and runs it until stopped.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use service_runtime::client_ip::TrustedProxies;
use service_runtime::dev_keys::{self, DevKeyError};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use transaction_model::secret::{SecretHasher, WeakSecretKey};
use transaction_store::{DashboardStore, StoreError};

use crate::board::Board;
use crate::config::Config;
use crate::feed::Feed;
use crate::http;
use crate::hub::Hub;
use crate::kafka::{self, Consumer};
use crate::merchant_login::MerchantLogin;
use crate::metrics::Metrics;
use crate::operator_token::{OperatorToken, WeakOperatorToken};
use crate::session::{SessionSigner, WeakSessionKey};
use crate::state::AppState;
use crate::throttle::LoginThrottle;
use crate::ws_slots::WsSlots;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("kafka client: {0}")]
    Kafka(#[from] KafkaError),
    #[error("account store: {0}")]
    Store(#[from] StoreError),
    #[error("http listener: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    WeakOperatorToken(#[from] WeakOperatorToken),
    #[error(transparent)]
    WeakSessionKey(#[from] WeakSessionKey),
    #[error("SECRET_HASH_KEY: {0}")]
    WeakSecretKey(#[from] WeakSecretKey),
    #[error(transparent)]
    DevelopmentKey(#[from] DevKeyError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("stopped before start-up finished")]
    Cancelled,
}

pub struct Application {
    feed: Feed,
    results_topic: String,
    listener: TcpListener,
    http: axum::Router,
    consumer: Arc<Consumer>,
    metrics: Arc<Metrics>,
    limits: service_runtime::http_server::HttpLimits,
}

impl Application {
    pub async fn build(config: Config, shutdown: &CancellationToken) -> Result<Self, StartupError> {
        config.extra_kafka_options().map_err(StartupError::Config)?;
        config.http_limits().validate().map_err(StartupError::Config)?;
        let trusted_proxies = TrustedProxies::parse(&config.trusted_proxies).map_err(StartupError::Config)?;
        if config.session_ttl_secs < 60 || config.session_max_age_secs < config.session_ttl_secs {
            return Err(StartupError::Config(
                "SESSION_TTL_SECS must be at least 60 and SESSION_MAX_AGE_SECS at least SESSION_TTL_SECS".into(),
            ));
        }
        if config.session_revalidate_secs == 0
            || config.max_ws_per_session == 0
            || config.max_ws_per_address == 0
            || config.max_ws_clients == 0
        {
            return Err(StartupError::Config("SESSION_REVALIDATE_SECS and the MAX_WS_* caps must be positive".into()));
        }
        // No silent defaults: a published key is refused, and so is a
        // missing SESSION_KEY, unless in development mode.
        if let Some(t) = &config.operator_token {
            dev_keys::require("OPERATOR_TOKEN", Some(t), config.development)?;
        }
        if let Some(k) = &config.secret_hash_key {
            dev_keys::require("SECRET_HASH_KEY", Some(k), config.development)?;
        }
        dev_keys::require("SESSION_KEY", config.session_key.as_deref(), config.development)?;
        let operator_token = match &config.operator_token {
            Some(t) => Some(Arc::new(OperatorToken::new(t)?)),
            None => {
                tracing::warn!("OPERATOR_TOKEN is not set: the operator view is disabled");
                None
            }
        };
        let signer = match &config.session_key {
            Some(k) => SessionSigner::new(k.as_bytes())?,
            None => {
                tracing::warn!(
                    "development mode without SESSION_KEY: sessions are valid on this process only and end when it stops"
                );
                SessionSigner::random()
            }
        };
        // The database serves merchant sign-in and the failing webhook
        // endpoints (both views); without any sign-in nobody could read it.
        let store = match (&config.secret_hash_key, &operator_token) {
            (None, None) => None,
            _ => Some(open_store(&config.database_url, shutdown).await?),
        };
        let merchant_login = match (&config.secret_hash_key, &store) {
            (Some(key), Some(store)) => MerchantLogin::Enabled {
                hasher: SecretHasher::new(key.as_bytes())?,
                accounts: Arc::clone(&store.accounts),
            },
            _ => {
                tracing::warn!("SECRET_HASH_KEY is not set: merchant login is disabled");
                MerchantLogin::Disabled("SECRET_HASH_KEY is not configured")
            }
        };
        let metrics = Arc::new(Metrics::new());
        let consumer = Arc::new(kafka::consumer(&config)?);
        let hub = Arc::new(Hub::default());
        let listener = bind(config.http_addr)?;
        let http = http::router(AppState {
            hub: Arc::clone(&hub),
            metrics: Arc::clone(&metrics),
            signer: Arc::new(signer),
            operator_token,
            merchant_login: Arc::new(merchant_login),
            webhook_health: store.map(|s| s.webhook_health),
            throttle: Arc::new(LoginThrottle::default()),
            consumer: Arc::clone(&consumer),
            results_topic: config.results_topic.clone(),
            session_ttl: config.session_ttl(),
            session_max_age: config.session_max_age(),
            session_revalidate: Duration::from_secs(config.session_revalidate_secs),
            ws_slots: Arc::new(WsSlots::new(
                config.max_ws_per_session,
                config.max_ws_per_address,
                config.max_ws_clients,
            )),
            trusted_proxies: Arc::new(trusted_proxies),
            shutdown: shutdown.clone(),
        });
        let feed = Feed {
            consumer: Arc::clone(&consumer),
            board: Board::new(config.max_merchants),
            hub,
            metrics: Arc::clone(&metrics),
        };
        let limits = config.http_limits();
        Ok(Application { feed, results_topic: config.results_topic, listener, http, consumer, metrics, limits })
    }

    /// The port of the page and endpoints (useful when configured as port 0).
    pub fn http_port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    pub fn consumer(&self) -> Arc<Consumer> {
        Arc::clone(&self.consumer)
    }

    /// Serves until `shutdown` is cancelled; open WebSockets are closed
    /// with "going away" so pages reconnect to another replica.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), KafkaError> {
        let server = service_runtime::http_server::serve(self.listener, self.http, self.limits, shutdown.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "http server failed");
            }
        });
        let result = self.feed.run(&self.results_topic, shutdown.clone()).await;
        shutdown.cancel();
        let _ = server.await;
        result
    }
}

/// Kernel send buffer of each accepted connection (inherited from the
/// listening socket). Fixed rather than auto-tuned up to megabytes, so a
/// client that stops reading pins little kernel memory and its stall shows
/// at once, as skipped frames, then a disconnection. Ten frames a second
/// need far less.
const SEND_BUFFER_BYTES: u32 = 256 * 1024;

fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_send_buffer_size(SEND_BUFFER_BYTES)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The database may start after the dashboard: keep trying, with backoff.
async fn open_store(url: &str, shutdown: &CancellationToken) -> Result<DashboardStore, StartupError> {
    let mut wait = Duration::from_millis(200);
    loop {
        match transaction_store::open_dashboard_store(url).await {
            Ok(repo) => return Ok(repo),
            Err(e @ (StoreError::UnsupportedUrl(_) | StoreError::Migration(_))) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, database = %transaction_store::redact_url(url),
                    retry_in_ms = wait.as_millis() as u64, "store unavailable; retrying");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(StartupError::Cancelled),
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}
