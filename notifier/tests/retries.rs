//! Retries with time controlled by the test (a manual clock): a receiver
//! answering 500, one timing out — each attempt happens when the schedule
//! says, not before, and everything is delivered once they recover. Also:
//! automatic disabling after a sustained failure, redelivery of a delivery
//! whose schedule is used up, and both signatures during a rotation.

mod support;

use std::sync::Arc;
use std::time::Duration;

use notifier::clock::{Clock, ManualClock};
use notifier::event::{EVENT_APPROVED, EVENT_REJECTED};
use support::*;
use time::OffsetDateTime;
use transaction_store::webhooks::{
    Delivery, DeliveryStatus, EndpointStatus, WebhookEndpoint, DISABLED_FAILING, OUTCOME_HTTP_ERROR, OUTCOME_SUCCESS,
    OUTCOME_TIMEOUT,
};
use transaction_store::WebhookRepository;

const ALL: &[&str] = &[EVENT_APPROVED, EVENT_REJECTED];
/// Several poll intervals (50 ms) of the notifier: long enough for an
/// attempt that was due to have started.
const QUIET: Duration = Duration::from_millis(700);

async fn deliveries(repo: &dyn WebhookRepository, e: &WebhookEndpoint) -> Vec<Delivery> {
    repo.list_deliveries(&e.account_id, &e.id, None, 1000).await.unwrap()
}

