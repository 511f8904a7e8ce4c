//! Card numbers: parsing, the Luhn check, brand and masking.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A card number that is 13–19 digits and passes the Luhn check.
///
/// `Debug` and `Display` never print the number: only its masked form.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CardNumberError {
    #[error("card number contains a character other than digits and spaces")]
    NotDigits,
    #[error("card number must have 13 to 19 digits")]
    BadLength,
    #[error("card number fails the Luhn check")]
    BadChecksum,
}

impl TryFrom<&str> for CardNumber {
    type Error = CardNumberError;

    /// Spaces are allowed anywhere and ignored; anything else but digits is an error.
    fn try_from(text: &str) -> Result<Self, Self::Error> {
        let mut digits = String::with_capacity(19);
        for c in text.chars() {
            match c {
                '0'..='9' => {
                    if digits.len() == 19 {
                        return Err(CardNumberError::BadLength);
                    }
                    digits.push(c)
                }
                ' ' => {}
                _ => return Err(CardNumberError::NotDigits),
            }
        }
        if digits.len() < 13 {
            return Err(CardNumberError::BadLength);
        }
        if !luhn_valid(digits.as_bytes()) {
            return Err(CardNumberError::BadChecksum);
        }
        Ok(CardNumber(digits))
    }
}

impl CardNumber {
    /// The digits, for hashing. Callers must never log or store them.
    pub fn expose_digits(&self) -> &str {
        &self.0
    }

    pub fn brand(&self) -> CardBrand {
        CardBrand::of_digits(&self.0)
    }

    pub fn masked(&self) -> MaskedCard {
        MaskedCard::of_digits(&self.0)
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CardNumber").field(&self.masked().as_str()).finish()
    }
}

/// The Luhn (mod 10) check over ASCII digits; anything else is invalid.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &b) in digits.iter().rev().enumerate() {
        // Not `b - b'0'`: a byte below '0' would overflow (a panic in debug).
        let Some(mut d) = char::from(b).to_digit(10) else {
            return false;
        };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// First six and last four digits, the rest as `*`: `411111******1111`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MaskedCard(String);

impl MaskedCard {
    /// Masks a digit string. Fewer than 13 digits would reveal most of the
    /// number, so such strings give `None`.
    pub fn from_untrusted(text: &str) -> Option<Self> {
        let digits: String = text.chars().filter(|c| *c != ' ').collect();
        if digits.len() < 13 || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self::of_digits(&digits))
    }

    fn of_digits(digits: &str) -> Self {
        let n = digits.len();
        let mut s = String::with_capacity(n);
        s.push_str(&digits[..6]);
        s.extend(std::iter::repeat_n('*', n - 10));
        s.push_str(&digits[n - 4..]);
        MaskedCard(s)
    }

    /// Rebuilds a masked value read back from storage; it is already masked.
    pub fn from_stored(masked: String) -> Self {
        MaskedCard(masked)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Card scheme, from the number's leading digits (IIN ranges).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardBrand {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Jcb,
    Diners,
    Unionpay,
    Unknown,
}

