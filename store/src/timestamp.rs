//! Timestamps as stored: UTC, microsecond precision.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Fixed-width, so text order is time order in SQLite.
const SQLITE_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Years every store can hold: MySQL `DATETIME` covers 1000–9999, and the
/// SQLite text format is fixed-width only for four-digit years.
pub const STORABLE_YEARS: std::ops::RangeInclusive<i32> = 1000..=9999;

/// `t` in UTC, when it is a time every store can hold.
pub fn storable_utc(t: OffsetDateTime) -> Option<OffsetDateTime> {
    let utc = t.checked_to_offset(UtcOffset::UTC)?;
    STORABLE_YEARS.contains(&utc.year()).then_some(utc)
}

/// Text of a storable time; times outside [`STORABLE_YEARS`] are checked
/// before they get here (see `row`), and would give an empty text rather
/// than a panic.
pub(crate) fn to_sqlite_text(t: OffsetDateTime) -> String {
    let utc = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    utc.format(SQLITE_FORMAT).unwrap_or_default()
}

pub(crate) fn from_sqlite_text(text: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(text, SQLITE_FORMAT).ok().map(PrimitiveDateTime::assume_utc)
}

pub(crate) fn to_utc_primitive(t: OffsetDateTime) -> PrimitiveDateTime {
    let utc = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    // MySQL DATETIME(6) keeps microseconds; drop the rest so a value read
    // back equals the value written.
    let micros = utc.microsecond();
    let utc = utc.replace_nanosecond(micros * 1000).unwrap_or(utc);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

/// Truncates to microseconds, the precision both databases keep. Never
/// panics: a time whose UTC equivalent is out of range keeps its offset.
pub fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.replace_nanosecond(t.microsecond() * 1000).unwrap_or(t);
    t.checked_to_offset(UtcOffset::UTC).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sqlite_text_round_trips() {
        let t = datetime!(2026-03-04 05:06:07.123456 UTC);
        let text = to_sqlite_text(t);
        assert_eq!(text, "2026-03-04T05:06:07.123456Z");
        assert_eq!(from_sqlite_text(&text), Some(t));
    }

    #[test]
    fn calendar_edges_do_not_panic() {
        let late = datetime!(9999-12-31 23:59:59.999999999 -23:59);
        let early = datetime!(-9999-01-01 00:00:00 +23:59);
        for t in [late, early] {
            assert_eq!(storable_utc(t), None);
            let _ = truncate_to_micros(t);
            let _ = to_sqlite_text(t);
            let _ = to_utc_primitive(t);
        }
        assert_eq!(truncate_to_micros(late).nanosecond(), 999_999_000);
        assert!(storable_utc(datetime!(9999-12-31 23:59:59 UTC)).is_some());
        assert!(storable_utc(datetime!(0999-12-31 23:59:59 UTC)).is_none());
    }
}