/// Waits until every delivery of `e` (there are `n`) satisfies `check`.
async fn wait_for(
    repo: &dyn WebhookRepository,
    e: &WebhookEndpoint,
    n: usize,
    what: &str,
    check: impl Fn(&Delivery) -> bool,
) -> Vec<Delivery> {
    for _ in 0..400 {
        let ds = deliveries(repo, e).await;
        if ds.len() == n && ds.iter().all(&check) {
            return ds;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {:#?}", deliveries(repo, e).await);
}

/// `next_attempt_at - last attempt's start` lies within the jittered delay.
async fn assert_next_within(repo: &dyn WebhookRepository, e: &WebhookEndpoint, ds: &[Delivery], base: Duration) {
    for d in ds {
        let (_, attempts) = repo.find_delivery(&e.account_id, &e.id, &d.event_id).await.unwrap().unwrap();
        let last = attempts.last().unwrap();
        let wait = d.next_attempt_at - last.started_at;
        let (lo, hi) = (base.mul_f64(0.9), base.mul_f64(1.1));
        assert!(wait >= lo && wait <= hi, "retry of {} after {wait} is outside {base:?} ± 10 %", d.event_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_schedule_then_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let topic = unique("res");
    testkit::create_topics(&[(&topic, 2)]).await;
    let repo = transaction_store::open_webhooks(&url).await.unwrap();
    let (flaky_m, slow_m) = (unique("flaky"), unique("slow"));
    // 500 three times, then 200.
    let flaky = Receiver::with(Arc::new(|n| (if n <= 3 { 500 } else { 200 }, Duration::ZERO))).await;
    // Slower than the 300 ms attempt timeout twice, then at once.
    let slow =
        Receiver::with(Arc::new(|n| (200, if n <= 2 { Duration::from_millis(1500) } else { Duration::ZERO }))).await;
    let ef = endpoint(repo.as_ref(), &flaky_m, &flaky.url, ALL).await;
    let es = endpoint(repo.as_ref(), &slow_m, &slow.url, ALL).await;
    flaky.add_secret(&ef.secret);
    slow.add_secret(&es.secret);

    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let t0 = clock.now();
    let mut config = config(&url, &topic);
    config.attempt_timeout_ms = 300;
    let running = spawn(config, Arc::new(clock.clone())).await;
    let results: Vec<_> =
        (0..20).map(|i| result(&unique("tx"), if i % 2 == 0 { &flaky_m } else { &slow_m }, i)).collect();
    produce_results(&topic, &results).await;

    // Attempt 1, at once: 500 / timeout; the retry is due 5 s (±10 %) later.
    let df = wait_for(repo.as_ref(), &ef, 10, "first attempts (500)", |d| {
        d.attempts == 1 && d.last_status_code == Some(500)
    })
    .await;
    let ds = wait_for(repo.as_ref(), &es, 10, "first attempts (timeout)", |d| d.attempts == 1).await;
    assert_next_within(repo.as_ref(), &ef, &df, Duration::from_secs(5)).await;
    assert_next_within(repo.as_ref(), &es, &ds, Duration::from_secs(5)).await;
    for d in df.iter().chain(&ds) {
        assert_eq!(d.status, DeliveryStatus::Pending);
    }

    // 4 s later nothing is due yet: no attempt.
    clock.advance(Duration::from_secs(4));
    tokio::time::sleep(QUIET).await;
    assert!(deliveries(repo.as_ref(), &ef).await.iter().all(|d| d.attempts == 1), "no retry before 4.5 s");
    assert!(deliveries(repo.as_ref(), &es).await.iter().all(|d| d.attempts == 1), "no retry before 4.5 s");
    assert_eq!(flaky.received().len(), 10);

    // Past 5.5 s: attempt 2, failing again; the next is 5 min away.
    clock.advance(Duration::from_secs(2));
    let df = wait_for(repo.as_ref(), &ef, 10, "second attempts", |d| d.attempts == 2).await;
    let ds = wait_for(repo.as_ref(), &es, 10, "second attempts", |d| d.attempts == 2).await;
    assert_next_within(repo.as_ref(), &ef, &df, Duration::from_secs(300)).await;
    assert_next_within(repo.as_ref(), &es, &ds, Duration::from_secs(300)).await;
    clock.advance(Duration::from_secs(260));
    tokio::time::sleep(QUIET).await;
    assert!(deliveries(repo.as_ref(), &ef).await.iter().all(|d| d.attempts == 2), "no retry before 4.5 min");

    // Past 5.5 min: the slow receiver has recovered (delivered at attempt 3);
    // the flaky one fails a third time, next in 30 min.
    clock.advance(Duration::from_secs(71));
    wait_for(repo.as_ref(), &es, 10, "slow endpoint delivered", |d| {
        d.status == DeliveryStatus::Delivered && d.attempts == 3
    })
    .await;
    let df = wait_for(repo.as_ref(), &ef, 10, "third attempts", |d| d.attempts == 3).await;
    assert_next_within(repo.as_ref(), &ef, &df, Duration::from_secs(1800)).await;

    clock.advance(Duration::from_secs(33 * 60 + 1));
    wait_for(repo.as_ref(), &ef, 10, "flaky endpoint delivered", |d| {
        d.status == DeliveryStatus::Delivered && d.attempts == 4
    })
    .await;

    // The delivery log shows each attempt: status codes, outcomes, times.
    for d in deliveries(repo.as_ref(), &ef).await {
        let (_, attempts) = repo.find_delivery(&ef.account_id, &ef.id, &d.event_id).await.unwrap().unwrap();
        let codes: Vec<_> = attempts.iter().map(|a| a.status_code).collect();
        assert_eq!(codes, [Some(500), Some(500), Some(500), Some(200)]);
        let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(outcomes, [OUTCOME_HTTP_ERROR, OUTCOME_HTTP_ERROR, OUTCOME_HTTP_ERROR, OUTCOME_SUCCESS]);
        assert_eq!(attempts[0].started_at, transaction_store::truncate_to_micros(t0), "the first attempt is immediate");
        assert!(attempts.windows(2).all(|w| w[0].started_at < w[1].started_at));
    }
    for d in deliveries(repo.as_ref(), &es).await {
        let (_, attempts) = repo.find_delivery(&es.account_id, &es.id, &d.event_id).await.unwrap().unwrap();
        let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(outcomes, [OUTCOME_TIMEOUT, OUTCOME_TIMEOUT, OUTCOME_SUCCESS]);
        assert!(attempts[..2].iter().all(|a| a.status_code.is_none() && a.duration_ms < 1500));
    }
    // The receiver saw exactly the scheduled attempts, each signed, with the
    // same webhook-id every time.
    let received = flaky.received();
    assert_eq!(received.len(), 40);
    assert!(received.iter().all(|r| r.verified_by == vec![0]));
    assert_eq!(flaky.delivered_ids().len(), 10);
    running.stop().await;
    flaky.stop();
    slow.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_the_whole_period_is_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let topic = unique("res");
    testkit::create_topics(&[(&topic, 1)]).await;
    let repo = transaction_store::open_webhooks(&url).await.unwrap();
    let receiver = Receiver::with(Arc::new(|_| (503, Duration::ZERO))).await;
    let m1 = unique("down");
    let down = endpoint(repo.as_ref(), &m1, &receiver.url, ALL).await;
    receiver.add_secret(&down.secret);
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let mut config = config(&url, &topic);
    config.retry_schedule = "10m,10m,10m,10m,10m,10m".into();
    config.retry_jitter = 0.0;
    config.disable_after_secs = 30 * 60;
    let running = spawn(config, Arc::new(clock.clone())).await;
    produce_results(&topic, &[result(&unique("tx"), &m1, 0)]).await;
    wait_for(repo.as_ref(), &down, 1, "first attempt", |d| d.attempts == 1).await;
    for n in 2..=4 {
        clock.advance(Duration::from_secs(600));
        wait_for(repo.as_ref(), &down, 1, "next attempt", |d| d.attempts == n).await;
    }
    // Failing since t0, 30 min ago at the fourth attempt: disabled.
    let e = repo.find_endpoint(&down.account_id, &down.id).await.unwrap().unwrap();
    assert_eq!(e.status, EndpointStatus::Disabled);
    assert_eq!(e.disabled_reason.as_deref(), Some(DISABLED_FAILING));
    let failing = repo.failing_endpoints().await.unwrap();
    assert!(failing.iter().any(|f| f.id == down.id), "operators see it");
    // A disabled endpoint gets no more attempts.
    clock.advance(Duration::from_secs(3600));
    tokio::time::sleep(QUIET).await;
    assert_eq!(deliveries(repo.as_ref(), &down).await[0].attempts, 4);

    running.stop().await;
    receiver.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_can_be_redelivered() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let topic = unique("res");
    testkit::create_topics(&[(&topic, 1)]).await;
    let repo = transaction_store::open_webhooks(&url).await.unwrap();
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&healthy);
    let receiver = Receiver::with(Arc::new(move |_| {
        (if flag.load(std::sync::atomic::Ordering::SeqCst) { 200 } else { 503 }, Duration::ZERO)
    }))
    .await;
    let merchant = unique("gives-up");
    let gives_up = endpoint(repo.as_ref(), &merchant, &receiver.url, ALL).await;
    receiver.add_secret(&gives_up.secret);
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let mut config = config(&url, &topic);
    config.retry_schedule = "1m,1m".into();
    config.retry_jitter = 0.0;
    let running = spawn(config, Arc::new(clock.clone())).await;
    // Three attempts in all, then the delivery is failed.
    produce_results(&topic, &[result(&unique("tx"), &merchant, 0)]).await;
    wait_for(repo.as_ref(), &gives_up, 1, "first attempt", |d| d.attempts == 1).await;
    for n in 2..=3 {
        clock.advance(Duration::from_secs(60));
        wait_for(repo.as_ref(), &gives_up, 1, "next attempt", |d| d.attempts == n).await;
    }
    let d = wait_for(repo.as_ref(), &gives_up, 1, "failed", |d| d.status == DeliveryStatus::Failed).await;
    clock.advance(Duration::from_secs(3600));
    tokio::time::sleep(QUIET).await;
    assert_eq!(deliveries(repo.as_ref(), &gives_up).await[0].attempts, 3, "no attempt after the schedule");
    // The merchant's redelivery makes one more attempt at once.
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(repo.redeliver(&gives_up.account_id, &gives_up.id, &d[0].event_id, clock.now()).await.unwrap());
    wait_for(repo.as_ref(), &gives_up, 1, "redelivered", |d| d.status == DeliveryStatus::Delivered && d.attempts == 4)
        .await;
    let ids: Vec<_> = receiver.received().iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.iter().all(|id| *id == d[0].event_id), "the same webhook-id on every attempt and the redelivery");
    running.stop().await;
    receiver.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_secrets_sign_during_a_rotation_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let topic = unique("res");
    testkit::create_topics(&[(&topic, 1)]).await;
    let repo = transaction_store::open_webhooks(&url).await.unwrap();
    let receiver = Receiver::start().await;
    let merchant = unique("rotating");
    let e = endpoint(repo.as_ref(), &merchant, &receiver.url, ALL).await;
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let new_secret = notifier::signing::generate_secret();
    let overlap_end = clock.now() + Duration::from_secs(3600);
    repo.rotate_endpoint_secret(&e.account_id, &e.id, &new_secret, overlap_end, clock.now()).await.unwrap().unwrap();
    receiver.add_secret(&e.secret); // 0: the old secret
    receiver.add_secret(&new_secret); // 1: the new one
    let running = spawn(config(&url, &topic), Arc::new(clock.clone())).await;
    produce_results(&topic, &[result(&unique("tx"), &merchant, 0)]).await;
    assert!(wait_until(Duration::from_secs(20), || receiver.received().len() == 1).await);
    assert_eq!(receiver.received()[0].verified_by, vec![0, 1], "old and new secret both verify");
    // After the overlap only the new secret signs.
    clock.advance(Duration::from_secs(3601));
    produce_results(&topic, &[result(&unique("tx"), &merchant, 1)]).await;
    assert!(wait_until(Duration::from_secs(20), || receiver.received().len() == 2).await);
    let second = &receiver.received()[1];
    assert_eq!(second.verified_by, vec![1], "only the new secret after the overlap");
    assert_eq!(second.signature.split(' ').count(), 1);
    running.stop().await;
    receiver.stop();
}
