use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::schedule::RetrySchedule;
use crate::url_policy::UrlPolicy;

/// Every flag has an environment-variable equivalent.
#[derive(Clone, Parser)]
#[command(name = "notifier", version, about = "Merchant webhooks: decisions in, signed deliveries out, retried")]
pub struct Config {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,

    /// `sqlite://FILE` or `mysql://USER:PASS@HOST:PORT/DB`: the database of
    /// the API (endpoints) and of the delivery outbox.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://gateway.db", hide_env_values = true)]
    pub database_url: String,

    #[arg(long, env = "RESULTS_TOPIC", default_value = "transactions_result")]
    pub results_topic: String,

    /// The notifier's own consumer group on the results topic.
    #[arg(long, env = "CONSUMER_GROUP", default_value = "webhook-notifier")]
    pub consumer_group: String,

    /// Most results recorded in one database transaction.
    #[arg(long, env = "BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: usize,

    /// Longest wait for a batch to fill after its first message, ms.
    #[arg(long, env = "BATCH_WAIT_MS", default_value_t = 50)]
    pub batch_wait_ms: u64,

    #[arg(long, env = "KAFKA_SESSION_TIMEOUT_MS", default_value_t = 10_000)]
    pub session_timeout_ms: u64,

    /// Extra librdkafka consumer properties, `key=value;key=value`.
    #[arg(long, env = "KAFKA_OPTIONS", value_delimiter = ';', hide_env_values = true)]
    pub kafka_options: Vec<String>,

    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:9102")]
    pub http_addr: SocketAddr,

    /// DEVELOPMENT ONLY: deliver to http:// loopback URLs (127.0.0.1, ::1,
    /// localhost). Production delivers to public https URLs only.
    #[arg(long, env = "WEBHOOK_ALLOW_LOOPBACK_HTTP", default_value_t = false)]
    pub allow_loopback_http: bool,

    /// Longest wait for one attempt (connect, send, response), ms.
    #[arg(long, env = "ATTEMPT_TIMEOUT_MS", default_value_t = 5000)]
    pub attempt_timeout_ms: u64,

    /// Delays between attempts (the first is immediate): `5s,5m,30m,2h,5h,10h,10h`.
    #[arg(long, env = "RETRY_SCHEDULE", default_value = "5s,5m,30m,2h,5h,10h,10h")]
    pub retry_schedule: String,

    /// Each delay is multiplied by a random factor in [1-j, 1+j].
    #[arg(long, env = "RETRY_JITTER", default_value_t = 0.1)]
    pub retry_jitter: f64,

    /// Attempts in flight to one endpoint at most (per notifier replica).
    #[arg(long, env = "ENDPOINT_CONCURRENCY", default_value_t = 4)]
    pub endpoint_concurrency: usize,

    /// Attempts in flight in all at most.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,

    /// An endpoint whose every attempt failed for this long is disabled (s).
    #[arg(long, env = "DISABLE_AFTER_SECS", default_value_t = 5 * 24 * 3600)]
    pub disable_after_secs: u64,

    /// How often due retries are looked for when nothing wakes the
    /// dispatcher, ms.
    #[arg(long, env = "POLL_INTERVAL_MS", default_value_t = 250)]
    pub poll_interval_ms: u64,
}

impl Config {
    pub fn schedule(&self) -> Result<RetrySchedule, String> {
        if !(0.0..1.0).contains(&self.retry_jitter) {
            return Err("RETRY_JITTER must be in [0, 1)".into());
        }
        Ok(RetrySchedule { delays: RetrySchedule::parse_delays(&self.retry_schedule)?, jitter: self.retry_jitter })
    }

    pub fn url_policy(&self) -> UrlPolicy {
        UrlPolicy { allow_loopback_http: self.allow_loopback_http }
    }

    pub fn attempt_timeout(&self) -> Duration {
        Duration::from_millis(self.attempt_timeout_ms)
    }

    pub fn extra_kafka_options(&self) -> Result<Vec<(String, String)>, String> {
        service_runtime::kafka_options::parse(&self.kafka_options)
    }

    /// Defaults for tests and tools: everything local, port 0.
    pub fn local(database_url: &str, results_topic: &str, consumer_group: &str) -> Self {
        Config {
            kafka_brokers: "127.0.0.1:9092".into(),
            database_url: database_url.into(),
            results_topic: results_topic.into(),
            consumer_group: consumer_group.into(),
            batch_size: 1000,
            batch_wait_ms: 20,
            session_timeout_ms: 6000,
            kafka_options: Vec::new(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            allow_loopback_http: true,
            attempt_timeout_ms: 5000,
            retry_schedule: "5s,5m,30m,2h,5h,10h,10h".into(),
            retry_jitter: 0.1,
            endpoint_concurrency: 4,
            max_in_flight: 256,
            disable_after_secs: 5 * 24 * 3600,
            poll_interval_ms: 50,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("kafka_brokers", &self.kafka_brokers)
            .field("database_url", &transaction_store::redact_url(&self.database_url))
            .field("results_topic", &self.results_topic)
            .field("consumer_group", &self.consumer_group)
            .field("batch_size", &self.batch_size)
            .field("http_addr", &self.http_addr)
            .field("allow_loopback_http", &self.allow_loopback_http)
            .field("attempt_timeout_ms", &self.attempt_timeout_ms)
            .field("retry_schedule", &self.retry_schedule)
            .field("retry_jitter", &self.retry_jitter)
            .field("endpoint_concurrency", &self.endpoint_concurrency)
            .field("max_in_flight", &self.max_in_flight)
            .field("disable_after_secs", &self.disable_after_secs)
            .field(
                "kafka_options",
                &self.kafka_options.iter().map(|o| o.split('=').next().unwrap_or("")).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}
