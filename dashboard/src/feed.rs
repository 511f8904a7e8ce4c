//! The one task that owns the aggregates: it folds each consumed result into
//! the board and, every tick, hands the changed views to the hub. One owner
//! means no lock on the per-result path.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer as _;
use rdkafka::Message;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use transaction_model::ResultMessage;

use crate::board::Board;
use crate::hub::Hub;
use crate::kafka::Consumer;
use crate::metrics::Metrics;

/// Frames are built at most this often: ten per second per view, whatever
/// the rate of results.
pub const TICK: Duration = Duration::from_millis(100);

pub struct Feed {
    pub consumer: Arc<Consumer>,
    pub board: Board,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl Feed {
    pub async fn run(mut self, topic: &str, shutdown: CancellationToken) -> Result<(), rdkafka::error::KafkaError> {
        self.consumer.subscribe(&[topic])?;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {
                    self.hub.publish(&self.board, now_ms());
                    self.metrics.merchants_tracked.set(self.board.merchant_count() as i64);
                }
                message = self.consumer.recv() => match message {
                    Ok(m) => {
                        self.metrics.results_consumed.inc();
                        match m.payload().map(serde_json::from_slice::<ResultMessage>) {
                            Some(Ok(result)) => self.board.record(&result, now_ms()),
                            // The payload is never logged: it may hold card data.
                            _ => self.metrics.results_invalid.inc(),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "results consumer error");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                },
            }
        }
    }
}
