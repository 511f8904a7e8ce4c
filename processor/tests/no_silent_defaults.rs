//! The processor refuses to start without a real CARD_HASH_KEY unless it is
//! in development mode, refuses delivery-critical KAFKA_OPTIONS, and never
//! prints secrets in --help.

mod support;

use processor::Application;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_keys_and_delivery_critical_options_are_refused() {
    // The only test of this binary that builds the processor: nothing else
    // reads the development flag meanwhile.
    std::env::remove_var(service_runtime::dev_keys::DEVELOPMENT_ENV);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let topics = support::create_topics_at(&support::brokers(), 1).await;
    let base = support::config(&topics, &url);
    let build = |c| async move { Application::build(c, &CancellationToken::new()).await.err().map(|e| e.to_string()) };

    let missing = processor::Config { card_hash_key: None, ..base.clone() };
    assert!(build(missing.clone()).await.is_some_and(|e| e.contains("CARD_HASH_KEY")));
    let published =
        processor::Config { card_hash_key: Some("dev-only-card-hash-key-change-me".into()), ..base.clone() };
    assert!(build(published).await.is_some_and(|e| e.contains("CARD_HASH_KEY")));
    for option in ["enable.auto.commit=true", "enable.auto.offset.store=true", "acks=1"] {
        let c = processor::Config { kafka_options: vec![option.into()], ..base.clone() };
        assert!(build(c).await.is_some_and(|e| e.contains("may not set")), "{option}");
    }
    assert_eq!(build(base).await, None);
    std::env::set_var(service_runtime::dev_keys::DEVELOPMENT_ENV, "1");
    assert_eq!(build(missing).await, None, "development mode falls back to the development key");
    std::env::remove_var(service_runtime::dev_keys::DEVELOPMENT_ENV);
}

#[test]
fn help_never_shows_secrets() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_processor"))
        .arg("--help")
        .env("KAFKA_OPTIONS", "sasl.password=kafka-hunter2")
        .env("DATABASE_URL", "mysql://gateway:db-hunter2@db:3306/gateway")
        .env("CARD_HASH_KEY", "card-hunter2-card-hunter2")
        .env("CARD_ENCRYPTION_KEYS", testkit::TEST_CARD_KEYRING)
        .env("CVV_ENCRYPTION_KEYS", testkit::TEST_CVV_KEYRING)
        .output()
        .expect("processor --help runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("KAFKA_OPTIONS") && text.contains("DATABASE_URL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
