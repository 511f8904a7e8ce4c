//! What a dead letter may carry: never a card number, never a CVV,
//! whatever the payload is. A payload that parses as JSON loses every
//! CVV-like field and has every long digit run masked, in keys, strings and
//! numbers, at any depth; any other payload (not JSON, numbers beyond a
//! float, nesting beyond the parser's limit, invalid UTF-8) is redacted
//! from its bytes. The original bytes are never copied as they came.

use serde_json::{Map, Value};

/// Longest payload kept in a dead letter (after redaction): the topic is
/// for diagnosis, and a payload near the broker's limit plus headers would
/// not fit a record.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Longest key kept in a dead letter.
pub const MAX_KEY_BYTES: usize = 512;
/// A run of at least this many digits (spaces and dashes between them
/// allowed) may be a card number and is masked.
const MIN_CARD_DIGITS: usize = 12;
/// Digits left visible at the end of a masked run (as on a receipt).
const VISIBLE_TAIL: usize = 4;
const REDACTED: &str = "[redacted]";

/// A field name that may hold a card security code.
fn is_cvv_like(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["cvv", "cvc", "csc", "cid", "security_code", "securitycode", "card_code"].iter().any(|k| name.contains(k))
}

/// The payload to put in a dead letter.
pub fn redact_payload(payload: &[u8]) -> Vec<u8> {
    let redacted = match serde_json::from_slice::<Value>(payload) {
        Ok(value) => serde_json::to_vec(&redact_value(value)).unwrap_or_else(|_| redact_bytes(payload)),
        Err(_) => redact_bytes(payload),
    };
    // A second pass costs little and also covers what JSON printing may
    // have rejoined; then bound the size.
    let mut out = mask_digit_runs(&redacted);
    out.truncate(MAX_PAYLOAD_BYTES);
    out
}

/// A message key or a reason, masked and bounded.
pub fn redact_text(text: &[u8], limit: usize) -> Vec<u8> {
    let mut out = mask_digit_runs(text);
    out.truncate(limit);
    out
}

fn redact_value(value: Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut out = Map::with_capacity(object.len());
            for (key, v) in object {
                if is_cvv_like(&key) {
                    continue;
                }
                out.insert(mask_str(&key), redact_value(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(redact_value).collect()),
        Value::String(s) => Value::String(mask_str(&s)),
        Value::Number(n) => {
            let digits = n.to_string().bytes().filter(u8::is_ascii_digit).count();
            if digits >= MIN_CARD_DIGITS {
                Value::String(REDACTED.into())
            } else {
                Value::Number(n)
            }
        }
        other => other,
    }
}

fn mask_str(s: &str) -> String {
    // Masking replaces ASCII digits with ASCII '*': still UTF-8.
    String::from_utf8(mask_digit_runs(s.as_bytes())).unwrap_or_else(|_| REDACTED.into())
}

/// Not JSON: CVV-like fields' values removed, digit runs masked.
fn redact_bytes(payload: &[u8]) -> Vec<u8> {
    mask_digit_runs(&strip_cvv_values(payload))
}

/// Length of a digit at `i`: an ASCII digit, or a JSON escape of one
/// (`\u0034`), which a reader would decode to a digit.
fn digit_at(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'0'..=b'9' => Some(1),
        b'\\' => {
            let e = bytes.get(i..i + 6)?;
            (e[1] == b'u' && e[2] == b'0' && e[3] == b'0' && e[4] == b'3' && e[5].is_ascii_digit()).then_some(6)
        }
        _ => None,
    }
}

/// Masks every run of [`MIN_CARD_DIGITS`] or more digits, single spaces or
/// dashes between them allowed, but its last [`VISIBLE_TAIL`] digits.
pub fn mask_digit_runs(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let Some(first) = digit_at(bytes, i) else {
            out.push(bytes[i]);
            i += 1;
            continue;
        };
        // The run: digits (start, len), separated by at most one separator.
        let mut digits: Vec<(usize, usize)> = vec![(i, first)];
        let mut end = i + first;
        loop {
            if let Some(n) = digit_at(bytes, end) {
                digits.push((end, n));
                end += n;
            } else if matches!(bytes.get(end), Some(b' ' | b'-')) && digit_at(bytes, end + 1).is_some() {
                end += 1;
            } else {
                break;
            }
        }
        // An escaped digit counts as the four ASCII digits it is written
        // with (`\u0034`), so neither the decoded text nor the raw bytes
        // keep a long run.
        let weight: usize = digits.iter().map(|&(_, len)| if len == 1 { 1 } else { 4 }).sum();
        if weight >= MIN_CARD_DIGITS {
            let masked = digits.len() - VISIBLE_TAIL;
            let mut next_digit = 0;
            let mut j = i;
            while j < end {
                match digits.get(next_digit) {
                    Some(&(start, len)) if start == j => {
                        if next_digit < masked {
                            out.push(b'*');
                        } else {
                            out.extend_from_slice(&bytes[start..start + len]);
                        }
                        next_digit += 1;
                        j += len;
                    }
                    _ => {
                        out.push(bytes[j]);
                        j += 1;
                    }
                }
            }
        } else {
            out.extend_from_slice(&bytes[i..end]);
        }
        i = end;
    }
    out
}

