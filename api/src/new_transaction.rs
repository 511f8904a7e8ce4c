//! The body of `POST /v1/transactions`, parsed into a [`NewTransaction`].
//!
//! Only the shape is checked here: types, presence, lengths, the amount's
//! format. Business rules (Luhn, expiry, limits) are the processor's, so a
//! well-shaped but bad card is accepted here and rejected there.

use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;
use transaction_model::message::{json_number_text, json_string};
use transaction_model::{Amount, AmountError};

use crate::error::ApiError;

/// Largest amount the API takes: $1,000,000,000.00. Larger values are not
/// a transaction this gateway can carry, whatever the processor's limits.
pub const MAX_AMOUNT_CENTS: i64 = 100_000_000_000;
pub const MAX_NAME_CHARS: usize = 100;
const MAX_AMOUNT_TEXT: usize = 64;

/// Fields are kept raw so that each gets a precise error with its name.
/// `deny_unknown_fields` makes a typo (or an `account_id`) a 422.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionRequest {
    #[serde(default)]
    pub credit_card_number: Option<Box<RawValue>>,
    #[serde(default)]
    pub credit_card_name: Option<Box<RawValue>>,
    #[serde(default)]
    pub credit_card_expiration_month: Option<Box<RawValue>>,
    #[serde(default)]
    pub credit_card_expiration_year: Option<Box<RawValue>>,
    #[serde(default)]
    pub credit_card_cvv: Option<Box<RawValue>>,
    #[serde(default)]
    pub amount: Option<Box<RawValue>>,
}

/// A transaction of valid shape. Holds card data: never logged (see Debug),
/// never stored by the API, only produced to Kafka.
#[derive(Clone, PartialEq, Eq)]
pub struct NewTransaction {
    /// Digits only.
    pub card_number: String,
    pub card_name: String,
    pub expiration_month: u32,
    pub expiration_year: i32,
    pub cvv: String,
    pub amount: Amount,
}

impl fmt::Debug for NewTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTransaction").field("amount", &self.amount).finish_non_exhaustive()
    }
}

fn required<'a>(raw: &'a Option<Box<RawValue>>, param: &str) -> Result<&'a RawValue, ApiError> {
    raw.as_deref().ok_or_else(|| ApiError::invalid("missing_field", param, format!("{param} is required")))
}

/// A JSON integer (not a float, not a string).
fn integer(raw: &RawValue) -> Option<i64> {
    let text = raw.get();
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        text.parse().ok()
    } else {
        None
    }
}

fn card_number(raw: &RawValue) -> Result<String, ApiError> {
    const P: &str = "credit_card_number";
    let bad = || ApiError::invalid("invalid_card_number_format", P, format!("{P} must be a string of 13 to 19 digits"));
    if !raw.get().starts_with('"') {
        return Err(bad());
    }
    let text = json_string(Some(raw)).ok_or_else(bad)?;
    if text.len() > 64 || !text.bytes().all(|b| b.is_ascii_digit() || b == b' ') {
        return Err(bad());
    }
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    if !(13..=19).contains(&digits.len()) {
        return Err(bad());
    }
    Ok(digits)
}

fn card_name(raw: &RawValue) -> Result<String, ApiError> {
    const P: &str = "credit_card_name";
    let bad = || {
        ApiError::invalid(
            "invalid_card_name",
            P,
            format!("{P} must be a non-blank string of at most {MAX_NAME_CHARS} characters"),
        )
    };
    if !raw.get().starts_with('"') {
        return Err(bad());
    }
    let text = json_string(Some(raw)).ok_or_else(bad)?;
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME_CHARS || trimmed.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(trimmed.to_owned())
}

fn month(raw: &RawValue) -> Result<u32, ApiError> {
    const P: &str = "credit_card_expiration_month";
    integer(raw)
        .filter(|m| (1..=12).contains(m))
        .and_then(|m| u32::try_from(m).ok())
        .ok_or_else(|| ApiError::invalid("invalid_expiration_month", P, format!("{P} must be an integer from 1 to 12")))
}

fn year(raw: &RawValue) -> Result<i32, ApiError> {
    const P: &str = "credit_card_expiration_year";
    integer(raw).filter(|y| (2000..=2199).contains(y)).and_then(|y| i32::try_from(y).ok()).ok_or_else(|| {
        ApiError::invalid("invalid_expiration_year", P, format!("{P} must be a four-digit year (2000 to 2199)"))
    })
}

