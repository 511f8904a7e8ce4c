//! `api serve` configuration. Every flag has an environment-variable equivalent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

#[derive(Clone, Args)]
pub struct Config {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,

    /// `sqlite://FILE` (embedded) or `mysql://USER:PASS@HOST:PORT/DB`; the
    /// processor's database, whose decisions the API reads. (Its value is
    /// hidden from --help: it may hold a password.)
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://gateway.db", hide_env_values = true)]
    pub database_url: String,

    #[arg(long, env = "TRANSACTIONS_TOPIC", default_value = "transactions")]
    pub transactions_topic: String,

    /// Address of the merchants' REST API (/v1/transactions), /healthz and
    /// /openapi.yaml: the one the Ingress exposes.
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// Internal address of /v1/admin, /metrics, /readyz and /healthz; never
    /// routed by the Ingress (cluster-internal, or loopback).
    #[arg(long, env = "ADMIN_HTTP_ADDR", default_value = "127.0.0.1:9180")]
    pub admin_http_addr: SocketAddr,

    /// HMAC key for merchant secrets (and idempotency fingerprints), at
    /// least 16 bytes. Without it a development key is used and a warning is
    /// logged.
    #[arg(long, env = "SECRET_HASH_KEY", hide_env_values = true)]
    pub secret_hash_key: Option<String>,

    /// Keyring that seals card fields on the transactions topic:
    /// `KEY_ID:BASE64_32_BYTES` entries separated by `;`, the first sealing
    /// new messages. Without it (or the file) the PUBLIC development keyring
    /// is used, with a warning.
    #[arg(long, env = "CARD_ENCRYPTION_KEYS", hide_env_values = true)]
    pub card_encryption_keys: Option<String>,

    /// The same keyring in a file (one entry a line), re-read every 10 s:
    /// rotating keys needs no restart.
    #[arg(long, env = "CARD_ENCRYPTION_KEYS_FILE")]
    pub card_encryption_keys_file: Option<PathBuf>,

    /// The CVV's keyring of short-lived keys (same form; the first seals),
    /// rotated every 15 minutes by the `cvv-keys` CronJob in production.
    /// Without it (or the file) the PUBLIC development CVV keyring is used
    /// in development mode only.
    #[arg(long, env = "CVV_ENCRYPTION_KEYS", hide_env_values = true)]
    pub cvv_encryption_keys: Option<String>,

    /// The CVV keyring in a file (a mounted Secret), re-read every 10 s.
    #[arg(long, env = "CVV_ENCRYPTION_KEYS_FILE")]
    pub cvv_encryption_keys_file: Option<PathBuf>,

    /// Bearer token of the /v1/admin endpoints, distinct from the
    /// dashboard's OPERATOR_TOKEN; without it they answer 403.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Where the processor publishes decisions; read for `Prefer: wait`.
    #[arg(long, env = "RESULTS_TOPIC", default_value = "transactions_result")]
    pub results_topic: String,

    /// Longest wait for a decision a request may ask for with `Prefer:
    /// wait=N`; 0 disables waiting (and the results listener).
    #[arg(long, env = "MAX_DECISION_WAIT_MS", default_value_t = 10_000)]
    pub max_decision_wait_ms: u64,

    /// Most requests waiting for decisions at once; beyond it a request is
    /// answered pending without waiting.
    #[arg(long, env = "MAX_DECISION_WAITERS", default_value_t = 50_000)]
    pub max_decision_waiters: usize,

    /// Longest wait for the broker's delivery report before answering 503.
    #[arg(long, env = "DELIVERY_TIMEOUT_MS", default_value_t = 5000)]
    pub delivery_timeout_ms: u64,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most transactions in one batch request.
    #[arg(long, env = "MAX_BATCH_ITEMS", default_value_t = 500)]
    pub max_batch_items: usize,

    /// Per-merchant sustained rate, transactions per second (per replica).
    #[arg(long, env = "RATE_LIMIT_PER_SECOND", default_value_t = 200.0)]
    pub rate_limit_per_second: f64,

    /// Per-merchant burst, in transactions (per replica).
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 1000.0)]
    pub rate_limit_burst: f64,

    /// How long an authenticated account (its secret hash and status) is
    /// kept in memory, in milliseconds. A rotation or a disable through this
    /// replica's admin API is seen at once; one made elsewhere (another
    /// replica, the CLI) within this bound. 0 reads the database on every
    /// request.
    #[arg(long, env = "ACCOUNT_CACHE_TTL_MS", default_value_t = 2000)]
    pub account_cache_ttl_ms: u64,

    /// Failed authentications allowed per client address per minute (per
    /// replica); more are answered 429. Valid credentials are never refused.
    #[arg(long, env = "AUTH_FAILURES_PER_MINUTE", default_value_t = 20)]
    pub auth_failures_per_minute: u32,

    /// DEVELOPMENT ONLY: accept http:// webhook URLs on loopback
    /// (127.0.0.1, ::1, localhost). Production accepts public https URLs only.
    #[arg(long, env = "WEBHOOK_ALLOW_LOOPBACK_HTTP", default_value_t = false)]
    pub webhook_allow_loopback_http: bool,
    /// Failed authentications allowed per account id (and for the admin
    /// token) per minute, from all clients together (per replica).
    #[arg(long, env = "ACCOUNT_AUTH_FAILURES_PER_MINUTE", default_value_t = 10)]
    pub account_auth_failures_per_minute: u32,

    /// Proxies whose `X-Forwarded-For` is believed, comma-separated CIDR
    /// ranges or addresses (the ingress controller's pods). Empty: the TCP
    /// peer is the client.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// A connection must send a complete request head within this many
    /// seconds (new or kept-alive); idle and slow-header connections close.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_SECS", default_value_t = 30)]
    pub http_idle_timeout_secs: u64,

    /// Longest pause while a request body arrives, in milliseconds.
    #[arg(long, env = "HTTP_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_body_timeout_ms: u64,

    /// Requests not answered within this many seconds get 503.
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub http_request_timeout_secs: u64,

    /// Requests served at once by this process; more wait for a slot.
    #[arg(long, env = "HTTP_MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    pub http_max_concurrent_requests: usize,

    /// Development mode: allows a missing or published development
    /// SECRET_HASH_KEY / ADMIN_TOKEN (never in production).
    #[arg(long, env = "GATEWAY_DEVELOPMENT")]
    pub development: bool,

    /// Extra librdkafka producer properties, `key=value;key=value` (`;` separates: values such as `debug=a,b` hold commas).
    /// Delivery-critical ones (acks, …) are refused. (Hidden from --help: it may hold passwords.)
    #[arg(long, env = "KAFKA_OPTIONS", value_delimiter = ';', hide_env_values = true)]
    pub kafka_options: Vec<String>,
}

