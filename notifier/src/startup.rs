//! Builds the notifier from its configuration and runs it until stopped.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use transaction_store::{StoreError, WebhookRepository};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::dispatcher::{report_queue, Dispatcher};
use crate::http::{self, HttpState};
use crate::intake::Intake;
use crate::kafka;
use crate::metrics::Metrics;
use crate::sender::Sender;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("kafka client: {0}")]
    Kafka(#[from] KafkaError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("http listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("http client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("stopped before start-up finished")]
    Cancelled,
}

pub struct Application {
    intake: Intake,
    dispatcher: Dispatcher,
    listener: TcpListener,
    http: axum::Router,
    metrics: Arc<Metrics>,
    repo: Arc<dyn WebhookRepository>,
    clock: Arc<dyn Clock>,
}

impl Application {
    pub async fn build(config: Config, shutdown: &CancellationToken) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Arc::new(SystemClock), shutdown).await
    }

    /// With the schedule's clock supplied (tests move time by hand).
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
        shutdown: &CancellationToken,
    ) -> Result<Self, StartupError> {
        if config.batch_size == 0 || config.endpoint_concurrency == 0 || config.max_in_flight == 0 {
            return Err(StartupError::Config(
                "BATCH_SIZE, ENDPOINT_CONCURRENCY and MAX_IN_FLIGHT must be at least 1".into(),
            ));
        }
        let schedule = config.schedule().map_err(StartupError::Config)?;
        config.extra_kafka_options().map_err(StartupError::Config)?;
        if config.allow_loopback_http {
            tracing::warn!("WEBHOOK_ALLOW_LOOPBACK_HTTP is on: delivering to http:// loopback URLs (development only)");
        }
        let metrics = Arc::new(Metrics::new());
        let url = config.database_url.clone();
        let repo =
            transaction_store::open_with_retry(&url, || transaction_store::open_webhooks(&url), shutdown.cancelled())
                .await?
                .ok_or(StartupError::Cancelled)?;
        let consumer = kafka::consumer(&config, Arc::clone(&metrics))?;
        let sender = Sender::new(config.url_policy(), config.attempt_timeout())?;
        let wake = Arc::new(Notify::new());
        let listener = TcpListener::bind(config.http_addr).await?;
        let http = http::router(HttpState { metrics: Arc::clone(&metrics), repo: Arc::clone(&repo) });
        let intake = Intake {
            consumer,
            repo: Arc::clone(&repo),
            clock: Arc::clone(&clock),
            metrics: Arc::clone(&metrics),
            topic: config.results_topic.clone(),
            batch_size: config.batch_size,
            batch_wait: Duration::from_millis(config.batch_wait_ms),
            wake: Arc::clone(&wake),
        };
        let dispatcher = Dispatcher {
            repo: Arc::clone(&repo),
            clock: Arc::clone(&clock),
            sender,
            schedule,
            metrics: Arc::clone(&metrics),
            endpoint_concurrency: config.endpoint_concurrency,
            max_in_flight: config.max_in_flight,
            disable_after: Duration::from_secs(config.disable_after_secs),
            poll_interval: Duration::from_millis(config.poll_interval_ms.max(1)),
            wake,
        };
        Ok(Application { intake, dispatcher, listener, http, metrics, repo, clock })
    }

    pub fn http_port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs intake, dispatcher and the HTTP endpoints until `shutdown`: the
    /// batch being recorded is finished and its offsets committed, running
    /// attempts finish and are written.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), KafkaError> {
        let server = service_runtime::http_server::serve(
            self.listener,
            self.http,
            service_runtime::http_server::HttpLimits::INTERNAL,
            shutdown.clone(),
        );
        let server = tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "http server failed");
            }
        });
        let queue = tokio::spawn(report_queue(
            Arc::clone(&self.repo),
            Arc::clone(&self.clock),
            Arc::clone(&self.metrics),
            Duration::from_secs(5),
            shutdown.clone(),
        ));
        let dispatcher = tokio::spawn(self.dispatcher.run(shutdown.clone()));
        let result = self.intake.run(shutdown.clone()).await;
        shutdown.cancel();
        let _ = dispatcher.await;
        let _ = queue.await;
        let _ = server.await;
        result
    }
}