fn cvv(raw: &RawValue) -> Result<String, ApiError> {
    const P: &str = "credit_card_cvv";
    let bad =
        || ApiError::invalid("invalid_cvv_format", P, format!("{P} must be 3 or 4 digits, as a string or an integer"));
    let text = if raw.get().starts_with('"') {
        json_string(Some(raw)).ok_or_else(bad)?.into_owned()
    } else {
        integer(raw).filter(|n| *n >= 0).ok_or_else(bad)?.to_string()
    };
    if !(3..=4).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(text)
}

fn amount(raw: &RawValue) -> Result<Amount, ApiError> {
    const P: &str = "amount";
    let text = json_number_text(Some(raw)).ok_or_else(|| {
        ApiError::invalid(
            "invalid_amount",
            P,
            "amount must be a number of dollars, as a JSON number or a numeric string",
        )
    })?;
    if text.len() > MAX_AMOUNT_TEXT {
        return Err(ApiError::invalid("invalid_amount", P, "amount is too long"));
    }
    let parsed = Amount::parse_dollars(&text).map_err(|e| match e {
        AmountError::NotANumber => ApiError::invalid("invalid_amount", P, "amount is not a decimal number"),
        AmountError::TooPrecise => ApiError::invalid("amount_too_precise", P, "amount has more than two decimals"),
        AmountError::OutOfRange => ApiError::invalid("amount_out_of_range", P, "amount is too large"),
    })?;
    if parsed.cents() <= 0 {
        return Err(ApiError::invalid("amount_not_positive", P, "amount must be greater than zero"));
    }
    if parsed.cents() > MAX_AMOUNT_CENTS {
        return Err(ApiError::invalid("amount_out_of_range", P, "amount is larger than 1000000000.00"));
    }
    Ok(parsed)
}

impl TryFrom<TransactionRequest> for NewTransaction {
    type Error = ApiError;

