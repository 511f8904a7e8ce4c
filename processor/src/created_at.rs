//! Which `created_at` a message may carry.
//!
//! The rules run at the message's `created_at`, so that a redelivered
//! message is decided as it was first. Anyone who can write to the topic
//! can also write any `created_at`, though: a backdated one would approve a
//! card that has since expired, and one at the edge of the calendar would
//! not fit the result format or the database. So a `created_at` counts only
//! inside a window around the time the processor receives the message,
//! from [`MAX_AGE`] before it to [`MAX_AHEAD`] after it (clock skew between
//! hosts). Outside it, or unreadable, it is treated as absent: the rules run
//! at the time of receipt, and that time is stored and published as
//! `created_at`.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use transaction_store::truncate_to_micros;

/// How far back a `created_at` may lie. Long enough for a batch retried
/// through a broker or database outage of an hour; short enough that a
/// backdated message can reach into the previous month only in the first
/// hour of a month.
pub const MAX_AGE: Duration = Duration::hours(1);
/// How far ahead of the processor's clock a `created_at` may lie.
pub const MAX_AHEAD: Duration = Duration::minutes(5);

/// The instant the rules run at: `claimed` (RFC 3339 text) if it lies in
/// the window around `received_at`, else `received_at`; in UTC, truncated
/// to microseconds.
pub fn decision_time(claimed: Option<&str>, received_at: OffsetDateTime) -> OffsetDateTime {
    let claimed =
        claimed.and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok()).filter(|t| within_window(*t, received_at));
    truncate_to_micros(claimed.unwrap_or(received_at))
}

fn within_window(t: OffsetDateTime, received_at: OffsetDateTime) -> bool {
    match (received_at.checked_sub(MAX_AGE), received_at.checked_add(MAX_AHEAD)) {
        (Some(earliest), Some(latest)) => earliest <= t && t <= latest,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-06-15 12:00:00 UTC);

    #[test]
    fn inside_the_window_the_claim_counts() {
        assert_eq!(decision_time(Some("2026-06-15T11:30:00Z"), NOW), datetime!(2026-06-15 11:30:00 UTC));
        assert_eq!(decision_time(Some("2026-06-15T11:00:00Z"), NOW), datetime!(2026-06-15 11:00:00 UTC));
        assert_eq!(decision_time(Some("2026-06-15T12:05:00Z"), NOW), datetime!(2026-06-15 12:05:00 UTC));
        // Another offset, same instant; stored in UTC.
        assert_eq!(decision_time(Some("2026-06-15T13:30:00+02:00"), NOW), datetime!(2026-06-15 11:30:00 UTC));
        assert_eq!(
            decision_time(Some("2026-06-15T11:59:59.123456789Z"), NOW),
            datetime!(2026-06-15 11:59:59.123456 UTC)
        );
    }

    #[test]
    fn outside_it_or_unreadable_counts_as_absent() {
        for claim in [
            "2026-06-15T10:59:59Z",
            "2026-06-15T12:05:01Z",
            "2019-03-01T10:00:00Z",
            "9999-12-31T23:59:59-23:59",
            "0000-01-01T00:00:00+00:01",
            "0000-01-01T00:00:00Z",
            "not a time",
            "",
        ] {
            assert_eq!(decision_time(Some(claim), NOW), NOW, "{claim}");
        }
        assert_eq!(decision_time(None, NOW), NOW);
    }
}