impl Config {
    pub fn account_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.account_cache_ttl_ms)
    }

    pub fn delivery_timeout(&self) -> Duration {
        Duration::from_millis(self.delivery_timeout_ms)
    }

    pub fn http_limits(&self) -> service_runtime::http_server::HttpLimits {
        service_runtime::http_server::HttpLimits {
            idle_timeout: Duration::from_secs(self.http_idle_timeout_secs),
            body_timeout: Duration::from_millis(self.http_body_timeout_ms),
            request_timeout: Duration::from_secs(self.http_request_timeout_secs),
            max_concurrent_requests: self.http_max_concurrent_requests,
        }
    }

    /// Parses `kafka_options` into pairs.
    pub fn extra_kafka_options(&self) -> Result<Vec<(String, String)>, String> {
        service_runtime::kafka_options::parse(&self.kafka_options)
    }

    /// Defaults for tests and tools: everything local, port 0, development
    /// mode (a missing SECRET_HASH_KEY falls back to the development key).
    /// Waits are off (`max_decision_wait_ms` 0): a test that waits names its
    /// results topic and turns them on.
    pub fn local(database_url: &str, transactions_topic: &str) -> Self {
        Config {
            kafka_brokers: "127.0.0.1:9092".into(),
            database_url: database_url.into(),
            transactions_topic: transactions_topic.into(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret_hash_key: None,
            card_encryption_keys: None,
            card_encryption_keys_file: None,
            cvv_encryption_keys: None,
            cvv_encryption_keys_file: None,
            admin_token: None,
            results_topic: "transactions_result".into(),
            max_decision_wait_ms: 0,
            max_decision_waiters: 50_000,
            delivery_timeout_ms: 5000,
            max_body_bytes: 1024 * 1024,
            max_batch_items: 500,
            rate_limit_per_second: 200.0,
            rate_limit_burst: 1000.0,
            account_cache_ttl_ms: 2000,
            auth_failures_per_minute: 20,
            webhook_allow_loopback_http: false,
            account_auth_failures_per_minute: 10,
            trusted_proxies: Vec::new(),
            http_idle_timeout_secs: 30,
            http_body_timeout_ms: 10_000,
            http_request_timeout_secs: 30,
            http_max_concurrent_requests: 1024,
            development: true,
            kafka_options: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("kafka_brokers", &self.kafka_brokers)
            .field("database_url", &transaction_store::redact_url(&self.database_url))
            .field("transactions_topic", &self.transactions_topic)
            .field("http_addr", &self.http_addr)
            .field("admin_http_addr", &self.admin_http_addr)
            .field("secret_hash_key", &self.secret_hash_key.as_ref().map(|_| "<redacted>"))
            .field("card_encryption_keys", &self.card_encryption_keys.as_ref().map(|_| "<redacted>"))
            .field("card_encryption_keys_file", &self.card_encryption_keys_file)
            .field("cvv_encryption_keys", &self.cvv_encryption_keys.as_ref().map(|_| "<redacted>"))
            .field("cvv_encryption_keys_file", &self.cvv_encryption_keys_file)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .field("results_topic", &self.results_topic)
            .field("max_decision_wait_ms", &self.max_decision_wait_ms)
            .field("max_decision_waiters", &self.max_decision_waiters)
            .field("delivery_timeout_ms", &self.delivery_timeout_ms)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_batch_items", &self.max_batch_items)
            .field("rate_limit_per_second", &self.rate_limit_per_second)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .field("account_cache_ttl_ms", &self.account_cache_ttl_ms)
            .field("auth_failures_per_minute", &self.auth_failures_per_minute)
            .field("webhook_allow_loopback_http", &self.webhook_allow_loopback_http)
            .field("account_auth_failures_per_minute", &self.account_auth_failures_per_minute)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("http_limits", &self.http_limits())
            .field("development", &self.development)
            .field(
                "kafka_options",
                &self.kafka_options.iter().map(|o| o.split('=').next().unwrap_or("")).collect::<Vec<_>>(),
            )
            .finish()
    }
}
