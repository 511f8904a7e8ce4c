//! The card fields that are sealed, by their name on the topic.

/// A sealed field; its name is part of what the ciphertext is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    CardNumber,
    CardName,
    ExpirationMonth,
    ExpirationYear,
    Cvv,
}

impl Field {
    pub const ALL: [Field; 5] =
        [Field::CardNumber, Field::CardName, Field::ExpirationMonth, Field::ExpirationYear, Field::Cvv];

    /// The field's name in the `transactions` message format.
    pub fn name(self) -> &'static str {
        match self {
            Field::CardNumber => "credit_card_number",
            Field::CardName => "credit_card_name",
            Field::ExpirationMonth => "credit_card_expiration_month",
            Field::ExpirationYear => "credit_card_expiration_year",
            Field::Cvv => "credit_card_cvv",
        }
    }
}