impl CardBrand {
    fn of_digits(d: &str) -> Self {
        let prefix = |n: usize| d.get(..n).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
        match (prefix(1), prefix(2), prefix(3), prefix(4)) {
            (4, ..) => CardBrand::Visa,
            (_, 34 | 37, ..) => CardBrand::Amex,
            (_, 51..=55, ..) | (.., 2221..=2720) => CardBrand::Mastercard,
            (.., 6011) | (_, 65, ..) | (_, _, 644..=649, _) => CardBrand::Discover,
            (.., 3528..=3589) => CardBrand::Jcb,
            (_, _, 300..=305, _) | (_, 36 | 38, ..) => CardBrand::Diners,
            (_, 62, ..) => CardBrand::Unionpay,
            _ => CardBrand::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CardBrand::Visa => "visa",
            CardBrand::Mastercard => "mastercard",
            CardBrand::Amex => "amex",
            CardBrand::Discover => "discover",
            CardBrand::Jcb => "jcb",
            CardBrand::Diners => "diners",
            CardBrand::Unionpay => "unionpay",
            CardBrand::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "visa" => CardBrand::Visa,
            "mastercard" => CardBrand::Mastercard,
            "amex" => CardBrand::Amex,
            "discover" => CardBrand::Discover,
            "jcb" => CardBrand::Jcb,
            "diners" => CardBrand::Diners,
            "unionpay" => CardBrand::Unionpay,
            "unknown" => CardBrand::Unknown,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_digit(body: &str) -> char {
        for d in b'0'..=b'9' {
            let mut s = body.as_bytes().to_vec();
            s.push(d);
            if luhn_valid(&s) {
                return d as char;
            }
        }
        unreachable!()
    }

    #[test]
    fn known_test_numbers() {
        for (n, brand) in [
            ("4111111111111111", CardBrand::Visa),
            ("4111 1111 1111 1111", CardBrand::Visa),
            ("5555555555554444", CardBrand::Mastercard),
            ("2223003122003222", CardBrand::Mastercard),
            ("378282246310005", CardBrand::Amex),
            ("6011111111111117", CardBrand::Discover),
            ("3530111333300000", CardBrand::Jcb),
            ("30569309025904", CardBrand::Diners),
            ("4222222222222", CardBrand::Visa),
        ] {
            let card = CardNumber::try_from(n).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(card.brand(), brand, "{n}");
        }
    }

    #[test]
    fn rejects_bad_numbers() {
        assert_eq!(CardNumber::try_from("4111111111111112"), Err(CardNumberError::BadChecksum));
        assert_eq!(CardNumber::try_from("4111-1111-1111-1111"), Err(CardNumberError::NotDigits));
        assert_eq!(CardNumber::try_from("４111111111111111"), Err(CardNumberError::NotDigits));
        assert_eq!(CardNumber::try_from(""), Err(CardNumberError::BadLength));
        assert_eq!(CardNumber::try_from("   "), Err(CardNumberError::BadLength));
        // 12 digits that pass Luhn are still too short; 20 too long.
        let twelve = format!("41111111111{}", check_digit("41111111111"));
        assert_eq!(CardNumber::try_from(twelve.as_str()), Err(CardNumberError::BadLength));
        let twenty = format!("4111111111111111111{}", check_digit("4111111111111111111"));
        assert_eq!(CardNumber::try_from(twenty.as_str()), Err(CardNumberError::BadLength));
    }

    #[test]
    fn length_edges_13_and_19_are_valid() {
        let body13 = "411111111111";
        let n13 = format!("{body13}{}", check_digit(body13));
        assert!(CardNumber::try_from(n13.as_str()).is_ok());
        let body19 = "411111111111111111";
        let n19 = format!("{body19}{}", check_digit(body19));
        assert!(CardNumber::try_from(n19.as_str()).is_ok());
    }

    #[test]
    fn masks_and_never_prints_the_number() {
        let card = CardNumber::try_from("4111 1111 1111 1111").unwrap();
        assert_eq!(card.masked().as_str(), "411111******1111");
        let debug = format!("{card:?}");
        assert!(!debug.contains("4111111111111111"), "{debug}");
        assert_eq!(MaskedCard::from_untrusted("378282246310005").unwrap().as_str(), "378282*****0005");
        assert_eq!(MaskedCard::from_untrusted("123456789012"), None);
        assert_eq!(MaskedCard::from_untrusted("41111111111x1111"), None);
    }

    proptest! {
        #[test]
        fn a_check_digit_makes_any_body_valid(body in "[0-9]{12,18}") {
            let n = format!("{body}{}", check_digit(&body));
            prop_assert!(CardNumber::try_from(n.as_str()).is_ok());
        }

        #[test]
        fn bytes_that_are_not_digits_never_pass(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            prop_assume!(bytes.iter().any(|b| !b.is_ascii_digit()));
            prop_assert!(!luhn_valid(&bytes));
        }

        #[test]
        fn changing_one_digit_breaks_luhn(body in "[0-9]{12,18}", pos in 0usize..19, delta in 1u8..10) {
            let n = format!("{body}{}", check_digit(&body));
            let pos = pos % n.len();
            let mut bytes = n.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            prop_assert!(!luhn_valid(&bytes));
        }

        #[test]
        fn mask_keeps_only_six_and_four(body in "[0-9]{13,19}") {
            let masked = MaskedCard::from_untrusted(&body).unwrap();
            prop_assert_eq!(masked.as_str().len(), body.len());
            prop_assert_eq!(&masked.as_str()[..6], &body[..6]);
            prop_assert_eq!(&masked.as_str()[body.len() - 4..], &body[body.len() - 4..]);
            prop_assert!(masked.as_str()[6..body.len() - 4].chars().all(|c| c == '*'));
        }
    }
}
