//! Outages: while the database or the broker is down, the processor retries
//! with backoff, holds its offsets, says so in its logs and metrics, and
//! resumes by itself, losing nothing.

mod support;

use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, MySqlConnection};
use support::*;
use testkit::{free_port, FlakyLink, PrivateBroker};
use transaction_store::mysql;

async fn admin() -> MySqlConnection {
    MySqlConnection::connect(&mysql_server()).await.unwrap()
}

async fn metrics(port: u16) -> String {
    let out = tokio::process::Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .await
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
}

/// Polls `/metrics` until `name` reaches `at_least` or `limit` passes;
/// returns the last exposition read.
async fn wait_for_metric(port: u16, name: &str, at_least: f64, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut text = metrics(port).await;
    while metric(&text, name) < at_least && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        text = metrics(port).await;
    }
    text
}

/// Locks the processor's MariaDB account and kills its connections: every
/// write fails until it is unlocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_retried_and_loses_nothing() {
    let url = mysql::create_scratch_database(&mysql_server(), "outage").await.unwrap();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let user = format!("u{}", &db[db.len() - 12..]);
    let mut root = admin().await;
    for host in ["%", "localhost", "127.0.0.1"] {
        root.execute(format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY 'pw'").as_str()).await.unwrap();
        root.execute(format!("GRANT ALL ON `{db}`.* TO '{user}'@'{host}'").as_str()).await.unwrap();
    }
    let server = mysql_server().replace("root@", &format!("{user}:pw@"));
    let processor_url = format!("{}/{db}", server.trim_end_matches('/'));

    let topics = create_topics(2).await;
    let prefix = unique("outage");
    let first: Vec<_> = (0..500).map(|i| approvable(&format!("{prefix}-a{i}"))).collect();
    let second: Vec<_> = (0..500).map(|i| approvable(&format!("{prefix}-b{i}"))).collect();
    produce(&topics.transactions, &first).await;
    let app = spawn(config(&topics, &processor_url)).await;
    let first_ids: Vec<_> = first.iter().map(|m| m.id.clone()).collect();
    collect_ids(&topics.results, &first_ids, Duration::from_secs(60)).await;

    // Down: no new login, existing connections cut.
    for host in ["%", "localhost", "127.0.0.1"] {
        root.execute(format!("ALTER USER '{user}'@'{host}' ACCOUNT LOCK").as_str()).await.unwrap();
    }
    let ids: Vec<i64> =
        sqlx::query_scalar(&format!("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{user}'"))
            .fetch_all(&mut root)
            .await
            .unwrap();
    for id in ids {
        let _ = root.execute(format!("KILL CONNECTION {id}").as_str()).await;
    }
    produce(&topics.transactions, &second).await;
    let text =
        wait_for_metric(app.port, "processor_batch_retries_total{stage=\"db_write\"}", 2.0, Duration::from_secs(30))
            .await;
    assert!(metric(&text, "processor_batch_retries_total{stage=\"db_write\"}") >= 2.0, "no retries seen:\n{text}");
    let published_while_down = metric(&text, "processor_results_published_total");
    assert_eq!(published_while_down, 500.0, "nothing published while the database is down");
    let ready = tokio::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://127.0.0.1:{}/readyz", app.port)])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ready.stdout), "503", "not ready while the database is down");

    // Up again: it resumes by itself.
    for host in ["%", "localhost", "127.0.0.1"] {
        root.execute(format!("ALTER USER '{user}'@'{host}' ACCOUNT UNLOCK").as_str()).await.unwrap();
    }
    let all: Vec<_> = first.iter().chain(&second).map(|m| m.id.clone()).collect();
    let collected = collect_ids(&topics.results, &all, Duration::from_secs(60)).await;
    app.stop().await;

    assert_eq!(collected.results().len(), 1000);
    let repo = transaction_store::open(&url).await.unwrap();
    assert_eq!(repo.count().await.unwrap(), 1000);
    for host in ["%", "localhost", "127.0.0.1"] {
        root.execute(format!("DROP USER '{user}'@'{host}'").as_str()).await.unwrap();
    }
    mysql::drop_scratch_database(&url).await.unwrap();
}

/// How a test takes the broker away and brings it back.
enum Outage {
    /// The broker keeps running but its clients are cut off (a partition,
    /// a broker restart as the clients see it): the default memory broker.
    Link { link: FlakyLink, _broker: PrivateBroker },
    /// The broker process is killed and restarted: the durable broker.
    Process(PrivateBroker),
}

impl Outage {
    fn brokers(&self) -> String {
        match self {
            Outage::Link { link, .. } => link.address(),
            Outage::Process(broker) => broker.address(),
        }
    }

    async fn down(&mut self) {
        match self {
            Outage::Link { link, .. } => link.cut(),
            Outage::Process(broker) => broker.kill().await,
        }
    }

    async fn up(&mut self) {
        match self {
            Outage::Link { link, .. } => link.heal(),
            Outage::Process(broker) => broker.restart().await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_mid_run_is_retried_and_loses_nothing() {
    let link_port = free_port();
    let broker = PrivateBroker::start_advertising(free_port(), link_port).await;
    let link = FlakyLink::start(link_port, broker.address()).await;
    broker_outage_mid_run(Outage::Link { link, _broker: broker }).await;
}

/// The same with the broker process killed and restarted, which only a
/// broker that keeps its data can survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the durable broker: scripts/test-durable"]
async fn durable_broker_killed_mid_run_is_retried_and_loses_nothing() {
    let broker = PrivateBroker::start_durable().await.expect("TANSU_DURABLE names the durable tansu");
    broker_outage_mid_run(Outage::Process(broker)).await;
}

async fn broker_outage_mid_run(mut outage: Outage) {
    let brokers = outage.brokers();
    let topics = create_topics_at(&brokers, 2).await;
    let prefix = unique("bdown");
    let messages: Vec<_> = (0..3000).map(|i| approvable(&format!("{prefix}-{i}"))).collect();
    produce_at(&brokers, &topics.transactions, &messages).await;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let mut config = config(&topics, &url);
    config.kafka_brokers = brokers.clone();
    config.batch_size = 50;
    // Fail deliveries fast so the produce stage retries within the test.
    config.kafka_options = vec!["message.timeout.ms=2000".into()];
    let app = spawn(config).await;
    let repo = transaction_store::open(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while repo.count().await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "processor made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    outage.down().await;
    let stored_at_kill = repo.count().await.unwrap();
    assert!(stored_at_kill < 3000, "the broker went away after the run: nothing was tested");
    // Down for a while: deliveries time out, batches are retried, offsets held.
    let text =
        wait_for_metric(app.port, "processor_batch_retries_total{stage=\"produce\"}", 1.0, Duration::from_secs(30))
            .await;
    assert!(metric(&text, "processor_batch_retries_total{stage=\"produce\"}") >= 1.0, "no produce retries:\n{text}");
    assert!(metric(&text, "processor_results_published_total") < 3000.0, "all published while the broker was down?");

    outage.up().await;
    let ids: Vec<_> = messages.iter().map(|m| m.id.clone()).collect();
    let collected = collect_ids_at(&brokers, &topics.results, &ids, Duration::from_secs(120)).await;
    app.stop().await;
    outage.down().await;

    assert_eq!(collected.results().len(), 3000, "every id has a result");
    assert_eq!(repo.count().await.unwrap(), 3000, "every id stored once");
}
