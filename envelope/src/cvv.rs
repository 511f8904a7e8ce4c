//! The CVV's own keyring: short-lived random keys, destroyed once the
//! authorization window has passed, so a retained copy of the
//! `transactions` topic (7 days, every replica, backups) no longer yields
//! the CVV while the card number under the long-lived card keyring still
//! opens for the processor.
//!
//! Keys are random (never derived from a long-lived secret, which could
//! re-derive them) and named by the minute they were made,
//! `cvv-YYYYMMDDTHHMMZ`. One rotation every [`ROTATION_PERIOD`] (a
//! Kubernetes CronJob rewriting the `cvv-keys` Secret, see README "Card
//! data") runs [`rotate`]:
//!
//! 1. removes every key made [`KEY_LIFETIME`] ago or earlier (and any key
//!    not named by a rotation): this is the destruction;
//! 2. makes the key sealed with from now on the newest existing key, which
//!    the previous run added, so every reader has held it for a whole period
//!    before any writer seals with it (Secret volumes reach pods with a
//!    delay of up to about a minute);
//! 3. adds a fresh random key behind it, for the next run to promote.
//!
//! Readers additionally treat a key older than [`MAX_KEY_AGE`] as destroyed
//! even while a file still holds it ([`open_cvv`]), so the window holds in
//! code if the rotation stops running.

use std::time::Duration;

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use zeroize::Zeroizing;

use crate::keyring::KEY_LEN;
use crate::{open, Binding, DataKey, Field, KeyId, Keyring, KeyringError, OpenError};

/// How often the rotation runs (the CronJob's schedule must match).
pub const ROTATION_PERIOD: Duration = Duration::from_secs(15 * 60);
/// A key is removed by the first rotation at least this long after it was
/// made.
pub const KEY_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// Older than this, a key opens nothing even if still present (the
/// rotation missed a run or stopped).
pub const MAX_KEY_AGE: Duration = Duration::from_secs(75 * 60);

