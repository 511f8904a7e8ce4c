//! Open-loop load at a steady rate, and the latency percentiles the
//! latency benches report.

use std::time::{Duration, Instant};

/// Calls `start(i)` for i in 1..=`total`, `rate` times a second, without
/// waiting for what it starts (open loop: a slow answer does not delay the
/// next request, so no coordinated omission). Behind schedule, it catches
/// up at once.
pub async fn at_steady_rate(rate: u32, total: u64, mut start: impl FnMut(u64)) {
    let mut interval = tokio::time::interval(Duration::from_millis(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        interval.tick().await;
        // Due by now at this rate.
        let due = (started.elapsed().as_secs_f64() * f64::from(rate)).ceil() as u64;
        while sent < due.min(total) {
            sent += 1;
            start(sent);
        }
    }
}

/// p50, p99 and max of `latencies`, in milliseconds (NaN when empty).
pub fn p50_p99_max_ms(latencies: &mut [Duration]) -> [f64; 3] {
    if latencies.is_empty() {
        return [f64::NAN; 3];
    }
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    [at(0.5), at(0.99), at(1.0)]
}
