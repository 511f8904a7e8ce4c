//! Opaque list cursors: base64url of "<created_at in µs since epoch>|<id>".

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use time::OffsetDateTime;
use transaction_model::TransactionId;
use transaction_store::ListCursor;

pub fn encode(c: &ListCursor) -> String {
    let micros = c.created_at.unix_timestamp_nanos() / 1000;
    URL_SAFE_NO_PAD.encode(format!("{micros}|{}", c.id))
}

pub fn decode(text: &str) -> Option<ListCursor> {
    if text.len() > 512 {
        return None;
    }
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    let (micros, id) = raw.split_once('|')?;
    let micros: i128 = micros.parse().ok()?;
    let created_at = OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1000)?).ok()?;
    Some(ListCursor { created_at, id: TransactionId::try_from(id).ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn round_trips_and_rejects_junk() {
        let c = ListCursor {
            created_at: datetime!(2026-01-02 03:04:05.123456 UTC),
            id: TransactionId::try_from("0190b8a4-5a0e-7c2a-9d1e-1f2e3d4c5b6a").unwrap(),
        };
        assert_eq!(decode(&encode(&c)), Some(c));
        for junk in ["", "!!", "bm9waXBl", &URL_SAFE_NO_PAD.encode("x|id"), &URL_SAFE_NO_PAD.encode("1|")] {
            assert_eq!(decode(junk), None, "{junk}");
        }
    }
}
