//! `KAFKA_OPTIONS`: extra librdkafka properties given as `key=value;key=value`.
//! `;` separates, since values such as `debug=cgrp,fetch` hold commas.

/// Parses the entries (already split on `;`) into pairs; blank entries are
/// skipped.
pub fn parse(entries: &[String]) -> Result<Vec<(String, String)>, String> {
    entries
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| {
            o.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("KAFKA_OPTIONS entry {o:?} is not key=value"))
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
}
