//! Shared by the API's integration tests: unique topics, a fresh database,
//! the API on port 0, accounts, and reading back what was produced.
#![allow(dead_code, unused_imports)] // each test binary uses a part

use std::time::{Duration, Instant};

use api::account_admin::AccountAdmin;
use api::startup::secret_hasher;
use api::{Application, Config};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use transaction_store::ApiStore;

pub const SECRET_KEY: &str = "integration-test-secret-key";
pub const OPERATOR: &str = "integration-operator-token";

pub use testkit::{brokers, header, mysql_server, unique, Running};

/// Fresh topics: the broker does not auto-create them.
pub async fn create_topics(names: &[&str], partitions: i32) {
    let topics: Vec<_> = names.iter().map(|n| (*n, partitions)).collect();
    testkit::create_topics(&topics).await
}

pub struct TestApp {
    pub base: String,
    /// The internal listener: admin API, metrics, readiness.
    pub internal: String,
    pub client: reqwest::Client,
    pub topic: String,
    pub database_url: String,
    pub store: ApiStore,
    running: Running,
    _dir: Option<tempfile::TempDir>,
}

pub struct Merchant {
    pub id: String,
    pub secret: String,
}

impl Merchant {
    pub fn basic(&self) -> String {
        format!("Basic {}", STANDARD.encode(format!("{}:{}", self.id, self.secret)))
    }
}

/// Config for a test: its own topic (created) and SQLite file.
pub async fn sqlite_config() -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let topic = unique("tx");
    create_topics(&[&topic], 2).await;
    let mut config = Config::local(&url, &topic);
    config.card_encryption_keys = Some(testkit::TEST_CARD_KEYRING.into());
    config.cvv_encryption_keys = Some(testkit::TEST_CVV_KEYRING.into());
    config.kafka_brokers = brokers();
    config.secret_hash_key = Some(SECRET_KEY.into());
    config.admin_token = Some(OPERATOR.into());
    (config, dir)
}

/// Config whose `Prefer: wait` reads a results topic of its own (created,
/// 2 partitions), returned for the processor.
pub async fn waiting_config() -> (Config, tempfile::TempDir, String) {
    let (mut config, dir) = sqlite_config().await;
    let results = unique("res");
    create_topics(&[&results], 2).await;
    config.results_topic = results.clone();
    config.max_decision_wait_ms = 10_000;
    (config, dir, results)
}

pub async fn spawn_sqlite() -> TestApp {
    let (config, dir) = sqlite_config().await;
    spawn_with(config, Some(dir)).await
}

pub async fn spawn_with(config: Config, dir: Option<tempfile::TempDir>) -> TestApp {
    let shutdown = CancellationToken::new();
    let topic = config.transactions_topic.clone();
    let database_url = config.database_url.clone();
    let app = Application::build(config, &shutdown).await.expect("api builds");
    let port = app.http_port();
    let admin_port = app.admin_port();
    let token = shutdown.clone();
    let running = Running::spawn(shutdown, port, async move {
        app.run_until_stopped(token).await.expect("api runs");
    });
    let store = transaction_store::open_api_store(&database_url).await.expect("store");
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        internal: format!("http://127.0.0.1:{admin_port}"),
        client: reqwest::Client::new(),
        topic,
        database_url,
        store,
        running,
        _dir: dir,
    }
}

