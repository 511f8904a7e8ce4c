//! Rotating the card keyring while transactions flow: the API's keyring
//! file changes under it, new messages are sealed with the new key, the
//! processor (holding both keys) decides every one, and nothing is lost.

mod support;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_card_key_while_transactions_flow_loses_nothing() {
    let k1 = format!("k1:{}", STANDARD.encode([1u8; 32]));
    let k2 = format!("k2:{}", STANDARD.encode([2u8; 32]));
    let (mut config, dir) = sqlite_config().await;
    let key_file = dir.path().join("card-keys");
    std::fs::write(&key_file, &k1).unwrap();
    // The file alone (the variable would win over it).
    config.card_encryption_keys = None;
    config.card_encryption_keys_file = Some(key_file.clone());
    let (database_url, topic) = (config.database_url.clone(), config.transactions_topic.clone());
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("merchant-1").await;
    let extras = ProcessorExtras { card_keys: Some(format!("{k1};{k2}")), ..Default::default() };
    let processor = spawn_processor_with(&brokers(), &database_url, &topic, extras).await;

    // Transactions flow; after 20 the key file is rotated (k2 first, k1
    // kept); they go on past the 10 s reload interval.
    let mut ids = Vec::new();
    let mut rotated: Option<Instant> = None;
    while rotated.is_none_or(|at| at.elapsed() < Duration::from_secs(13)) {
        let r = app.post(&m, "/v1/transactions", &approvable()).await;
        assert_eq!(r.status(), 202, "accepted while the key rotates");
        let body: serde_json::Value = r.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
        if ids.len() == 20 {
            std::fs::write(&key_file, format!("{k2}\n{k1}\n")).unwrap();
            rotated = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }

    let messages = testkit::consume(&topic, Duration::from_secs(30), |got| got.len() >= ids.len()).await;
    assert_eq!(messages.len(), ids.len());
    let key_of = |m: &rdkafka::message::OwnedMessage| {
        let p: serde_json::Value = serde_json::from_slice(rdkafka::Message::payload(m).unwrap()).unwrap();
        let number = p["credit_card_number"].as_str().unwrap().to_owned();
        number.split(':').nth(2).unwrap().to_owned()
    };
    let k1_count = messages.iter().filter(|m| key_of(m) == "k1").count();
    let k2_count = messages.iter().filter(|m| key_of(m) == "k2").count();
    assert_eq!(k1_count + k2_count, ids.len(), "every message sealed with k1 or k2");
    assert!(k1_count >= 20, "sealed with k1 before the rotation: {k1_count}");
    assert!(k2_count > 0, "sealed with k2 after the reload: {k2_count} of {}", ids.len());

    for id in &ids {
        let t = wait_decided(&app, &m, id).await;
        assert_eq!(t["status"], "approved", "{t}");
    }
    processor.stop().await;
    app.stop().await;
}
