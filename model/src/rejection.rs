/// Why a transaction was rejected. The messages are part of the topic
/// contract: consumers of `transactions_result` match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    InvalidCardNumber,
    InvalidExpirationMonth,
    InvalidExpirationYear,
    InvalidCvv,
    /// The CVV was sealed under a key destroyed since: the authorization
    /// window has passed (README "Card data").
    CvvExpired,
    InvalidName,
    OverLimit,
    BelowMinimum,
    InvalidAmount,
}

impl RejectionReason {
    pub const ALL: [RejectionReason; 9] = [
        RejectionReason::InvalidCardNumber,
        RejectionReason::InvalidExpirationMonth,
        RejectionReason::InvalidExpirationYear,
        RejectionReason::InvalidCvv,
        RejectionReason::CvvExpired,
        RejectionReason::InvalidName,
        RejectionReason::OverLimit,
        RejectionReason::BelowMinimum,
        RejectionReason::InvalidAmount,
    ];

    /// The exact `error_message` published and stored.
    pub fn message(self) -> &'static str {
        match self {
            RejectionReason::InvalidCardNumber => "invalid credit card number",
            RejectionReason::InvalidExpirationMonth => "invalid expiration month",
            RejectionReason::InvalidExpirationYear => "invalid expiration year",
            RejectionReason::InvalidCvv => "invalid credit card cvv",
            RejectionReason::CvvExpired => "credit card cvv expired: the authorization window has passed",
            RejectionReason::InvalidName => "invalid credit card name",
            RejectionReason::OverLimit => "you dont have limit for this transaction",
            RejectionReason::BelowMinimum => "the amount must be greater than 1",
            RejectionReason::InvalidAmount => "invalid amount",
        }
    }

    /// A short, stable label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            RejectionReason::InvalidCardNumber => "invalid_card_number",
            RejectionReason::InvalidExpirationMonth => "invalid_expiration_month",
            RejectionReason::InvalidExpirationYear => "invalid_expiration_year",
            RejectionReason::InvalidCvv => "invalid_cvv",
            RejectionReason::CvvExpired => "cvv_expired",
            RejectionReason::InvalidName => "invalid_name",
            RejectionReason::OverLimit => "over_limit",
            RejectionReason::BelowMinimum => "below_minimum",
            RejectionReason::InvalidAmount => "invalid_amount",
        }
    }

    pub fn from_message(message: &str) -> Option<Self> {
        RejectionReason::ALL.into_iter().find(|r| r.message() == message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for r in RejectionReason::ALL {
            assert_eq!(RejectionReason::from_message(r.message()), Some(r));
        }
        assert_eq!(RejectionReason::from_message(""), None);
    }
}