impl TestApp {
    pub async fn stop(self) {
        self.running.stop().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A URL on the internal listener.
    pub fn internal_url(&self, path: &str) -> String {
        format!("{}{path}", self.internal)
    }

    pub async fn merchant(&self, id: &str) -> Merchant {
        let admin =
            AccountAdmin { repo: self.store.accounts.clone(), hasher: secret_hasher(Some(SECRET_KEY)).unwrap() };
        let created = admin.create(id, &format!("{id} Ltd")).await.expect("account created");
        Merchant { id: id.into(), secret: created.secret }
    }

    pub async fn post(&self, m: &Merchant, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("authorization", m.basic())
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POST with an `Idempotency-Key`.
    pub async fn post_with_key(&self, m: &Merchant, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("authorization", m.basic())
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, m: &Merchant, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).header("authorization", m.basic()).send().await.expect("request sent")
    }
}

/// A body the processor approves.
pub fn approvable() -> Value {
    json!({
        "credit_card_number": "4111111111111111",
        "credit_card_name": "Ada Lovelace",
        "credit_card_expiration_month": 12,
        "credit_card_expiration_year": 2035,
        "credit_card_cvv": "123",
        "amount": "10.50"
    })
}

/// Asserts the error envelope and returns its code.
pub async fn error_code(r: reqwest::Response, status: u16) -> (String, Option<String>) {
    assert_eq!(r.status().as_u16(), status, "status");
    assert!(r.headers().contains_key("x-request-id"), "x-request-id on errors too");
    let body: Value = r.json().await.expect("JSON error body");
    let e = &body["error"];
    assert!(e["type"].is_string() && e["message"].is_string(), "envelope: {body}");
    assert!(e.get("param").is_some(), "param present (maybe null): {body}");
    (e["code"].as_str().expect("code").to_owned(), e["param"].as_str().map(str::to_owned))
}

/// Reads `topic` from the start until `n` messages or `limit` passes.
pub async fn consume(topic: &str, n: usize, limit: Duration) -> Vec<OwnedMessage> {
    testkit::consume(topic, limit, |read| read.len() >= n).await
}

pub fn payload(m: &OwnedMessage) -> Value {
    serde_json::from_slice(m.payload().expect("payload")).expect("JSON payload")
}

/// The processor (library) deciding what the API produced to `transactions`
/// at `brokers`, storing into `database_url`; its results and dead-letter
/// topics are created here.
pub async fn spawn_processor(brokers: &str, database_url: &str, transactions: &str) -> Running {
    spawn_processor_with(brokers, database_url, transactions, ProcessorExtras::default()).await
}

/// What some tests give the processor besides the usual.
#[derive(Default)]
pub struct ProcessorExtras {
    /// A card keyring of its own (`None`: the development one).
    pub card_keys: Option<String>,
    /// librdkafka properties (`key=value`), for the topics' admin client too.
    pub kafka_options: Vec<String>,
    /// An existing results topic (`None`: a fresh one is created).
    pub results_topic: Option<String>,
}

pub async fn spawn_processor_with(
    brokers: &str,
    database_url: &str,
    transactions: &str,
    extras: ProcessorExtras,
) -> Running {
    let dlq = unique("dlq");
    let results = match extras.results_topic {
        Some(topic) => topic,
        None => {
            let topic = unique("res");
            testkit::create_topics_with(brokers, &option_pairs(&extras.kafka_options), &[(&topic, 1)]).await;
            topic
        }
    };
    testkit::create_topics_with(brokers, &option_pairs(&extras.kafka_options), &[(&dlq, 1)]).await;
    let config = processor::Config {
        kafka_brokers: brokers.to_owned(),
        database_url: database_url.to_owned(),
        transactions_topic: transactions.to_owned(),
        results_topic: results,
        dlq_topic: dlq,
        consumer_group: unique("group"),
        batch_size: 500,
        batch_wait_ms: 20,
        session_timeout_ms: 6000,
        resume_rewind_messages: 0,
        kafka_options: extras.kafka_options,
        card_hash_key: Some("integration-test-card-key".into()),
        card_hash_key_id: "h1".into(),
        card_encryption_keys: extras.card_keys.or_else(|| Some(testkit::TEST_CARD_KEYRING.into())),
        card_encryption_keys_file: None,
        cvv_encryption_keys: Some(testkit::TEST_CVV_KEYRING.into()),
        cvv_encryption_keys_file: None,
        allow_plaintext_cards: true,
        http_addr: "127.0.0.1:0".parse().unwrap(),
    };
    let shutdown = CancellationToken::new();
    let app = processor::Application::build(config, &shutdown).await.expect("processor builds");
    let port = app.http_port();
    let token = shutdown.clone();
    Running::spawn(shutdown, port, async move {
        app.run_until_stopped(token).await.expect("processor runs");
    })
}

/// Polls GET until the transaction is no longer pending (60 s at most).
pub async fn wait_decided(app: &TestApp, m: &Merchant, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t: Value = app.get(m, &format!("/v1/transactions/{id}")).await.json().await.unwrap();
        if t["status"] != "pending" || Instant::now() > deadline {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `key=value` strings as pairs.
pub fn option_pairs(options: &[String]) -> Vec<(String, String)> {
    options.iter().filter_map(|o| o.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}
