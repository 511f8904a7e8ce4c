//! The JSON frames sent on the WebSocket. Each is a whole snapshot of the
//! client's view, so a client that missed frames is never out of step.

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;

use crate::aggregate::AggregateView;
use crate::board::MerchantSummary;

/// A serialised frame, shared by every client of one view.
#[derive(Debug)]
pub struct Frame {
    /// Position in its view's sequence, from 1; a client that sees a gap
    /// skipped frames. 0 is the placeholder before the first snapshot.
    pub seq: u64,
    pub text: Utf8Bytes,
}

impl Frame {
    pub fn placeholder() -> Self {
        Frame { seq: 0, text: Utf8Bytes::from_static("") }
    }
}

#[derive(Serialize)]
pub struct Snapshot<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub seq: u64,
    /// `operator` or `merchant`.
    pub view: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant: Option<&'a str>,
    pub server_time_ms: i64,
    #[serde(flatten)]
    pub aggregate: AggregateView,
    /// Operator view only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_merchants: Option<Vec<MerchantSummary>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchants_tracked: Option<usize>,
}
