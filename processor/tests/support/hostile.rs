//! Hostile messages, as any producer on `transactions` could write them:
//! dates at every edge, huge and exotic numbers, deep nesting, invalid
//! UTF-8, empty and near-limit payloads, wrong JSON types for every field,
//! ids at and over the limits, hostile keys and headers.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub struct Case {
    pub name: String,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

const FIELDS: [&str; 8] = [
    "account_id",
    "credit_card_number",
    "credit_card_name",
    "credit_card_expiration_month",
    "credit_card_expiration_year",
    "credit_card_cvv",
    "amount",
    "created_at",
];

fn base(id: &str) -> Value {
    json!({
        "id": id,
        "account_id": "merchant-1",
        "credit_card_number": "4111111111111111",
        "credit_card_name": "Ada Lovelace",
        "credit_card_expiration_month": 12,
        "credit_card_expiration_year": 2035,
        "credit_card_cvv": "987",
        "amount": 10.5
    })
}

/// `base` with `field` set to the raw JSON text `raw` (which may be
/// something `serde_json::Value` cannot hold, such as `1e400`).
fn with_raw(id: &str, field: &str, raw: &str) -> Vec<u8> {
    let mut v = base(id);
    v.as_object_mut().unwrap().remove(field);
    let text = v.to_string();
    let body = text.strip_suffix('}').unwrap();
    format!(r#"{body},"{field}":{raw}}}"#).into_bytes()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

pub fn cases(prefix: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("{prefix}-{n}")
    };
    let mut push = |name: String, key: Option<Vec<u8>>, payload: Option<Vec<u8>>| {
        cases.push(Case { name, key, payload, headers: Vec::new() });
    };

    // Dates at every edge, with offsets, and every type of created_at.
    let now = OffsetDateTime::now_utc();
    let mut dates: Vec<String> = [
        "9999-12-31T23:59:59-23:59",
        "9999-12-31T23:59:59.999999999+23:59",
        "9999-12-31T23:59:59.999999999Z",
        "0000-01-01T00:00:00+00:01",
        "0000-01-01T00:00:00-23:59",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "0999-12-31T23:59:59Z",
        "1000-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
        "2038-01-19T03:14:08Z",
        "2262-04-11T23:47:16.854775808Z",
        "2016-12-31T23:59:60Z",
        "+10000-01-01T00:00:00Z",
        "-0001-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-06-01T10:00:00+24:00",
        "2026-06-01T10:00:00",
        "",
        "now",
    ]
    .iter()
    .map(|s| format!("{s:?}"))
    .collect();
    dates.extend(
        [
            rfc3339(now - time::Duration::minutes(30)),
            rfc3339(now - time::Duration::hours(2)),
            rfc3339(now + time::Duration::minutes(3)),
            rfc3339(now + time::Duration::days(400)),
            rfc3339((now - time::Duration::minutes(59)).to_offset(time::macros::offset!(-23:59))),
        ]
        .iter()
        .map(|s| format!("{s:?}")),
    );
    dates.extend(["0", "-1", "1e400", "253402300800", "null", "true", "[]", "{}"].map(String::from));
    for date in dates {
        push(format!("created_at {date}"), None, Some(with_raw(&id(), "created_at", &date)));
    }

    // Huge and exotic numbers, as numbers and as strings.
    for amount in [
        "1e400",
        "-1e400",
        "1e-400",
        "1e9223372036854775807",
        "1e-9223372036854775808",
        "1e9223372036854775808",
        "99999999999999999999999999999999",
        "92233720368547758.07",
        "-92233720368547758.08",
        "-0",
        "0.0000000001",
        "10.50",
        "1E+2",
        "\"NaN\"",
        "\"Infinity\"",
        "\"-Infinity\"",
        "\" 10\"",
        "\"+10\"",
        "\"0x10\"",
        "\"1.\"",
        "\".5\"",
        "\"--1\"",
        "\"1e\"",
        "\"1e400\"",
    ] {
        push(format!("amount {amount}"), None, Some(with_raw(&id(), "amount", amount)));
    }
    let long_digits = "9".repeat(100_000);
    push("amount 100k digits".into(), None, Some(with_raw(&id(), "amount", &long_digits)));
    let long_fraction = format!("10.5{}", "0".repeat(50_000));
    push("amount 50k trailing zeros".into(), None, Some(with_raw(&id(), "amount", &long_fraction)));
    for field in ["credit_card_expiration_month", "credit_card_expiration_year", "credit_card_cvv"] {
        for v in [
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "18446744073709551616",
            "1e3",
            "12.0",
            "\"007\"",
            "\"0000000000000000000000012\"",
            "1e400",
        ] {
            push(format!("{field} {v}"), None, Some(with_raw(&id(), field, v)));
        }
    }

    // Wrong JSON types for every field.
    for field in FIELDS {
        for v in [
            "null",
            "true",
            "false",
            "0",
            "-1",
            "1.5",
            "\"x\"",
            "\"\"",
            "[]",
            "{}",
            "[1,2]",
            "{\"a\":1}",
            "\"\\u0000\"",
        ] {
            push(format!("{field} = {v}"), None, Some(with_raw(&id(), field, v)));
        }
        let mut v = base(&id());
        v.as_object_mut().unwrap().remove(field);
        push(format!("{field} missing"), None, Some(v.to_string().into_bytes()));
    }

    // Card numbers in odd shapes; strings of any length.
    for number in [
        "4111111111111111",
        "\"4111 1111 1111 1111\"",
        "\"4111-1111-1111-1111\"",
        "\"4111111111\\u00001111111\"",
        "\"٤١١١١١١١١١١١١١١١\"",
        "\"４１１１１１１１１１１１１１１１\"",
    ] {
        push(format!("card {number}"), None, Some(with_raw(&id(), "credit_card_number", number)));
    }
    push(
        "card 10k digits".into(),
        None,
        Some(with_raw(&id(), "credit_card_number", &format!("\"{}\"", "4".repeat(10_000)))),
    );
    push(
        "name 1 MB - 100 KB".into(),
        None,
        Some(with_raw(&id(), "credit_card_name", &format!("\"{}\"", "n".repeat(900_000)))),
    );
    push(
        "near-limit unreadable payload full of card numbers".into(),
        None,
        Some(format!("{{\"credit_card_cvv\":\"987\",\"x\":\"{}", "4111111111111111 ".repeat(50_000)).into_bytes()),
    );
    push("account 64".into(), None, Some(with_raw(&id(), "account_id", &format!("\"{}\"", "a".repeat(64)))));
    push("account 65".into(), None, Some(with_raw(&id(), "account_id", &format!("\"{}\"", "a".repeat(65)))));

    // Deep nesting: beyond the parser's limit, and just under it.
    for depth in [100_000, 200, 127, 120] {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        push(format!("extra nested {depth}"), None, Some(with_raw(&id(), "extra", &nested)));
        push(format!("amount nested {depth}"), None, Some(with_raw(&id(), "amount", &nested)));
    }
    let nested_objects = format!("{}1{}", "{\"a\":".repeat(5000), "}".repeat(5000));
    push("extra nested objects 5000".into(), None, Some(with_raw(&id(), "extra", &nested_objects)));

    // Ids at and over the limits, and of every type.
    let pad = |id: String, unit: &str, chars: usize| {
        let mut s = id;
        s.push('-');
        while s.chars().count() < chars {
            s.push_str(unit);
        }
        s
    };
    for (unit, chars) in [("x", 128), ("x", 129), ("😀", 128), ("😀", 129), ("é", 128), ("\u{200d}", 128)] {
        let the_id = pad(id(), unit, chars);
        push(
            format!("id {chars} x {unit:?}"),
            Some(the_id.clone().into_bytes()),
            Some(base(&the_id).to_string().into_bytes()),
        );
    }
    for bad in [" spaced", "tab\t", "line\u{2028}sep", "nul\u{0}", "\u{7f}del"] {
        let the_id = format!("{}{bad}", id());
        push(format!("id {bad:?}"), None, Some(base(&the_id).to_string().into_bytes()));
    }
    for raw in ["7", "null", "[]", "{}", "true", "\"\"", "\"\\ud800\"", "4111111111111111"] {
        push(format!("id = {raw}"), None, Some(with_raw("unused", "id", raw)));
    }
    push("duplicate id".into(), None, Some(format!(r#"{{"id":"{}","id":"{}"}}"#, id(), id()).into_bytes()));

    // Not JSON, not UTF-8, not an object, empty.
    let mut invalid_utf8 = base(&id()).to_string().into_bytes();
    let at = invalid_utf8.iter().position(|&b| b == b'A').unwrap();
    invalid_utf8[at] = 0xff;
    push("invalid utf-8 in a string".into(), None, Some(invalid_utf8));
    let mut id_bytes = format!(r#"{{"id":"{}"#, id()).into_bytes();
    id_bytes.extend_from_slice(b"\xc0\xaf\",\"credit_card_number\":\"4111111111111111\"}");
    push("overlong utf-8 in the id".into(), None, Some(id_bytes));
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(base(&id()).to_string().as_bytes());
    push("byte order mark".into(), None, Some(bom));
    for raw in [
        &b""[..],
        b" ",
        b"null",
        b"[]",
        b"{}",
        b"\"str\"",
        b"1",
        b"\xff\xfe\x00",
        b"{\"id\":\"x\"",
        b"4111111111111111",
    ] {
        push(format!("payload {:?}", String::from_utf8_lossy(raw)), None, Some(raw.to_vec()));
    }
    push("no payload".into(), Some(b"tombstone".to_vec()), None);
    let array = format!("[{},{}]", base(&id()), base(&id()));
    push("array of transactions".into(), None, Some(array.into_bytes()));
    let trailing = format!("{} trailing", base(&id()));
    push("trailing garbage".into(), None, Some(trailing.into_bytes()));

    // Hostile keys and headers.
    let mut key = b"4111111111111111-".to_vec();
    key.extend(std::iter::repeat_n(b'k', 100_000));
    push("huge key with a card number, unreadable payload".into(), Some(key), Some(b"{oops 4111111111111111".to_vec()));
    push("non-utf-8 key".into(), Some(vec![0xff, 0xfe, 0xfd]), Some(base(&id()).to_string().into_bytes()));
    for value in [vec![b'r'; 100_000], vec![0xff, 0xfe], b"req-ok".to_vec()] {
        cases.push(Case {
            name: format!("request_id header of {} bytes", value.len()),
            key: None,
            payload: Some(base(&id()).to_string().into_bytes()),
            headers: vec![("request_id", value)],
        });
    }
    cases
}