    fn try_from(r: TransactionRequest) -> Result<Self, Self::Error> {
        Ok(NewTransaction {
            card_number: card_number(required(&r.credit_card_number, "credit_card_number")?)?,
            card_name: card_name(required(&r.credit_card_name, "credit_card_name")?)?,
            expiration_month: month(required(&r.credit_card_expiration_month, "credit_card_expiration_month")?)?,
            expiration_year: year(required(&r.credit_card_expiration_year, "credit_card_expiration_year")?)?,
            cvv: cvv(required(&r.credit_card_cvv, "credit_card_cvv")?)?,
            amount: amount(required(&r.amount, "amount")?)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"credit_card_number":"4111 1111 1111 1111","credit_card_name":" Ada ","credit_card_expiration_month":12,
        "credit_card_expiration_year":2030,"credit_card_cvv":123,"amount":"10.5"}"#;

    fn with(field: &str, value: &str) -> String {
        let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(GOOD).unwrap();
        v.remove(field);
        let body = serde_json::to_string(&v).unwrap();
        if value.is_empty() {
            body
        } else {
            format!("{},\"{field}\":{value}}}", &body[..body.len() - 1])
        }
    }

    fn check(body: &str) -> Result<NewTransaction, (u16, &'static str, Option<String>)> {
        let r: TransactionRequest =
            crate::body::parse(body.as_bytes()).map_err(|e| (e.status().as_u16(), e.body().code, e.body().param))?;
        NewTransaction::try_from(r).map_err(|e| (e.status().as_u16(), e.body().code, e.body().param))
    }

    #[test]
    fn parses_a_good_body() {
        let t = check(GOOD).unwrap();
        assert_eq!(t.card_number, "4111111111111111");
        assert_eq!(t.card_name, "Ada");
        assert_eq!((t.expiration_month, t.expiration_year), (12, 2030));
        assert_eq!(t.cvv, "123");
        assert_eq!(t.amount, Amount::from_cents(1050));
        let shown = format!("{t:?}");
        assert!(!shown.contains("4111") && !shown.contains("123\"") && !shown.contains("Ada"), "{shown}");
        // Luhn is the processor's business: a bad checksum has a valid shape.
        assert!(check(&with("credit_card_number", "\"4111111111111112\"")).is_ok());
        assert_eq!(check(&with("amount", "10.50")).unwrap().amount.cents(), 1050);
        assert_eq!(check(&with("amount", "\"0.01\"")).unwrap().amount.cents(), 1);
        assert_eq!(check(&with("credit_card_cvv", "\"0123\"")).unwrap().cvv, "0123");
    }

    #[test]
    fn rejects_what_cannot_be_a_transaction() {
        let cases: &[(&str, &str, &str)] = &[
            ("credit_card_number", "4111111111111111", "invalid_card_number_format"),
            ("credit_card_number", "\"4111-1111-1111-1111\"", "invalid_card_number_format"),
            ("credit_card_number", "\"411111111111\"", "invalid_card_number_format"),
            ("credit_card_number", "\"41111111111111111111\"", "invalid_card_number_format"),
            ("credit_card_number", "", "missing_field"),
            ("credit_card_number", "null", "missing_field"),
            ("credit_card_name", "\"   \"", "invalid_card_name"),
            ("credit_card_name", "42", "invalid_card_name"),
            ("credit_card_name", &format!("\"{}\"", "x".repeat(101)), "invalid_card_name"),
            ("credit_card_name", "\"a\\u0000b\"", "invalid_card_name"),
            ("credit_card_expiration_month", "13", "invalid_expiration_month"),
            ("credit_card_expiration_month", "0", "invalid_expiration_month"),
            ("credit_card_expiration_month", "\"12\"", "invalid_expiration_month"),
            ("credit_card_expiration_month", "12.0", "invalid_expiration_month"),
            ("credit_card_expiration_year", "30", "invalid_expiration_year"),
            ("credit_card_expiration_year", "99999999999999999999999", "invalid_expiration_year"),
            ("credit_card_cvv", "12", "invalid_cvv_format"),
            ("credit_card_cvv", "\"12a\"", "invalid_cvv_format"),
            ("credit_card_cvv", "-123", "invalid_cvv_format"),
            ("credit_card_cvv", "[1]", "invalid_cvv_format"),
            ("amount", "-5", "amount_not_positive"),
            ("amount", "0", "amount_not_positive"),
            ("amount", "\"0.00\"", "amount_not_positive"),
            ("amount", "10.555", "amount_too_precise"),
            ("amount", "1e400", "amount_out_of_range"),
            ("amount", "99999999999999999999999", "amount_out_of_range"),
            ("amount", "1000000000.01", "amount_out_of_range"),
            ("amount", "\"ten\"", "invalid_amount"),
            ("amount", "\"\"", "invalid_amount"),
            ("amount", "true", "invalid_amount"),
            ("amount", "{}", "invalid_amount"),
        ];
        for (field, value, code) in cases {
            let got = check(&with(field, value)).unwrap_err();
            assert_eq!(got.0, 422, "{field}={value}");
            assert_eq!(got.1, *code, "{field}={value}");
            assert_eq!(got.2.as_deref(), Some(*field), "{field}={value}");
        }
        let got = check(&with("account_id", "\"someone-else\"")).unwrap_err();
        assert_eq!((got.0, got.1), (422, "unknown_field"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn outcome(bytes: &[u8]) -> Result<NewTransaction, ApiError> {
            crate::body::parse::<TransactionRequest>(bytes).and_then(NewTransaction::try_from)
        }

        fn json_value() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
                "[0-9 .eE+-]{0,30}".prop_map(serde_json::Value::from),
                any::<String>().prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(3, 16, 4, |inner| prop::collection::vec(inner, 0..4).prop_map(serde_json::Value::from))
        }

        proptest! {
            /// Any bytes: a 4xx or a transaction, never a panic or a 5xx.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
                if let Err(e) = outcome(&bytes) {
                    prop_assert!(e.status().is_client_error());
                }
            }

            /// Any value in any field: a 4xx with the field named, or a
            /// transaction whose amount is positive whole cents.
            #[test]
            fn arbitrary_field_values_are_4xx_or_valid(
                field in prop::sample::select(vec![
                    "credit_card_number", "credit_card_name", "credit_card_expiration_month",
                    "credit_card_expiration_year", "credit_card_cvv", "amount",
                ]),
                value in json_value(),
            ) {
                let mut body: serde_json::Map<String, serde_json::Value> = serde_json::from_str(GOOD).unwrap();
                body.insert(field.to_owned(), value);
                match outcome(serde_json::to_string(&body).unwrap().as_bytes()) {
                    Ok(t) => prop_assert!(t.amount.cents() > 0 && t.amount.cents() <= MAX_AMOUNT_CENTS),
                    Err(e) => {
                        prop_assert_eq!(e.status().as_u16(), 422);
                        let param = e.body().param;
                        prop_assert_eq!(param.as_deref(), Some(field));
                    }
                }
            }
        }
    }
}
