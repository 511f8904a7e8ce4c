//! Builds the processor from its configuration and runs it until stopped.

use std::sync::Arc;

use rdkafka::error::KafkaError;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transaction_store::{StoreError, TransactionRepository};

use crate::card_hash::{CardHasher, WeakKey};
use crate::config::Config;
use crate::http::{self, HttpState};
use crate::kafka;
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, Topics};

/// Used only in development mode (`GATEWAY_DEVELOPMENT=1`) when no
/// CARD_HASH_KEY is configured: hashes made with it are not secret. Without
/// that flag a missing or published key stops the start.
const DEVELOPMENT_CARD_HASH_KEY: &[u8] = b"development-only-card-hash-key";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("kafka client: {0}")]
    Kafka(#[from] KafkaError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("http listener: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    WeakKey(#[from] WeakKey),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("stopped before start-up finished")]
    Cancelled,
}

pub struct Application {
    pipeline: Pipeline,
    listener: TcpListener,
    http: axum::Router,
    metrics: Arc<Metrics>,
}

impl Application {
    pub async fn build(config: Config, shutdown: &CancellationToken) -> Result<Self, StartupError> {
        if config.batch_size == 0 {
            return Err(StartupError::Config("batch size must be at least 1".into()));
        }
        config.extra_kafka_options().map_err(StartupError::Config)?;
        service_runtime::dev_keys::require(
            "CARD_HASH_KEY",
            config.card_hash_key.as_deref(),
            service_runtime::dev_keys::development_from_env(),
        )
        .map_err(|e| StartupError::Config(e.to_string()))?;
        let hasher = match &config.card_hash_key {
            Some(key) => CardHasher::new(key.as_bytes())?,
            None => {
                tracing::warn!("CARD_HASH_KEY is not set: using the development key; set it in production");
                CardHasher::new(DEVELOPMENT_CARD_HASH_KEY)?
            }
        };
        let metrics = Arc::new(Metrics::new());
        let repo = open_repository(&config.database_url, shutdown).await?;
        let floors = kafka::ResumeFloors::default();
        let consumer = kafka::consumer(&config, Arc::clone(&metrics), floors.clone())?;
        let producer = kafka::producer(&config)?;
        let listener = TcpListener::bind(config.http_addr).await?;
        let http = http::router(HttpState {
            metrics: Arc::clone(&metrics),
            repo: Arc::clone(&repo),
            producer: producer.clone(),
            results_topic: config.results_topic.clone(),
        });
        let pipeline = Pipeline {
            consumer,
            floors,
            producer,
            repo,
            hasher,
            metrics: Arc::clone(&metrics),
            topics: Topics {
                transactions: config.transactions_topic.clone(),
                results: config.results_topic.clone(),
                dlq: config.dlq_topic.clone(),
            },
            batch_size: config.batch_size,
            batch_wait: config.batch_wait(),
        };
        Ok(Application { pipeline, listener, http, metrics })
    }

    /// The port of the HTTP endpoints (useful when configured as port 0).
    pub fn http_port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs the pipeline and the HTTP endpoints until `shutdown` is
    /// cancelled; the batch in flight is finished first.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), KafkaError> {
        let server = axum::serve(self.listener, self.http).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let server = tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "http server failed");
            }
        });
        let result = self.pipeline.run(shutdown.clone()).await;
        shutdown.cancel();
        let _ = server.await;
        result
    }
}

/// The database may start after the processor: keep trying, with backoff.
async fn open_repository(
    url: &str,
    shutdown: &CancellationToken,
) -> Result<Arc<dyn TransactionRepository>, StartupError> {
    transaction_store::open_with_retry(url, || transaction_store::open(url), shutdown.cancelled())
        .await?
        .ok_or(StartupError::Cancelled)
}
