//! Builds the processor from its configuration and runs it until stopped.

use std::sync::{Arc, OnceLock};

use card_envelope::{KeyPurpose, SharedKeyring};
use rdkafka::error::KafkaError;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use transaction_store::{StoreError, TransactionRepository};

use crate::card_hash::{CardHasher, WeakKey};
use crate::config::Config;
use crate::http::{self, HttpState};
use crate::kafka;
use crate::metrics::Metrics;
use crate::ownership::Ownership;
use crate::pipeline::{Pipeline, PipelineError, Topics};
use crate::unseal::CardReader;

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
    http_port: u16,
    server: ServerTask,
    metrics: Arc<Metrics>,
}

/// The HTTP server's task; aborted if start-up fails after it was spawned.
struct ServerTask(Option<JoinHandle<()>>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

impl Application {
    /// Serves `/healthz` (and `/readyz`, `/metrics`) first, then opens the
    /// database (waiting for it as long as it takes) and the consumer.
    pub async fn build(config: Config, shutdown: &CancellationToken) -> Result<Self, StartupError> {
        if config.batch_size == 0 {
            return Err(StartupError::Config("batch size must be at least 1".into()));
        }
        if config.resume_rewind_messages < 0 {
            return Err(StartupError::Config("RESUME_REWIND_MESSAGES must be 0 (off) or more".into()));
        }
        config.extra_kafka_options().map_err(StartupError::Config)?;
        service_runtime::dev_keys::require(
            "CARD_HASH_KEY",
            config.card_hash_key.as_deref(),
            service_runtime::dev_keys::development_from_env(),
        )
        .map_err(|e| StartupError::Config(e.to_string()))?;
        let hasher = match &config.card_hash_key {
            Some(key) => CardHasher::with_key_id(key.as_bytes(), &config.card_hash_key_id)?,
            None => {
                tracing::warn!("CARD_HASH_KEY is not set: using the development key; set it in production");
                CardHasher::new(DEVELOPMENT_CARD_HASH_KEY)?
            }
        };
        let development = service_runtime::dev_keys::development_from_env();
        let keyring = SharedKeyring::for_service(
            KeyPurpose::Card,
            config.card_encryption_keys.as_deref(),
            config.card_encryption_keys_file.as_deref(),
            development,
        )
        .map_err(|e| StartupError::Config(format!("card keyring: {e}")))?;
        let cvv_keyring = SharedKeyring::for_service(
            KeyPurpose::Cvv,
            config.cvv_encryption_keys.as_deref(),
            config.cvv_encryption_keys_file.as_deref(),
            development,
        )
        .map_err(|e| StartupError::Config(format!("CVV keyring: {e}")))?;
        let metrics = Arc::new(Metrics::new());
        let producer = kafka::producer(&config)?;
        let repo_slot = Arc::new(OnceLock::new());
        let listener = TcpListener::bind(config.http_addr).await?;
        let http_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let router = http::router(HttpState {
            metrics: Arc::clone(&metrics),
            repo: Arc::clone(&repo_slot),
            producer: producer.clone(),
            results_topic: config.results_topic.clone(),
        });
        let server = service_runtime::http_server::serve(
            listener,
            router,
            service_runtime::http_server::HttpLimits::INTERNAL,
            shutdown.clone(),
        );
        let server = ServerTask(Some(tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "http server failed");
            }
        })));
        tracing::info!(http_port, "health endpoints up; opening the database");

        let repo = open_repository(&config.database_url, shutdown).await?;
        let _ = repo_slot.set(Arc::clone(&repo));
        let floors = kafka::ResumeFloors::default();
        let ownership = Ownership::default();
        let consumer = kafka::consumer(&config, Arc::clone(&metrics), floors.clone(), ownership.clone())?;
        let pipeline = Pipeline {
            consumer,
            floors,
            ownership,
            producer,
            repo,
            hasher,
            cards: CardReader::new(keyring, cvv_keyring, config.allow_plaintext_cards),
            metrics: Arc::clone(&metrics),
            topics: Topics {
                transactions: config.transactions_topic.clone(),
                results: config.results_topic.clone(),
                dlq: config.dlq_topic.clone(),
            },
            batch_size: config.batch_size,
            batch_wait: config.batch_wait(),
        };
        Ok(Application { pipeline, http_port, server, metrics })
    }

    /// The port of the HTTP endpoints (useful when configured as port 0).
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs the pipeline until `shutdown` is cancelled (the batch in flight
    /// is finished first), then stops the HTTP endpoints.
    pub async fn run_until_stopped(mut self, shutdown: CancellationToken) -> Result<(), PipelineError> {
        let result = self.pipeline.run(shutdown.clone()).await;
        shutdown.cancel();
        if let Some(server) = self.server.0.take() {
            let _ = server.await;
        }
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
