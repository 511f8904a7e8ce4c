//! Results per second over the last few minutes, in a fixed ring of
//! one-second buckets: constant memory whatever the rate.

use serde::Serialize;

/// Seconds of history kept: five minutes.
pub const SERIES_SECS: usize = 300;

#[derive(Clone, Copy, Default)]
struct Slot {
    /// Unix second the counts belong to; a stale slot is reset on reuse.
    sec: u64,
    approved: u32,
    rejected: u32,
}

#[derive(Clone)]
pub struct Series {
    slots: Box<[Slot]>,
}

/// Counts per second, oldest first, ending at `end_sec` (inclusive).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SeriesView {
    pub end_sec: u64,
    pub bucket_secs: u32,
    pub approved: Vec<u32>,
    pub rejected: Vec<u32>,
}

impl Default for Series {
    fn default() -> Self {
        Series { slots: vec![Slot::default(); SERIES_SECS].into_boxed_slice() }
    }
}

impl Series {
    pub fn record(&mut self, sec: u64, approved: bool) {
        let slot = &mut self.slots[(sec % SERIES_SECS as u64) as usize];
        if slot.sec != sec {
            *slot = Slot { sec, approved: 0, rejected: 0 };
        }
        if approved {
            slot.approved = slot.approved.saturating_add(1);
        } else {
            slot.rejected = slot.rejected.saturating_add(1);
        }
    }

    fn at(&self, sec: u64) -> (u32, u32) {
        let slot = &self.slots[(sec % SERIES_SECS as u64) as usize];
        if slot.sec == sec {
            (slot.approved, slot.rejected)
        } else {
            (0, 0)
        }
    }

    pub fn view(&self, now_sec: u64) -> SeriesView {
        let start = now_sec.saturating_sub(SERIES_SECS as u64 - 1);
        let (approved, rejected) = (start..=now_sec).map(|s| self.at(s)).unzip();
        SeriesView { end_sec: now_sec, bucket_secs: 1, approved, rejected }
    }

    /// Mean (approved, rejected) per second over the `window` whole seconds
    /// before `now_sec`; the current, partial second is left out.
    pub fn rate(&self, now_sec: u64, window: u64) -> (f64, f64) {
        let window = window.clamp(1, SERIES_SECS as u64 - 1);
        let (mut a, mut r) = (0u64, 0u64);
        for s in now_sec.saturating_sub(window)..now_sec {
            let (x, y) = self.at(s);
            a += u64::from(x);
            r += u64::from(y);
        }
        (a as f64 / window as f64, r as f64 / window as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_second_and_forgets_old_seconds() {
        let mut s = Series::default();
        s.record(1000, true);
        s.record(1000, true);
        s.record(1000, false);
        s.record(1001, false);
        let v = s.view(1001);
        assert_eq!(v.approved.len(), SERIES_SECS);
        assert_eq!(v.approved[SERIES_SECS - 2..], [2, 0]);
        assert_eq!(v.rejected[SERIES_SECS - 2..], [1, 1]);
        // The same slot, SERIES_SECS later: the old counts must not leak in.
        s.record(1000 + SERIES_SECS as u64, true);
        let v = s.view(1000 + SERIES_SECS as u64);
        assert_eq!(v.approved[SERIES_SECS - 1], 1);
        assert_eq!(v.rejected[SERIES_SECS - 1], 0);
        assert_eq!(v.approved.iter().sum::<u32>(), 1, "second 1000 has left the window");
        assert_eq!(v.rejected.iter().sum::<u32>(), 1, "second 1001 is still inside it");
    }

    #[test]
    fn rate_averages_whole_seconds_only() {
        let mut s = Series::default();
        for sec in 90..100 {
            for _ in 0..5 {
                s.record(sec, true);
            }
            s.record(sec, false);
        }
        s.record(100, true); // partial second: ignored
        assert_eq!(s.rate(100, 10), (5.0, 1.0));
        assert_eq!(s.rate(100, 20), (2.5, 0.5));
    }
}
