//! The WebSocket stream against the real broker: counters, rows, the
//! per-merchant isolation, and the bound on frames per second.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use transaction_store::AccountStatus;

const CVV: &str = "invalid credit card cvv";
const LIMIT: &str = "you dont have limit for this transaction";

fn reason_count(frame: &serde_json::Value, label: &str) -> u64 {
    frame["rejections"].as_array().unwrap().iter().find(|r| r["reason"] == label).unwrap()["count"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_carry_counters_and_latest_rows_per_view() {
    let topic = create_topic(1).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("accounts.db").display());
    create_accounts(
        &db,
        &[("shop-a", "secret-a-123", AccountStatus::Active), ("shop-b", "secret-b-123", AccountStatus::Active)],
    )
    .await;
    let app = spawn(config(&topic, &db)).await;
    let producer = producer();

    let mut operator = connect(app.port, &operator_token(app.port).await).await.unwrap();
    let (status, body) =
        login(app.port, json!({"kind": "merchant", "account_id": "shop-a", "secret": "secret-a-123"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["view"], "merchant");
    assert_eq!(body["merchant"], "shop-a");
    let mut merchant = connect(app.port, body["token"].as_str().unwrap()).await.unwrap();

    let base = warm_up(&producer, &topic, &mut operator, "shop-a").await;
    // The merchant's channel has seen the same markers by now, all for shop-a.
    let merchant_base =
        frame_until(&mut merchant, Duration::from_secs(10), |f| f["totals"]["count"].as_u64() == Some(base)).await;
    assert_eq!(merchant_base["view"], "merchant");
    let base_rejected = operator_rejected(&mut operator).await;

    // 30 results: for shop-a 10 approved + 5 cvv; for shop-b 10 approved + 5 over limit.
    let prefix = unique("r");
    let mut batch = Vec::new();
    for i in 0..15 {
        let reason = if i % 3 == 2 { CVV } else { "" };
        batch.push(result(&format!("{prefix}-a{i:02}"), "shop-a", 1000 + i, reason));
        let reason = if i % 3 == 2 { LIMIT } else { "" };
        batch.push(result(&format!("{prefix}-b{i:02}"), "shop-b", 2000 + i, reason));
    }
    produce(&producer, &topic, &batch).await;
    let last_id = batch.last().unwrap().id.clone();

    let f = frame_until(&mut operator, Duration::from_secs(20), |f| recent_ids(f).first() == Some(&last_id)).await;
    assert_eq!(f["view"], "operator");
    assert_eq!(f["totals"]["count"].as_u64(), Some(base + 30));
    assert_eq!(f["totals"]["rejected"].as_u64(), Some(base_rejected + 10));
    assert_eq!(reason_count(&f, "invalid_cvv"), 5);
    assert_eq!(reason_count(&f, "over_limit"), 5);
    // Newest first, exactly in production order.
    let expected: Vec<String> = batch.iter().rev().map(|r| r.id.clone()).collect();
    assert_eq!(recent_ids(&f)[..30], expected[..]);
    let top = &f["recent"][0];
    assert_eq!(top["merchant"], "shop-b");
    assert_eq!(top["amount"], "20.14");
    assert_eq!(top["amount_cents"], 2014);
    assert_eq!(top["status"], "rejected");
    assert_eq!(top["reason"], "over_limit");
    assert_eq!(top["card_masked"], "411111******1111");
    assert_eq!(top["card_brand"], "visa");
    assert_eq!(f["recent"][2]["status"], "approved");
    assert!(f["recent"][2]["reason"].is_null());
    let series_total: u64 = ["approved", "rejected"]
        .iter()
        .flat_map(|k| f["series"][k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(series_total, base + 30, "every result is in the last five minutes");
    let top_merchants: Vec<&str> =
        f["top_merchants"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(top_merchants.contains(&"shop-b"), "{top_merchants:?}");
    assert!(!f.to_string().contains("4111111111111111"), "a full card number reached a client");

    // shop-a sees its 15 and nothing of shop-b.
    let a_last = format!("{prefix}-a14");
    let m = frame_until(&mut merchant, Duration::from_secs(20), |f| recent_ids(f).first() == Some(&a_last)).await;
    assert_eq!(m["merchant"], "shop-a");
    assert_eq!(m["totals"]["count"].as_u64(), Some(base + 15));
    assert_eq!(m["totals"]["rejected"].as_u64(), Some(5));
    assert_eq!(reason_count(&m, "invalid_cvv"), 5);
    assert_eq!(reason_count(&m, "over_limit"), 0);
    assert!(m.get("top_merchants").is_none(), "merchants do not see other merchants");
    let ids = recent_ids(&m);
    let b_prefix = format!("{prefix}-b");
    assert!(ids.iter().all(|id| !id.starts_with(&b_prefix)), "{ids:?}");
    assert!(m["recent"].as_array().unwrap().iter().all(|r| r["merchant"] == "shop-a"));
    assert!(!m.to_string().contains("shop-b"));

    assert_eq!(metric(app.port, "dashboard_ws_clients").await, 2.0);
    assert!(metric(app.port, "dashboard_results_consumed_total").await >= (base + 30) as f64);
    assert!(metric(app.port, "dashboard_ws_frames_sent_total").await >= 2.0);
    drop(operator);
    drop(merchant);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(app.port, "dashboard_ws_clients").await != 0.0 {
        assert!(Instant::now() < deadline, "closed clients are not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

async fn operator_rejected(ws: &mut Ws) -> u64 {
    next_frame(ws, Duration::from_secs(5)).await.expect("refresh frame")["totals"]["rejected"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_thousands_yields_at_most_ten_frames_per_second() {
    const N: usize = 40_000;
    // Spread over a few seconds so the bound is measured over many ticks.
    const CHUNK: usize = 1_000;
    let topic = create_topic(1).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("accounts.db").display());
    let app = spawn(config(&topic, &db)).await;
    let producer = producer();
    let mut ws = connect(app.port, &operator_token(app.port).await).await.unwrap();
    let base = warm_up(&producer, &topic, &mut ws, "shop-burst").await;

    let prefix = unique("burst");
    let payloads: Vec<_> = (0..N)
        .map(|i| {
            let r =
                result(&format!("{prefix}-{i}"), &format!("shop-{}", i % 50), 500, if i % 4 == 0 { CVV } else { "" });
            (Some(r.id.clone()), Some(r.to_json().expect("result json")))
        })
        .collect();
    let burst = tokio::spawn({
        let topic = topic.clone();
        async move {
            for chunk in payloads.chunks(CHUNK) {
                testkit::produce(&producer, &topic, chunk).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });

    // Count every frame from the start of the burst until all are counted.
    let started = Instant::now();
    let mut frames = 0u64;
    let mut seqs = Vec::new();
    let last = loop {
        let f = next_frame(&mut ws, Duration::from_secs(60)).await.expect("frames keep coming during the burst");
        frames += 1;
        seqs.push(f["seq"].as_u64().unwrap());
        if f["totals"]["count"].as_u64() == Some(base + N as u64) {
            break f;
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    burst.await.unwrap();

    // Ten per second, plus one for the frame in flight at each end.
    let bound = (elapsed * 10.0).ceil() as u64 + 2;
    eprintln!("{N} results -> {frames} frames in {elapsed:.2} s ({:.1}/s)", frames as f64 / elapsed);
    assert!(frames <= bound, "{frames} frames in {elapsed:.2} s: more than ten per second");
    assert!(frames as usize <= N / 100, "frames are not per result");
    // 40 pauses of 50 ms alone span two seconds of ticks.
    assert!(frames >= 5, "the counters moved during the burst, not only at its end");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "sequence numbers increase");
    assert_eq!(reason_count(&last, "invalid_cvv"), (N / 4) as u64);
    assert_eq!(last["recent"].as_array().unwrap().len(), 50, "the table is bounded");
    assert_eq!(recent_ids(&last)[0], format!("{prefix}-{}", N - 1));
    assert!(last["merchants_tracked"].as_u64().unwrap() >= 50);
    app.stop().await;
}
