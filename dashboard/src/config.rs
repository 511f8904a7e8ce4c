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
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://gateway.db")]
    pub database_url: String,

    /// Token of the operator view, at least 16 characters. Without it the
    /// operator view is disabled.
    #[arg(long, env = "OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,

    /// Key of the merchant secret hashes (the same as the API's).
    #[arg(long, env = "SECRET_HASH_KEY", hide_env_values = true)]
    pub secret_hash_key: Option<String>,

    /// HMAC key of session tokens, at least 32 bytes; replicas behind one
    /// load balancer must share it. Without it a random per-process key is
    /// used, so sessions end when the process restarts.
    #[arg(long, env = "SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<String>,

    /// Lifetime of a session token; the page renews it while open.
    #[arg(long, env = "SESSION_TTL_SECS", default_value_t = 900)]
    pub session_ttl_secs: u64,

    /// Most merchants aggregated at once; the least recently active is
    /// forgotten beyond that, which bounds memory.
    #[arg(long, env = "MAX_MERCHANTS", default_value_t = 5000)]
    pub max_merchants: usize,

    /// Extra librdkafka properties, `key=value;key=value` (`;` separates: values such as `debug=a,b` hold commas).
    #[arg(long, env = "KAFKA_OPTIONS", value_delimiter = ';')]
    pub kafka_options: Vec<String>,

    /// Address of the page, the WebSocket, /healthz, /readyz and /metrics.
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8081")]
    pub http_addr: SocketAddr,
}

impl Config {
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
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
            .field("max_merchants", &self.max_merchants)
            .field(
                "kafka_options",
                &self.kafka_options.iter().map(|o| o.split('=').next().unwrap_or("")).collect::<Vec<_>>(),
            )
            .field("http_addr", &self.http_addr)
            .finish()
    }
}
