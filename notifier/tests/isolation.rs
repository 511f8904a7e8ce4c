//! A slow merchant does not delay another: the slow endpoint only ever
//! holds its own `ENDPOINT_CONCURRENCY` slots, so the fast merchant's
//! decisions are all delivered while the slow one's are still trickling.

mod support;

use std::sync::Arc;
use std::time::Duration;

use notifier::clock::SystemClock;
use notifier::event::{event_id, EVENT_APPROVED, EVENT_REJECTED};
use support::*;

const FAST: usize = 300;
const SLOW: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_does_not_delay_another_merchant() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let topic = unique("res");
    testkit::create_topics(&[(&topic, 2)]).await;
    let repo = transaction_store::open_webhooks(&url).await.unwrap();
    let (slow_m, fast_m) = (unique("slow"), unique("fast"));
    // Every answer takes a second (within the 5 s attempt timeout).
    let slow = Receiver::with(Arc::new(|_| (200, Duration::from_secs(1)))).await;
    let fast = Receiver::start().await;
    let es = endpoint(repo.as_ref(), &slow_m, &slow.url, &[EVENT_APPROVED, EVENT_REJECTED]).await;
    let ef = endpoint(repo.as_ref(), &fast_m, &fast.url, &[EVENT_APPROVED, EVENT_REJECTED]).await;
    slow.add_secret(&es.secret);
    fast.add_secret(&ef.secret);

    let mut config = config(&url, &topic);
    config.endpoint_concurrency = 2;
    let running = spawn(config, Arc::new(SystemClock)).await;
    // The slow merchant's decisions first, then the fast one's, interleaved
    // on the same partitions.
    let mut results: Vec<_> = (0..SLOW).map(|i| result(&unique("slow-tx"), &slow_m, i)).collect();
    results.extend((0..FAST).map(|i| result(&unique("fast-tx"), &fast_m, i)));
    produce_results(&topic, &results).await;

    let fast_ids: Vec<_> = results[SLOW..].iter().map(|r| event_id(&r.id)).collect();
    assert!(
        wait_until(Duration::from_secs(30), || {
            let got = fast.delivered_ids();
            fast_ids.iter().all(|id| got.contains(id))
        })
        .await,
        "the fast merchant got {}/{FAST}",
        fast.delivered_ids().len()
    );
    // With two slots at one second each, the slow merchant cannot be done.
    let slow_done = slow.received().len();
    assert!(slow_done < SLOW, "slow endpoint already had {slow_done} when the fast one was complete");
    // ...and it never had more than its two slots.
    assert!(
        wait_until(Duration::from_secs(30), || slow.delivered_ids().len() == SLOW).await,
        "the slow merchant gets everything too, in time"
    );
    assert!(slow.received().iter().all(|r| r.verified_by == vec![0]));
    assert!(fast.received().iter().all(|r| r.verified_by == vec![0]));
    running.stop().await;
    slow.stop();
    fast.stop();
}