/// Removes the value after every CVV-like name (`"cvv": "123"`, `cvv=123`,
/// `"x_cvv*2": 123`). Tracks whether it is inside a quoted string, so a
/// name inside a quoted key is followed to that key's closing quote.
fn strip_cvv_values(bytes: &[u8]) -> Vec<u8> {
    let lower = bytes.to_ascii_lowercase();
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let name_len = ["security_code", "securitycode", "card_code", "cvv", "cvc", "csc", "cid"]
            .iter()
            .find(|k| lower[i..].starts_with(k.as_bytes()))
            .map(|k| k.len());
        let Some(name_len) = name_len else {
            match bytes[i] {
                b'\\' if in_string => {
                    out.extend_from_slice(&bytes[i..(i + 2).min(bytes.len())]);
                    i += 2;
                    continue;
                }
                b'"' => in_string = !in_string,
                _ => {}
            }
            out.push(bytes[i]);
            i += 1;
            continue;
        };
        let mut j = i + name_len;
        if in_string {
            // The rest of the quoted key, to its closing quote.
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j = (j + 1).min(bytes.len());
            in_string = false;
        } else {
            // The rest of a bare name (`cvv2`, `cvv_code`).
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
        }
        out.extend_from_slice(&bytes[i..j]);
        while j < bytes.len() && matches!(bytes[j], b'"' | b'\'' | b' ' | b'\t' | b'\r' | b'\n') {
            out.push(bytes[j]);
            j += 1;
        }
        if j < bytes.len() && matches!(bytes[j], b':' | b'=') {
            out.push(bytes[j]);
            j += 1;
            while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\r' | b'\n') {
                j += 1;
            }
            j = skip_value(bytes, j);
            out.extend_from_slice(b"\"[redacted]\"");
        }
        i = j;
    }
    out
}

/// The end of the value starting at `j`: a quoted string (escapes
/// honoured, or to the end), else up to the next delimiter.
fn skip_value(bytes: &[u8], mut j: usize) -> usize {
    match bytes.get(j) {
        Some(&quote @ (b'"' | b'\'')) => {
            j += 1;
            while j < bytes.len() {
                match bytes[j] {
                    b'\\' => j += 2,
                    c if c == quote => return j + 1,
                    _ => j += 1,
                }
            }
            bytes.len()
        }
        _ => {
            while j < bytes.len() && !matches!(bytes[j], b',' | b'}' | b']' | b'&' | b';' | b'\n' | b' ') {
                j += 1;
            }
            j
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Vec<u8>) -> String {
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn json_loses_cvv_and_card_numbers_everywhere() {
        let out = text(redact_payload(
            br#"{"id":"x","credit_card_number":"4111 1111 1111 1111","credit_card_cvv":987,
               "nested":{"pan":4111111111111111,"CVC2":"1234","list":["5555-5555-5555-4444"]},
               "4111111111111111":1,"amount":10.5}"#,
        ));
        for secret in ["4111 1111 1111 1111", "4111111111111111", "987", "CVC2", "5555-5555-5555-4444", "1234"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.contains("1111") && out.contains("10.5") && out.contains(r#""id":"x""#), "{out}");
    }

    #[test]
    fn unparseable_payloads_are_redacted_from_their_bytes() {
        for payload in [
            &br#"{"credit_card_number":"4111111111111111","credit_card_cvv":"987","amount":1e400}"#[..],
            br#"{"credit_card_number":"4111111111111111","credit_card_cvv": 987 ,"x":"\ud800"}"#,
            b"card=4111-1111-1111-1111&cvv=987&x=\xff",
            br#"{"credit_card_number":"\u00341111111111111111","cvv":'987'"#,
            b"{\"credit_card_cvv\":\"98\\\"7\",\"n\":\"4111111111111111\"",
            b"{\"x_card_code*2\": \"987\", \"y\": \"\xff\"}",
            b"{\"cvv:x\": \"987\", \"y\": \"\xff\"}",
        ] {
            let out = redact_payload(payload);
            assert_ne!(out, payload);
            let out = text(out);
            for secret in ["4111111111111111", "4111-1111-1111", "987", "0034111"] {
                assert!(!out.contains(secret), "{secret} in {out}");
            }
        }
    }

    #[test]
    fn short_digit_runs_stay_and_long_ones_keep_four() {
        assert_eq!(mask_digit_runs(b"amount 1050, id 12345678901"), b"amount 1050, id 12345678901");
        assert_eq!(mask_digit_runs(b"n=123456789012;"), b"n=********9012;");
        assert_eq!(mask_digit_runs(b"4111 1111 1111 1111"), b"**** **** **** 1111");
        assert_eq!(mask_digit_runs(b"12 34"), b"12 34");
        assert_eq!(mask_digit_runs(b""), b"");
        // Escapes count with their hex digits: no run of 12 ASCII digits stays.
        assert_eq!(mask_digit_runs(br"\u003411111111x"), br"*****1111x");
    }

    #[test]
    fn dead_letters_are_bounded() {
        let big = vec![b'x'; MAX_PAYLOAD_BYTES * 3];
        assert_eq!(redact_payload(&big).len(), MAX_PAYLOAD_BYTES);
        assert_eq!(redact_text(&big, MAX_KEY_BYTES).len(), MAX_KEY_BYTES);
    }
}
