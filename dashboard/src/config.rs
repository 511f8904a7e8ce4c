use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// Every flag has an environment-variable equivalent.
#[derive(Clone, Parser)]
#[command(name = "dashboard", version, about = "Live dashboard of transaction results for operators and merchants")]
pub struct Config {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,

    #[arg(long, env = "RESULTS_TOPIC", default_value = "transactions_result")]
    pub results_topic: String,

    /// Prefix of this instance's consumer group; a random suffix makes each
    /// replica see every result.
    #[arg(long, env = "CONSUMER_GROUP_PREFIX", default_value = "dashboard")]
    pub consumer_group_prefix: String,

    /// Where merchant accounts live: `sqlite://FILE` or `mysql://…`.
    /// (Its value is hidden from --help: it may hold a password.)
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://gateway.db", hide_env_values = true)]
    pub database_url: String,

    /// Token of the operator view, at least 16 characters. Without it the
    /// operator view is disabled.
    #[arg(long, env = "OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,

    /// Key of the merchant secret hashes (the same as the API's).
    #[arg(long, env = "SECRET_HASH_KEY", hide_env_values = true)]
    pub secret_hash_key: Option<String>,

    /// HMAC key of session tokens, at least 32 bytes; replicas behind one
    /// load balancer must share it. Required, except in development mode,
    /// where a random per-process key is used without it.
    #[arg(long, env = "SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<String>,

    /// Idle timeout of a session: a token lives this long; the page renews
    /// it while open, a closed page's session ends.
    #[arg(long, env = "SESSION_TTL_SECS", default_value_t = 900)]
    pub session_ttl_secs: u64,

    /// Absolute lifetime of a session from its sign-in; renewals never
    /// extend it past this.
    #[arg(long, env = "SESSION_MAX_AGE_SECS", default_value_t = 12 * 3600)]
    pub session_max_age_secs: u64,

    /// How often an open merchant stream re-checks that the account is
    /// active and its secret unchanged (closed with 4001 otherwise).
    #[arg(long, env = "SESSION_REVALIDATE_SECS", default_value_t = 30)]
    pub session_revalidate_secs: u64,

    /// WebSocket connections at once per session, per client address, and in
    /// total (per replica).
    #[arg(long, env = "MAX_WS_PER_SESSION", default_value_t = 5)]
    pub max_ws_per_session: usize,
    #[arg(long, env = "MAX_WS_PER_ADDRESS", default_value_t = 50)]
    pub max_ws_per_address: usize,
    #[arg(long, env = "MAX_WS_CLIENTS", default_value_t = 10_000)]
    pub max_ws_clients: usize,

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

    /// Requests served at once (WebSockets count only while upgrading).
    #[arg(long, env = "HTTP_MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    pub http_max_concurrent_requests: usize,

    /// Development mode: allows a missing SESSION_KEY and the published
    /// development keys (never in production).
    #[arg(long, env = "GATEWAY_DEVELOPMENT")]
    pub development: bool,

    /// Most merchants aggregated at once; the least recently active is
    /// forgotten beyond that, which bounds memory.
    #[arg(long, env = "MAX_MERCHANTS", default_value_t = 5000)]
    pub max_merchants: usize,

    /// Extra librdkafka properties, `key=value;key=value` (`;` separates: values such as `debug=a,b` hold commas).
    /// Delivery-critical ones (group.id, auto commit, …) are refused. (Hidden from --help: it may hold passwords.)
    #[arg(long, env = "KAFKA_OPTIONS", value_delimiter = ';', hide_env_values = true)]
    pub kafka_options: Vec<String>,

    /// Address of the page, the WebSocket, /healthz, /readyz and /metrics.
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8081")]
    pub http_addr: SocketAddr,
}

impl Config {
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }

    pub fn session_max_age(&self) -> Duration {
        Duration::from_secs(self.session_max_age_secs)
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
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("kafka_brokers", &self.kafka_brokers)
            .field("results_topic", &self.results_topic)
            .field("consumer_group_prefix", &self.consumer_group_prefix)
            .field("database_url", &transaction_store::redact_url(&self.database_url))
            .field("operator_token", &redacted(&self.operator_token))
            .field("secret_hash_key", &redacted(&self.secret_hash_key))
            .field("session_key", &redacted(&self.session_key))
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("session_max_age_secs", &self.session_max_age_secs)
            .field("session_revalidate_secs", &self.session_revalidate_secs)
            .field("max_ws_per_session", &self.max_ws_per_session)
            .field("max_ws_per_address", &self.max_ws_per_address)
            .field("max_ws_clients", &self.max_ws_clients)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("http_limits", &self.http_limits())
            .field("development", &self.development)
            .field("max_merchants", &self.max_merchants)
            .field(
                "kafka_options",
                &self.kafka_options.iter().map(|o| o.split('=').next().unwrap_or("")).collect::<Vec<_>>(),
            )
            .field("http_addr", &self.http_addr)
            .finish()
    }
}
