//! `KAFKA_OPTIONS`: extra librdkafka properties given as `key=value;key=value`.
//! `;` separates, since values such as `debug=cgrp,fetch` hold commas.
//!
//! The properties the services' delivery guarantees rest on cannot be
//! overridden here ([`PROTECTED_KEYS`]): automatic offset commits or stores
//! would commit messages before their results are stored and published, a
//! weaker `acks` would lose acknowledged messages, and another group or
//! reset policy would skip or re-read topics. Such an entry is refused at
//! start-up instead of silently breaking delivery.

/// librdkafka properties that `KAFKA_OPTIONS` may not set (compared
/// case-insensitively; librdkafka's aliases included).
pub const PROTECTED_KEYS: &[&str] = &[
    "enable.auto.commit",
    "auto.commit.enable",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "group.id",
    "acks",
    "request.required.acks",
    "enable.idempotence",
    "isolation.level",
];

/// Parses the entries (already split on `;`) into pairs; blank entries are
/// skipped; an entry setting one of [`PROTECTED_KEYS`] is an error. Error
/// messages name the key, never the value (it may be a password).
pub fn parse(entries: &[String]) -> Result<Vec<(String, String)>, String> {
    entries
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| {
            let (k, v) = o.split_once('=').ok_or_else(|| {
                let shown: String = o.trim().chars().take(40).collect();
                format!("KAFKA_OPTIONS entry {shown:?} is not key=value")
            })?;
            let key = k.trim();
            if PROTECTED_KEYS.iter().any(|p| p.eq_ignore_ascii_case(key)) {
                return Err(format!(
                    "KAFKA_OPTIONS may not set {key:?}: the service's delivery guarantees depend on it"
                ));
            }
            Ok((key.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_pairs_and_rejects_junk() {
        let entries = vec!["debug=cgrp,fetch".to_owned(), " ".to_owned(), "linger.ms = 5".to_owned()];
        assert_eq!(
            parse(&entries).unwrap(),
            vec![("debug".into(), "cgrp,fetch".into()), ("linger.ms".into(), "5".into())]
        );
        assert!(parse(&["novalue".to_owned()]).unwrap_err().contains("not key=value"));
    }

    #[test]
    fn refuses_delivery_critical_properties() {
        for entry in [
            "enable.auto.commit=true",
            "Enable.Auto.Offset.Store = true",
            "auto.commit.enable=true",
            "acks=0",
            "request.required.acks=1",
            "auto.offset.reset=latest",
            "group.id=other",
        ] {
            let e = parse(&[entry.to_owned()]).unwrap_err();
            assert!(e.contains("may not set"), "{entry}: {e}");
        }
        // Security settings stay allowed, and their values are not echoed.
        assert_eq!(parse(&["sasl.password=hunter2".to_owned()]).unwrap().len(), 1);
        assert!(!parse(&["sasl.password=hunter2".to_owned(), "acks=0".to_owned()]).unwrap_err().contains("hunter2"));
    }
}
