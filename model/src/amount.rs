//! Money as integer cents, parsed exactly from decimal text.

use std::fmt;

use thiserror::Error;

/// An amount of money in integer cents. Never a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

/// Smallest amount that is approved: $1.00.
pub const MIN_APPROVED: Amount = Amount(100);
/// Largest amount that is approved: $1,000.00.
pub const MAX_APPROVED: Amount = Amount(100_000);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AmountError {
    #[error("amount is not a decimal number")]
    NotANumber,
    #[error("amount has more than two decimals")]
    TooPrecise,
    #[error("amount is out of range")]
    OutOfRange,
}

impl Amount {
    pub const fn from_cents(cents: i64) -> Self {
        Amount(cents)
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    /// Parses a decimal number of dollars (`10`, `10.5`, `-3.25`, `1e2`,
    /// `10.500`) into exact cents. The text is never turned into a float: a
    /// value that is not a whole number of cents is an error, not a rounding.
    pub fn parse_dollars(text: &str) -> Result<Self, AmountError> {
        let bytes = text.as_bytes();
        let mut i = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        // Collect the significant digits and where the decimal point sits.
        let mut digits: Vec<u8> = Vec::with_capacity(bytes.len());
        let mut int_len = 0usize;
        let mut seen_point = false;
        let mut any_digit = false;
        while i < bytes.len() {
            match bytes[i] {
                b'0'..=b'9' => {
                    digits.push(bytes[i] - b'0');
                    any_digit = true;
                    if !seen_point {
                        int_len += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                b'e' | b'E' => break,
                _ => return Err(AmountError::NotANumber),
            }
            i += 1;
        }
        if !any_digit {
            return Err(AmountError::NotANumber);
        }
        let mut exponent: i64 = 0;
        if i < bytes.len() {
            // Exponent part, as JSON allows: e[+-]digits.
            i += 1;
            let exp_text = &text[i..];
            let exp_digits = exp_text.strip_prefix(['+', '-']).unwrap_or(exp_text);
            if exp_digits.is_empty() || !exp_digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(AmountError::NotANumber);
            }
            exponent = exp_text.parse::<i64>().map_err(|_| AmountError::OutOfRange)?;
        }
        // The value is 0.digits * 10^(int_len + exponent); cents shift two more.
        let point = (int_len as i64).saturating_add(exponent).saturating_add(2);
        let mut cents: i64 = 0;
        for (pos, &d) in digits.iter().enumerate() {
            let pos = pos as i64;
            if pos < point {
                cents =
                    cents.checked_mul(10).and_then(|c| c.checked_add(i64::from(d))).ok_or(AmountError::OutOfRange)?;
            } else if d != 0 {
                return Err(AmountError::TooPrecise);
            }
        }
        // Trailing zeros implied by a positive exponent.
        let missing = point.saturating_sub(digits.len() as i64);
        if missing > 0 && cents != 0 {
            for _ in 0..missing {
                cents = cents.checked_mul(10).ok_or(AmountError::OutOfRange)?;
            }
        }
        Ok(Amount(if negative { -cents } else { cents }))
    }
}

impl fmt::Display for Amount {
    /// Dollars with exactly two decimals: `10.50`, `-0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exact_cents() {
        let cases = [
            ("10", 1000),
            ("10.5", 1050),
            ("10.50", 1050),
            ("10.500", 1050),
            ("0.99", 99),
            ("1", 100),
            ("1.00", 100),
            ("1000", 100_000),
            ("1000.01", 100_001),
            ("-3.25", -325),
            ("+2", 200),
            ("1e2", 10_000),
            ("1.5E1", 1500),
            ("125e-2", 125),
            ("0", 0),
            (".5", 50),
            ("5.", 500),
            ("0.1", 10),
        ];
        for (text, cents) in cases {
            assert_eq!(Amount::parse_dollars(text), Ok(Amount(cents)), "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_exact_cents() {
        assert_eq!(Amount::parse_dollars("10.555"), Err(AmountError::TooPrecise));
        assert_eq!(Amount::parse_dollars("0.001"), Err(AmountError::TooPrecise));
        assert_eq!(Amount::parse_dollars("1e-3"), Err(AmountError::TooPrecise));
        for bad in ["", "-", ".", "abc", "1,000", "$10", " 10", "10 ", "1..2", "1e", "1e+", "NaN", "0x10"] {
            assert_eq!(Amount::parse_dollars(bad), Err(AmountError::NotANumber), "{bad:?}");
        }
        assert_eq!(Amount::parse_dollars("99999999999999999999999"), Err(AmountError::OutOfRange));
        assert_eq!(Amount::parse_dollars("1e400"), Err(AmountError::OutOfRange));
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Amount(1050).to_string(), "10.50");
        assert_eq!(Amount(5).to_string(), "0.05");
        assert_eq!(Amount(-5).to_string(), "-0.05");
        assert_eq!(Amount(100_000).to_string(), "1000.00");
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(cents in -10_000_000_000i64..10_000_000_000i64) {
            let amount = Amount(cents);
            prop_assert_eq!(Amount::parse_dollars(&amount.to_string()), Ok(amount));
        }

        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = Amount::parse_dollars(&text);
        }

        #[test]
        fn three_significant_decimals_are_rejected(whole in 0u32..100_000, frac in 1u32..10) {
            let text = format!("{whole}.00{frac}");
            prop_assert_eq!(Amount::parse_dollars(&text), Err(AmountError::TooPrecise));
        }
    }
}
