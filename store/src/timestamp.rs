//! Timestamps as stored: UTC, microsecond precision.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Fixed-width, so text order is time order in SQLite.
const SQLITE_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub(crate) fn to_sqlite_text(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(SQLITE_FORMAT)
        .unwrap_or_else(|_| unreachable!("formatting a valid UTC time with a fixed format"))
}

pub(crate) fn from_sqlite_text(text: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(text, SQLITE_FORMAT).ok().map(PrimitiveDateTime::assume_utc)
}

pub(crate) fn to_utc_primitive(t: OffsetDateTime) -> PrimitiveDateTime {
    let utc = t.to_offset(UtcOffset::UTC);
    // MySQL DATETIME(6) keeps microseconds; drop the rest so a value read
    // back equals the value written.
    let micros = utc.microsecond();
    let utc = utc.replace_nanosecond(micros * 1000).unwrap_or(utc);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

/// Truncates to microseconds, the precision both databases keep.
pub fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    to_utc_primitive(t).assume_utc()
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
}
