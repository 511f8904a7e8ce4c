//! Every aggregate the dashboard keeps: one over all results and one per
//! merchant, the number of merchants bounded.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use transaction_model::ResultMessage;

use crate::aggregate::Aggregate;
use crate::row::Row;

/// Rows in the operator's "latest transactions" table.
pub const RECENT_ALL: usize = 50;
/// Rows in a merchant's table.
pub const RECENT_MERCHANT: usize = 25;
/// Merchants listed in the operator view.
pub const TOP_MERCHANTS: usize = 10;

pub struct Board {
    global: Aggregate,
    merchants: HashMap<String, Aggregate>,
    max_merchants: usize,
    /// An empty aggregate, the view of a merchant without results yet.
    empty: Aggregate,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MerchantSummary {
    pub id: String,
    pub count: u64,
    pub approval_rate: Option<f64>,
}

impl Board {
    pub fn new(max_merchants: usize) -> Self {
        Board {
            global: Aggregate::new(RECENT_ALL),
            merchants: HashMap::new(),
            max_merchants: max_merchants.max(1),
            empty: Aggregate::new(0),
        }
    }

    pub fn record(&mut self, result: &ResultMessage, now_ms: i64) {
        let row = Arc::new(Row::of(result));
        self.global.record(&row, now_ms);
        let Some(merchant) = result.account_id.as_deref() else { return };
        if let Some(agg) = self.merchants.get_mut(merchant) {
            agg.record(&row, now_ms);
            return;
        }
        if self.merchants.len() >= self.max_merchants {
            self.evict_idle();
        }
        let mut agg = Aggregate::new(RECENT_MERCHANT);
        agg.record(&row, now_ms);
        self.merchants.insert(merchant.to_owned(), agg);
    }

    /// Forgets the least recently active tenth in one pass, so a stream of
    /// new merchants costs amortised O(1) per result rather than a scan each.
    fn evict_idle(&mut self) {
        let drop_n = (self.max_merchants / 10).max(1);
        let mut seen: Vec<i64> = self.merchants.values().map(|a| a.last_seen_ms).collect();
        let cut_index = drop_n.min(seen.len()) - 1;
        let (_, cut, _) = seen.select_nth_unstable(cut_index);
        let cut = *cut;
        let mut dropped = 0;
        self.merchants.retain(|_, a| {
            let keep = a.last_seen_ms > cut || dropped >= drop_n;
            if !keep {
                dropped += 1;
            }
            keep
        });
    }

    pub fn global(&self) -> &Aggregate {
        &self.global
    }

    pub fn merchant(&self, id: &str) -> &Aggregate {
        self.merchants.get(id).unwrap_or(&self.empty)
    }

    pub fn merchant_count(&self) -> usize {
        self.merchants.len()
    }

    /// The busiest merchants by results seen, for the operator view.
    pub fn top_merchants(&self) -> Vec<MerchantSummary> {
        let mut all: Vec<(&String, &Aggregate)> = self.merchants.iter().collect();
        let n = TOP_MERCHANTS.min(all.len());
        if n == 0 {
            return Vec::new();
        }
        let by_count = |a: &(&String, &Aggregate), b: &(&String, &Aggregate)| {
            b.1.count().cmp(&a.1.count()).then_with(|| a.0.cmp(b.0))
        };
        if all.len() > n {
            all.select_nth_unstable_by(n - 1, by_count);
            all.truncate(n);
        }
        all.sort_by(by_count);
        all.into_iter()
            .map(|(id, a)| MerchantSummary {
                id: id.clone(),
                count: a.count(),
                approval_rate: (a.count() > 0).then(|| a.approved() as f64 / a.count() as f64),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use transaction_model::Status;

    fn result(id: &str, merchant: Option<&str>, status: Status) -> ResultMessage {
        ResultMessage {
            id: id.into(),
            status,
            error_message: if status == Status::Approved { String::new() } else { "invalid credit card cvv".into() },
            account_id: merchant.map(Into::into),
            amount_cents: Some(1050),
            amount: Some("10.50".into()),
            card_brand: None,
            card_masked: None,
            created_at: datetime!(2026-06-01 10:00:00 UTC),
            processed_at: datetime!(2026-06-01 10:00:00 UTC),
        }
    }

    #[test]
    fn merchants_see_only_their_own() {
        let mut b = Board::new(100);
        b.record(&result("a1", Some("a"), Status::Approved), 1000);
        b.record(&result("b1", Some("b"), Status::Rejected), 1000);
        b.record(&result("n1", None, Status::Rejected), 1000);
        assert_eq!(b.global().count(), 3);
        let a = b.merchant("a").view(1000);
        assert_eq!(a.totals.count, 1);
        assert_eq!(a.recent.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a1"]);
        assert_eq!(b.merchant("b").view(1000).recent[0].id, "b1");
        assert_eq!(b.merchant("nobody").count(), 0);
        assert_eq!(b.merchant_count(), 2);
    }

    #[test]
    fn merchant_count_is_bounded_and_keeps_the_active() {
        let mut b = Board::new(20);
        for i in 0..100 {
            b.record(&result(&format!("t{i}"), Some(&format!("m{i}")), Status::Approved), i);
            // m0 stays active throughout.
            b.record(&result(&format!("k{i}"), Some("m0"), Status::Approved), i);
        }
        assert!(b.merchant_count() <= 20, "{}", b.merchant_count());
        assert_eq!(b.merchant("m0").count(), 101);
        assert_eq!(b.merchant("m99").count(), 1, "the newest is kept");
        assert_eq!(b.global().count(), 200);
    }

    #[test]
    fn top_merchants_by_count() {
        let mut b = Board::new(100);
        for m in 0..15u64 {
            for j in 0..m {
                b.record(&result(&format!("{m}-{j}"), Some(&format!("m{m:02}")), Status::Approved), 0);
            }
        }
        let top = b.top_merchants();
        assert_eq!(top.len(), TOP_MERCHANTS);
        assert_eq!(top[0].id, "m14");
        assert_eq!(top[0].count, 14);
        assert_eq!(top[9].id, "m05");
        assert_eq!(top[0].approval_rate, Some(1.0));
    }
}
