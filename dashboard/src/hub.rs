//! Fan-out of snapshots to WebSocket clients through `watch` channels: one
//! for the operator view and one per merchant being watched. A channel holds
//! only the latest frame, so a slow client skips frames instead of queueing
//! them, and the service's memory does not depend on its clients' speed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::board::Board;
use crate::frame::{Frame, Snapshot};

/// A view is re-sent at least this often, unchanged or not, so the page's
/// chart keeps scrolling and its clock stays live.
pub const REFRESH_MS: i64 = 1000;

#[derive(Default, Clone, Copy)]
struct Published {
    seq: u64,
    version: u64,
    at_ms: i64,
}

impl Published {
    fn due(&self, version: u64, now_ms: i64) -> bool {
        self.seq == 0 || self.version != version || now_ms - self.at_ms >= REFRESH_MS
    }
}

struct Channel {
    tx: watch::Sender<Arc<Frame>>,
    published: Published,
}

impl Channel {
    fn new() -> Self {
        Channel { tx: watch::Sender::new(Arc::new(Frame::placeholder())), published: Published::default() }
    }
}

pub struct Hub {
    operator: Mutex<Channel>,
    merchants: Mutex<HashMap<String, Channel>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub { operator: Mutex::new(Channel::new()), merchants: Mutex::new(HashMap::new()) }
    }
}

impl Hub {
    pub fn subscribe_operator(&self) -> watch::Receiver<Arc<Frame>> {
        self.operator.lock().unwrap_or_else(PoisonError::into_inner).tx.subscribe()
    }

    pub fn subscribe_merchant(&self, merchant: &str) -> watch::Receiver<Arc<Frame>> {
        let mut map = self.merchants.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(merchant.to_owned()).or_insert_with(Channel::new).tx.subscribe()
    }

    /// Called on every tick: serialises each watched view that changed (or
    /// is due for a refresh) once, whatever the number of its clients.
    pub fn publish(&self, board: &Board, now_ms: i64) {
        {
            let mut op = self.operator.lock().unwrap_or_else(PoisonError::into_inner);
            let version = board.global().version();
            if op.tx.receiver_count() == 0 {
                // Nobody watching: drop the last frame so the next client
                // does not start from a stale one, and publish on its arrival.
                if op.tx.borrow().seq != 0 {
                    op.tx.send_replace(Arc::new(Frame::placeholder()));
                    op.published.at_ms = 0;
                }
            } else if op.published.due(version, now_ms) {
                let seq = op.published.seq + 1;
                let snapshot = Snapshot {
                    kind: "snapshot",
                    seq,
                    view: "operator",
                    merchant: None,
                    server_time_ms: now_ms,
                    aggregate: board.global().view(now_ms),
                    top_merchants: Some(board.top_merchants()),
                    merchants_tracked: Some(board.merchant_count()),
                };
                send(&op.tx, seq, &snapshot);
                op.published = Published { seq, version, at_ms: now_ms };
            }
        }
        let mut map = self.merchants.lock().unwrap_or_else(PoisonError::into_inner);
        // Channels nobody watches any more go, so the map stays as small as
        // the set of merchants logged in.
        map.retain(|_, ch| ch.tx.receiver_count() > 0);
        for (id, ch) in map.iter_mut() {
            let agg = board.merchant(id);
            if !ch.published.due(agg.version(), now_ms) {
                continue;
            }
            let seq = ch.published.seq + 1;
            let snapshot = Snapshot {
                kind: "snapshot",
                seq,
                view: "merchant",
                merchant: Some(id),
                server_time_ms: now_ms,
                aggregate: agg.view(now_ms),
                top_merchants: None,
                merchants_tracked: None,
            };
            send(&ch.tx, seq, &snapshot);
            ch.published = Published { seq, version: agg.version(), at_ms: now_ms };
        }
    }

    /// Merchant channels with at least one client.
    pub fn watched_merchants(&self) -> usize {
        self.merchants.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

fn send(tx: &watch::Sender<Arc<Frame>>, seq: u64, snapshot: &Snapshot<'_>) {
    match serde_json::to_string(snapshot) {
        Ok(text) => {
            tx.send_replace(Arc::new(Frame { seq, text: text.into() }));
        }
        // Only non-finite floats could fail; a skipped frame is the safe outcome.
        Err(e) => tracing::error!(error = %e, "snapshot did not serialise"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use transaction_model::{ResultMessage, Status};

    fn result(id: &str, merchant: &str) -> ResultMessage {
        ResultMessage {
            id: id.into(),
            status: Status::Approved,
            error_message: String::new(),
            account_id: Some(merchant.into()),
            amount_cents: Some(100),
            amount: Some("1.00".into()),
            card_brand: None,
            card_masked: None,
            created_at: datetime!(2026-06-01 10:00:00 UTC),
            processed_at: datetime!(2026-06-01 10:00:00 UTC),
        }
    }

    fn json(rx: &watch::Receiver<Arc<Frame>>) -> serde_json::Value {
        serde_json::from_str(rx.borrow().text.as_str()).unwrap()
    }

    #[test]
    fn publishes_on_change_or_refresh_and_isolates_merchants() {
        let hub = Hub::default();
        let mut board = Board::new(10);
        let op = hub.subscribe_operator();
        let a = hub.subscribe_merchant("a");
        board.record(&result("a1", "a"), 1_000);
        board.record(&result("b1", "b"), 1_000);
        hub.publish(&board, 1_000);
        assert_eq!(op.borrow().seq, 1);
        assert_eq!(json(&op)["totals"]["count"], 2);
        assert_eq!(json(&a)["totals"]["count"], 1);
        assert_eq!(json(&a)["recent"][0]["id"], "a1");
        assert!(!a.borrow().text.as_str().contains("b1"), "merchant a sees nothing of b");

        // Nothing changed and the refresh is not due: no new frame.
        hub.publish(&board, 1_100);
        assert_eq!(op.borrow().seq, 1);
        board.record(&result("a2", "a"), 1_200);
        hub.publish(&board, 1_200);
        assert_eq!(op.borrow().seq, 2);
        assert_eq!(a.borrow().seq, 2);
        // Unchanged, but a second has passed: refreshed.
        hub.publish(&board, 2_300);
        assert_eq!(op.borrow().seq, 3);
    }

    #[test]
    fn a_new_operator_never_starts_from_a_stale_frame() {
        let hub = Hub::default();
        let mut board = Board::new(10);
        let first = hub.subscribe_operator();
        board.record(&result("a1", "a"), 1_000);
        hub.publish(&board, 1_000);
        assert_eq!(first.borrow().seq, 1);
        drop(first);
        hub.publish(&board, 1_100);
        let late = hub.subscribe_operator();
        assert_eq!(late.borrow().seq, 0, "placeholder, not the old frame");
        hub.publish(&board, 1_200);
        assert_eq!(late.borrow().seq, 2, "published at once for the newcomer, numbering goes on");
        assert_eq!(json(&late)["server_time_ms"], 1_200);
    }

    #[test]
    fn unwatched_merchant_channels_are_dropped() {
        let hub = Hub::default();
        let board = Board::new(10);
        let rx = hub.subscribe_merchant("a");
        hub.publish(&board, 0);
        assert_eq!(hub.watched_merchants(), 1);
        drop(rx);
        hub.publish(&board, 100);
        assert_eq!(hub.watched_merchants(), 0);
    }
}
