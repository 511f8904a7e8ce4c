use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Every flag has an environment-variable equivalent.
#[derive(Clone, Parser)]
#[command(name = "processor", version, about = "Transaction processor: Kafka in, rules, storage, Kafka out")]
pub struct Config {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,

    /// `sqlite://FILE` (embedded) or `mysql://USER:PASS@HOST:PORT/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://gateway.db", hide_env_values = true)]
    pub database_url: String,

    #[arg(long, env = "TRANSACTIONS_TOPIC", default_value = "transactions")]
    pub transactions_topic: String,

    #[arg(long, env = "RESULTS_TOPIC", default_value = "transactions_result")]
    pub results_topic: String,

    #[arg(long, env = "DLQ_TOPIC", default_value = "transactions_dlq")]
    pub dlq_topic: String,

    #[arg(long, env = "CONSUMER_GROUP", default_value = "transaction-processor")]
    pub consumer_group: String,

    /// Most messages in one batch (one database transaction).
    #[arg(long, env = "BATCH_SIZE", default_value_t = 2000)]
    pub batch_size: usize,

    /// Longest a batch keeps taking messages already buffered by the
    /// consumer, in milliseconds after its first message. A batch never
    /// waits for messages still to come: it closes as soon as the consumer
    /// has nothing more to give (a lone message is decided at once), when
    /// it is full, or after this long.
    #[arg(long, env = "BATCH_WAIT_MS", default_value_t = 50)]
    pub batch_wait_ms: u64,

    /// How long the broker waits for heartbeats before it gives this
    /// consumer's partitions to another.
    #[arg(long, env = "KAFKA_SESSION_TIMEOUT_MS", default_value_t = 10_000)]
    pub session_timeout_ms: u64,

    /// Only for a broker that cannot serve a fetch from the middle of a
    /// stored record batch: on (re)assignment, start each partition this
    /// many messages before its committed offset and drop what lies below
    /// it (at least the largest producer batch). 0 (the default, right for
    /// Apache Kafka) disables it. When on, it fails closed: if the committed
    /// offsets cannot be read, the partitions stay paused and the processor
    /// exits with an error instead of resuming without the rewind.
    #[arg(long, env = "RESUME_REWIND_MESSAGES", default_value_t = 0)]
    pub resume_rewind_messages: i64,

    /// Extra librdkafka properties for both clients, `key=value;key=value`
    /// (security settings, tuning). `;` separates, since values such as
    /// `debug=cgrp,fetch` hold commas.
    #[arg(long, env = "KAFKA_OPTIONS", value_delimiter = ';', hide_env_values = true)]
    pub kafka_options: Vec<String>,

    /// HMAC key for card-number hashes, at least 16 bytes. Without it a
    /// development key is used and a warning is logged.
    #[arg(long, env = "CARD_HASH_KEY", hide_env_values = true)]
    pub card_hash_key: Option<String>,

    /// The id of CARD_HASH_KEY, stored beside every hash: a new key gets a
    /// new id, so rows tell which key made their hash.
    #[arg(long, env = "CARD_HASH_KEY_ID", default_value = "h1")]
    pub card_hash_key_id: String,

    /// Keyring that opens the card fields the API seals:
    /// `KEY_ID:BASE64_32_BYTES` entries separated by `;`; it must hold every
    /// key the API sealed with during the topic's retention. Without it (or
    /// the file) the PUBLIC development keyring is used, with a warning.
    #[arg(long, env = "CARD_ENCRYPTION_KEYS", hide_env_values = true)]
    pub card_encryption_keys: Option<String>,

    /// The same keyring in a file (one entry a line), re-read every 10 s.
    #[arg(long, env = "CARD_ENCRYPTION_KEYS_FILE")]
    pub card_encryption_keys_file: Option<PathBuf>,

    /// The CVV's keyring of short-lived keys (same form), which the
    /// rotation empties of keys past the authorization window: a CVV whose
    /// key is gone is rejected. Without it (or the file) the PUBLIC
    /// development CVV keyring is used in development mode only.
    #[arg(long, env = "CVV_ENCRYPTION_KEYS", hide_env_values = true)]
    pub cvv_encryption_keys: Option<String>,

    /// The CVV keyring in a file (a mounted Secret), re-read every 10 s.
    #[arg(long, env = "CVV_ENCRYPTION_KEYS_FILE")]
    pub cvv_encryption_keys_file: Option<PathBuf>,

    /// Decide messages whose card fields come in clear (legacy producers);
    /// `false` dead-letters them. Either way they are counted and logged.
    #[arg(long, env = "ALLOW_PLAINTEXT_CARDS", default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_plaintext_cards: bool,

    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:9101")]
    pub http_addr: SocketAddr,
}

impl Config {
    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_wait_ms)
    }

    /// Parses `kafka_options` into pairs.
    pub fn extra_kafka_options(&self) -> Result<Vec<(String, String)>, String> {
        service_runtime::kafka_options::parse(&self.kafka_options)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("kafka_brokers", &self.kafka_brokers)
            .field("database_url", &transaction_store::redact_url(&self.database_url))
            .field("transactions_topic", &self.transactions_topic)
            .field("results_topic", &self.results_topic)
            .field("dlq_topic", &self.dlq_topic)
            .field("consumer_group", &self.consumer_group)
            .field("batch_size", &self.batch_size)
            .field("batch_wait_ms", &self.batch_wait_ms)
            .field("session_timeout_ms", &self.session_timeout_ms)
            .field("resume_rewind_messages", &self.resume_rewind_messages)
            .field(
                "kafka_options",
                &self.kafka_options.iter().map(|o| o.split('=').next().unwrap_or("")).collect::<Vec<_>>(),
            )
            .field("card_hash_key", &self.card_hash_key.as_ref().map(|_| "<redacted>"))
            .field("card_hash_key_id", &self.card_hash_key_id)
            .field("card_encryption_keys", &self.card_encryption_keys.as_ref().map(|_| "<redacted>"))
            .field("card_encryption_keys_file", &self.card_encryption_keys_file)
            .field("cvv_encryption_keys", &self.cvv_encryption_keys.as_ref().map(|_| "<redacted>"))
            .field("cvv_encryption_keys_file", &self.cvv_encryption_keys_file)
            .field("allow_plaintext_cards", &self.allow_plaintext_cards)
            .field("http_addr", &self.http_addr)
            .finish()
    }
}
