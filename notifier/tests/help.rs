//! `--help` shows which variables are set, never their values: the
//! database URL and Kafka options carry passwords.

#[test]
fn help_never_shows_secrets() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_notifier"))
        .arg("--help")
        .env("KAFKA_OPTIONS", "sasl.password=kafka-hunter2")
        .env("DATABASE_URL", "mysql://notifier:db-hunter2@db:3306/gateway")
        .output()
        .expect("notifier --help runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("KAFKA_OPTIONS") && text.contains("DATABASE_URL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
