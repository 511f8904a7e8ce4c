//! When a failed delivery is tried again.
//!
//! The default is the Standard Webhooks / Svix schedule: the first attempt
//! at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h — eight
//! attempts over about 27.6 hours — each delay stretched or shrunk by a
//! random jitter (±10 % by default) so that a recovering endpoint is not hit
//! by every retry at the same instant.

use std::time::Duration;

use rand::Rng;

pub const DEFAULT_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule {
    /// Delay before attempt `i + 2` (after attempt `i + 1` failed).
    pub delays: Vec<Duration>,
    /// Fraction in [0, 1): each delay is multiplied by a uniform factor in
    /// `[1 - jitter, 1 + jitter]`.
    pub jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule { delays: DEFAULT_DELAYS.to_vec(), jitter: 0.1 }
    }
}

impl RetrySchedule {
    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// The unjittered delay after `attempts_made` failed attempts; `None`
    /// when the schedule is used up.
    pub fn base_delay(&self, attempts_made: u32) -> Option<Duration> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        self.delays.get(index).copied()
    }

    /// The jittered delay after `attempts_made` failed attempts.
    pub fn next_delay(&self, attempts_made: u32, rng: &mut impl Rng) -> Option<Duration> {
        let base = self.base_delay(attempts_made)?;
        let jitter = self.jitter.clamp(0.0, 0.99);
        if jitter == 0.0 {
            return Some(base);
        }
        let factor = rng.gen_range((1.0 - jitter)..=(1.0 + jitter));
        Some(base.mul_f64(factor))
    }

    /// Parses `5s,5m,30m,2h` (units s, m, h; ms for tests).
    pub fn parse_delays(text: &str) -> Result<Vec<Duration>, String> {
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(parse_duration).collect()
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("{text:?} is not a duration like 5s, 5m, 2h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{text:?}: unit must be ms, s, m or h")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn default_is_the_standard_webhooks_schedule() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 8);
        assert_eq!(s.base_delay(0), None, "the first attempt is immediate, not a retry");
        assert_eq!(s.base_delay(1), Some(Duration::from_secs(5)));
        assert_eq!(s.base_delay(2), Some(Duration::from_secs(300)));
        assert_eq!(s.base_delay(7), Some(Duration::from_secs(36_000)));
        assert_eq!(s.base_delay(8), None, "used up after eight attempts");
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let s = RetrySchedule::default();
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<_> = (0..200).map(|_| s.next_delay(2, &mut rng).unwrap()).collect();
        assert!(delays.iter().all(|d| *d >= Duration::from_secs(270) && *d <= Duration::from_secs(330)));
        assert!(delays.iter().any(|d| *d != delays[0]), "jitter varies the delay");
    }

    #[test]
    fn parses_delay_lists() {
        assert_eq!(
            RetrySchedule::parse_delays("5s, 5m,2h,100ms").unwrap(),
            vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(7200),
                Duration::from_millis(100)
            ]
        );
        assert!(RetrySchedule::parse_delays("5x").is_err());
        assert!(RetrySchedule::parse_delays("s").is_err());
    }
}
