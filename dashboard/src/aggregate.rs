//! Running aggregates of one view (everything, or one merchant): totals,
//! rejections by reason, the per-second series and the latest rows.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Serialize;
use transaction_model::RejectionReason;

use crate::row::Row;
use crate::series::{Series, SeriesView};

/// Seconds the "now" rate is averaged over.
pub const RATE_WINDOW_SECS: u64 = 10;

/// Labels in display order; `other` counts messages this build does not know.
const REASON_LABELS: [&str; 10] = [
    "invalid_card_number",
    "invalid_expiration_month",
    "invalid_expiration_year",
    "invalid_cvv",
    "cvv_expired",
    "invalid_name",
    "over_limit",
    "below_minimum",
    "invalid_amount",
    "other",
];

#[derive(Clone)]
pub struct Aggregate {
    approved: u64,
    rejected: u64,
    approved_cents: i64,
    reasons: [u64; REASON_LABELS.len()],
    series: Series,
    recent: VecDeque<Arc<Row>>,
    recent_cap: usize,
    /// Bumped on every change, so unchanged views are not re-sent.
    version: u64,
    /// Unix milliseconds of the last result, for eviction.
    pub last_seen_ms: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Totals {
    pub count: u64,
    pub approved: u64,
    pub rejected: u64,
    /// approved / count, absent before the first result.
    pub approval_rate: Option<f64>,
    pub approved_amount_cents: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rate {
    pub window_secs: u64,
    pub per_sec: f64,
    pub approved_per_sec: f64,
    pub rejected_per_sec: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReasonCount {
    pub reason: &'static str,
    pub message: &'static str,
    pub count: u64,
}

/// What a frame carries about one view.
#[derive(Debug, Clone, Serialize)]
pub struct AggregateView {
    pub totals: Totals,
    pub rate: Rate,
    pub rejections: Vec<ReasonCount>,
    pub series: SeriesView,
    /// Newest first.
    pub recent: Vec<Arc<Row>>,
}

impl Aggregate {
    pub fn new(recent_cap: usize) -> Self {
        Aggregate {
            approved: 0,
            rejected: 0,
            approved_cents: 0,
            reasons: [0; REASON_LABELS.len()],
            series: Series::default(),
            recent: VecDeque::with_capacity(recent_cap),
            recent_cap,
            version: 0,
            last_seen_ms: 0,
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn count(&self) -> u64 {
        self.approved + self.rejected
    }

    pub fn approved(&self) -> u64 {
        self.approved
    }

    pub fn record(&mut self, row: &Arc<Row>, now_ms: i64) {
        let approved = row.status == "approved";
        if approved {
            self.approved += 1;
            self.approved_cents = self.approved_cents.saturating_add(row.amount_cents.unwrap_or(0));
        } else {
            self.rejected += 1;
            let label = row.reason.unwrap_or("other");
            let i = REASON_LABELS.iter().position(|l| *l == label).unwrap_or(REASON_LABELS.len() - 1);
            self.reasons[i] += 1;
        }
        self.series.record((now_ms / 1000).max(0) as u64, approved);
        if self.recent.len() == self.recent_cap {
            self.recent.pop_back();
        }
        self.recent.push_front(Arc::clone(row));
        self.version += 1;
        self.last_seen_ms = now_ms;
    }

    pub fn view(&self, now_ms: i64) -> AggregateView {
        let now_sec = (now_ms / 1000).max(0) as u64;
        let count = self.count();
        let (a, r) = self.series.rate(now_sec, RATE_WINDOW_SECS);
        AggregateView {
            totals: Totals {
                count,
                approved: self.approved,
                rejected: self.rejected,
                approval_rate: (count > 0).then(|| self.approved as f64 / count as f64),
                approved_amount_cents: self.approved_cents,
            },
            rate: Rate { window_secs: RATE_WINDOW_SECS, per_sec: a + r, approved_per_sec: a, rejected_per_sec: r },
            rejections: REASON_LABELS
                .iter()
                .zip(self.reasons)
                .map(|(label, count)| ReasonCount { reason: label, message: reason_message(label), count })
                .collect(),
            series: self.series.view(now_sec),
            recent: self.recent.iter().cloned().collect(),
        }
    }
}

fn reason_message(label: &str) -> &'static str {
    RejectionReason::ALL
        .into_iter()
        .find(|r| r.label() == label)
        .map_or("unrecognised rejection message", RejectionReason::message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::reason_label;

    fn row(status: &'static str, reason: Option<&'static str>, cents: i64) -> Arc<Row> {
        Arc::new(Row {
            id: format!("t-{cents}"),
            merchant: Some("m".into()),
            amount: None,
            amount_cents: Some(cents),
            card_brand: None,
            card_masked: None,
            status,
            reason,
            processed_at: String::new(),
        })
    }

    /// A reason added to the model must not be silently counted as `other`.
    #[test]
    fn labels_cover_the_model() {
        for r in RejectionReason::ALL {
            assert!(REASON_LABELS.contains(&r.label()), "{}", r.label());
            assert_eq!(reason_label(r.message()), r.label());
        }
    }

    #[test]
    fn totals_reasons_and_bounded_recent() {
        let mut agg = Aggregate::new(3);
        let now = 1_700_000_000_000;
        agg.record(&row("approved", None, 1000), now);
        agg.record(&row("approved", None, 250), now);
        agg.record(&row("rejected", Some("invalid_cvv"), 5), now);
        agg.record(&row("rejected", Some("other"), 6), now);
        agg.record(&row("rejected", Some("invalid_cvv"), 7), now);
        let v = agg.view(now);
        assert_eq!(v.totals.count, 5);
        assert_eq!(v.totals.approved, 2);
        assert_eq!(v.totals.rejected, 3);
        assert_eq!(v.totals.approved_amount_cents, 1250);
        assert_eq!(v.totals.approval_rate, Some(0.4));
        let count = |label| v.rejections.iter().find(|r| r.reason == label).map(|r| r.count);
        assert_eq!(count("invalid_cvv"), Some(2));
        assert_eq!(count("other"), Some(1));
        assert_eq!(count("over_limit"), Some(0));
        assert_eq!(v.recent.len(), 3, "ring is bounded");
        assert_eq!(v.recent[0].amount_cents, Some(7), "newest first");
        assert_eq!(v.recent[2].amount_cents, Some(5));
        assert_eq!(agg.version(), 5);
        assert_eq!(v.series.approved.last(), Some(&2));
        assert_eq!(v.series.rejected.last(), Some(&3));
    }

    #[test]
    fn empty_view_has_no_rate() {
        let v = Aggregate::new(5).view(0);
        assert_eq!(v.totals.approval_rate, None);
        assert!(v.recent.is_empty());
    }
}