const PREFIX: &str = "cvv-";
const STAMP: &[BorrowedFormatItem<'static>] = format_description!("[year][month][day]T[hour][minute]Z");

/// The id of a key made at `at` (to the minute, UTC).
pub fn key_id_at(at: OffsetDateTime) -> KeyId {
    let at = at.to_offset(time::UtcOffset::UTC);
    let stamp = at.format(STAMP).unwrap_or_default();
    // `cvv-` and 14 stamp characters: always a valid id.
    KeyId::try_from(format!("{PREFIX}{stamp}").as_str()).unwrap_or_else(|_| KeyId::unchecked("cvv-invalid"))
}

/// When a rotation made the key `id`; `None` for an id it did not make.
pub fn key_created_at(id: &str) -> Option<OffsetDateTime> {
    let stamp = id.strip_prefix(PREFIX)?;
    PrimitiveDateTime::parse(stamp, STAMP).ok().map(PrimitiveDateTime::assume_utc)
}

/// Whether `id` is past [`MAX_KEY_AGE`] at `now`. Ids a rotation did not
/// make (tests' fixed keyrings) have no age.
pub fn is_expired(id: &str, now: OffsetDateTime) -> bool {
    key_created_at(id).is_some_and(|made| now - made > MAX_KEY_AGE)
}

/// Opens a sealed CVV: [`OpenError::Expired`] when its key is past
/// [`MAX_KEY_AGE`], [`OpenError::UnknownKey`] once it has been removed.
pub fn open_cvv(
    ring: &Keyring,
    binding: Binding<'_>,
    value: &str,
    now: OffsetDateTime,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if let Some(id) = crate::envelope::sealed_key_id(value) {
        if is_expired(id, now) {
            return Err(OpenError::Expired(KeyId::unchecked(id)));
        }
    }
    open(ring, binding, Field::Cvv, value)
}

/// The CVV keyring after one rotation at `now` (see the module
/// documentation), in text form; `current` may be empty (the first run).
pub fn rotate(current: &str, now: OffsetDateTime) -> Result<Zeroizing<String>, KeyringError> {
    let ring = match Keyring::parse(current) {
        Ok(ring) => Some(ring),
        Err(KeyringError::Empty) => None,
        Err(e) => return Err(e),
    };
    let mut kept: Vec<(OffsetDateTime, KeyId)> = ring
        .iter()
        .flat_map(Keyring::ids)
        .filter_map(|id| Some((key_created_at(id.as_str())?, id.clone())))
        .filter(|(made, _)| now - *made < KEY_LIFETIME)
        .collect();
    kept.sort_by_key(|k| std::cmp::Reverse(k.0)); // newest first

    // A second run in the same minute finds its key made already: it keeps
    // that one as the staged key rather than promoting it early.
    let fresh_id = key_id_at(now);
    let rerun = kept.iter().any(|(_, id)| *id == fresh_id);
    kept.retain(|(_, id)| *id != fresh_id);
    let entry = |id: &KeyId| ring.as_ref().and_then(|r| r.entry(id));
    let fresh = if rerun {
        entry(&fresh_id)
    } else {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.try_fill_bytes(bytes.as_mut()).map_err(|e| KeyringError::Unreadable(format!("no randomness: {e}")))?;
        Keyring::single(fresh_id.clone(), DataKey::from_bytes(*bytes)).entry(&fresh_id)
    };

    // Current (the key staged by the previous run), then the fresh one,
    // then the older keys that still open what they sealed.
    let mut older = kept.iter().map(|(_, id)| id);
    let mut lines: Vec<Zeroizing<String>> = Vec::new();
    lines.extend(older.next().and_then(entry));
    lines.extend(fresh);
    lines.extend(older.filter_map(entry));
    let mut text = Zeroizing::new(String::new());
    for line in lines.iter() {
        text.push_str(line);
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::seal;

    const B: Binding<'static> = Binding { transaction_id: "tx-1", account_id: "acc-1" };

    fn ids(text: &str) -> Vec<String> {
        text.lines().map(|l| l.split(':').next().unwrap_or_default().to_owned()).collect()
    }

    #[test]
    fn key_ids_name_their_minute() {
        let id = key_id_at(datetime!(2026-03-15 10:15:42 UTC));
        assert_eq!(id.as_str(), "cvv-20260315T1015Z");
        assert_eq!(key_created_at(id.as_str()), Some(datetime!(2026-03-15 10:15 UTC)));
        assert_eq!(key_created_at("k1"), None);
        assert!(!is_expired("cvv-20260315T1015Z", datetime!(2026-03-15 11:30 UTC)));
        assert!(is_expired("cvv-20260315T1015Z", datetime!(2026-03-15 11:31 UTC)));
        assert!(!is_expired("k1", datetime!(2099-01-01 00:00 UTC)));
    }

    #[test]
    fn rotation_stages_promotes_and_destroys() {
        let t0 = datetime!(2026-03-15 10:00 UTC);
        let minutes = |m: i64| t0 + time::Duration::minutes(m);
        // First run: the only key seals at once.
        let r0 = rotate("", t0).unwrap();
        assert_eq!(ids(&r0), ["cvv-20260315T1000Z"]);
        // Each later run: the key staged before seals, a fresh one is staged.
        let r1 = rotate(&r0, minutes(15)).unwrap();
        assert_eq!(ids(&r1), ["cvv-20260315T1000Z", "cvv-20260315T1015Z"]);
        let r2 = rotate(&r1, minutes(30)).unwrap();
        assert_eq!(ids(&r2), ["cvv-20260315T1015Z", "cvv-20260315T1030Z", "cvv-20260315T1000Z"]);
        let r3 = rotate(&r2, minutes(45)).unwrap();
        let r4 = rotate(&r3, minutes(60)).unwrap();
        // 60 minutes after it was made, the first key is gone.
        assert_eq!(ids(&r4), ["cvv-20260315T1045Z", "cvv-20260315T1100Z", "cvv-20260315T1030Z", "cvv-20260315T1015Z"]);
        // The keys that stay are byte for byte the same.
        let k15 = |text: &str| text.lines().find(|l| l.starts_with("cvv-20260315T1015Z")).map(str::to_owned);
        assert_eq!(k15(&r1), k15(&r4));
        // A second run in the same minute changes nothing.
        assert_eq!(ids(&rotate(&r4, minutes(60)).unwrap()), ids(&r4));
        // Keys a rotation did not make are removed; bad text is refused.
        let foreign = format!("k1:{}\n{}", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", r4.as_str());
        assert!(!ids(&rotate(&foreign, minutes(75)).unwrap()).contains(&"k1".to_owned()));
        assert!(rotate("k1:short", t0).is_err());
    }

    #[test]
    fn a_cvv_sealed_under_a_destroyed_key_no_longer_opens() {
        let t0 = datetime!(2026-03-15 10:00 UTC);
        let minutes = |m: i64| t0 + time::Duration::minutes(m);
        let mut text = rotate("", t0).unwrap();
        let first = text.clone();
        let ring = Keyring::parse(&text).unwrap();
        let sealed = seal(&ring, B, Field::Cvv, b"\"123\"");
        assert!(sealed.starts_with("enc:v1:cvv-20260315T1000Z:"), "{sealed}");
        for m in [15, 30, 45] {
            text = rotate(&text, minutes(m)).unwrap();
            let ring = Keyring::parse(&text).unwrap();
            assert_eq!(open_cvv(&ring, B, &sealed, minutes(m)).unwrap().as_slice(), b"\"123\"");
        }
        text = rotate(&text, minutes(60)).unwrap();
        let ring = Keyring::parse(&text).unwrap();
        let id = KeyId::try_from("cvv-20260315T1000Z").unwrap();
        assert_eq!(open_cvv(&ring, B, &sealed, minutes(60)), Err(OpenError::UnknownKey(id.clone())));
        // Still present in a file the rotation stopped updating: expired.
        let stale = Keyring::parse(&first).unwrap();
        assert!(open_cvv(&stale, B, &sealed, minutes(75)).is_ok());
        assert_eq!(open_cvv(&stale, B, &sealed, minutes(76)), Err(OpenError::Expired(id)));
    }
}
