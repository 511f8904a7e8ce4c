//! Every decision of a few thousand transactions reaches a real HTTP
//! receiver on loopback, signed: each event id at least once, every
//! signature verifies, the body holds the decision and the masked card
//! only, and a tampered body or an old timestamp fails verification.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use notifier::clock::SystemClock;
use notifier::event::{event_id, EVENT_APPROVED, EVENT_REJECTED};
use support::*;
use transaction_model::Status;
use transaction_store::webhooks::DeliveryStatus;

const N: usize = 3000;

async fn every_decision_arrives_signed(database_url: &str) {
    let topic = unique("res");
    testkit::create_topics(&[(&topic, 3)]).await;
    let repo = transaction_store::open_webhooks(database_url).await.unwrap();
    let (a, b) = (unique("shop-a"), unique("shop-b"));
    let silent = unique("shop-without-endpoint");
    let ra = Receiver::start().await;
    let rb = Receiver::start().await;
    let ea = endpoint(repo.as_ref(), &a, &ra.url, &[EVENT_APPROVED, EVENT_REJECTED]).await;
    // Merchant b subscribes to rejections only.
    let eb = endpoint(repo.as_ref(), &b, &rb.url, &[EVENT_REJECTED]).await;
    ra.add_secret(&ea.secret);
    rb.add_secret(&eb.secret);

    let prefix = unique("tx");
    let merchants = [&a, &b, &silent];
    let results: Vec<_> = (0..N).map(|i| result(&format!("{prefix}-{i}"), merchants[i % 3], i / 3)).collect();
    let mut expected_a = HashMap::new();
    let mut expected_b = HashMap::new();
    for r in &results {
        let id = event_id(&r.id);
        match r.account_id.as_deref() {
            Some(m) if m == a.as_str() => {
                expected_a.insert(id, r.clone());
            }
            Some(m) if m == b.as_str() && r.status == Status::Rejected => {
                expected_b.insert(id, r.clone());
            }
            _ => {}
        }
    }
    assert!(expected_a.len() == N / 3 && !expected_b.is_empty());

    let running = spawn(config(database_url, &topic), Arc::new(SystemClock)).await;
    produce_results(&topic, &results).await;
    let all = wait_until(Duration::from_secs(90), || {
        let (da, db) = (ra.delivered_ids(), rb.delivered_ids());
        expected_a.keys().all(|id| da.contains(id)) && expected_b.keys().all(|id| db.contains(id))
    })
    .await;
    assert!(
        all,
        "not every decision arrived: a {}/{}, b {}/{}",
        ra.delivered_ids().len(),
        expected_a.len(),
        rb.delivered_ids().len(),
        expected_b.len()
    );

    for (receiver, expected, merchant) in [(&ra, &expected_a, &a), (&rb, &expected_b, &b)] {
        for r in receiver.received() {
            assert_eq!(r.verified_by, vec![0], "signature of {} verifies with the endpoint's secret", r.event_id);
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            let decision = expected.get(&r.event_id).unwrap_or_else(|| panic!("unexpected event {}", r.event_id));
            assert_eq!(body["data"]["id"], decision.id.as_str());
            assert_eq!(body["data"]["account_id"], merchant.as_str(), "a merchant gets only its own decisions");
            assert_eq!(body["data"]["status"], decision.status.as_str());
            assert_eq!(body["type"], if decision.status == Status::Approved { EVENT_APPROVED } else { EVENT_REJECTED });
            assert_eq!(body["data"]["card_masked"], "411111******1111");
            let text = String::from_utf8_lossy(&r.body);
            assert!(!text.contains("4111111111111111"), "no card number: {text}");
            let mut keys: Vec<_> = body["data"].as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "account_id",
                    "amount",
                    "amount_cents",
                    "card_brand",
                    "card_masked",
                    "created_at",
                    "error_message",
                    "id",
                    "processed_at",
                    "status"
                ],
                "the decision and the masked card only"
            );
            let ts: i64 = r.timestamp.parse().unwrap();
            assert!((time::OffsetDateTime::now_utc().unix_timestamp() - ts).abs() < 300, "fresh timestamp");
        }
    }
    // Merchant b received no approvals, the merchant without an endpoint nothing.
    assert!(rb.received().iter().all(|r| expected_b.contains_key(&r.event_id)));

    // What a receiver must refuse.
    let sample = ra.received().into_iter().next().unwrap();
    let secrets = vec![ea.secret.clone()];
    let now: i64 = sample.timestamp.parse().unwrap();
    assert_eq!(verify(&secrets, &sample, now), vec![0]);
    let mut tampered = sample.clone();
    tampered.body = String::from_utf8(sample.body.clone()).unwrap().replace("approved", "rejected").into_bytes();
    if tampered.body == sample.body {
        tampered.body = String::from_utf8(sample.body.clone()).unwrap().replace("rejected", "approved").into_bytes();
    }
    assert!(verify(&secrets, &tampered, now).is_empty(), "a tampered body fails");
    assert!(verify(&secrets, &sample, now + 301).is_empty(), "a timestamp older than 5 minutes fails");
    assert!(verify(std::slice::from_ref(&eb.secret), &sample, now).is_empty(), "another endpoint's secret fails");
    // The notifier's own verifier (documented for receivers) agrees.
    let check = |body: &[u8], at: i64| {
        notifier::signing::verify(
            &ea.secret,
            &sample.event_id,
            &sample.timestamp,
            &sample.signature,
            body,
            at,
            notifier::signing::TIMESTAMP_TOLERANCE,
        )
    };
    assert!(check(&sample.body, now).is_ok());
    assert!(check(&tampered.body, now).is_err());
    assert!(check(&sample.body, now + 301).is_err());

    // The outbox agrees: every delivery to a is delivered, with one attempt
    // per delivery on a receiver that never failed.
    let rows = repo.list_deliveries(&account(&a), &ea.id, None, 10_000).await.unwrap();
    assert_eq!(rows.len(), expected_a.len());
    assert!(rows.iter().all(|d| d.status == DeliveryStatus::Delivered && d.attempts >= 1 && d.delivered_at.is_some()));
    let metrics =
        reqwest::get(format!("http://127.0.0.1:{}/metrics", running.port)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("notifier_deliveries_completed_total{result=\"delivered\"}"), "{metrics}");
    running.stop().await;
    ra.stop();
    rb.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_arrives_signed_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    every_decision_arrives_signed(&sqlite_url(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_arrives_signed_on_mariadb() {
    let url = transaction_store::mysql::create_scratch_database(&mysql_server(), "notifier_delivery").await.unwrap();
    every_decision_arrives_signed(&url).await;
    transaction_store::mysql::drop_scratch_database(&url).await.unwrap();
}
