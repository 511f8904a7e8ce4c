//! `Debug` of the topic messages that hold card fields: never the card data.
//! (Debug output ends up in logs and panic messages.)

use std::fmt;

use crate::message::{RawTransaction, TransactionMessage};

const REDACTED: &str = "<redacted>";

impl fmt::Debug for TransactionMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionMessage")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("credit_card_number", &REDACTED)
            .field("credit_card_name", &REDACTED)
            .field("credit_card_expiration_month", &REDACTED)
            .field("credit_card_expiration_year", &REDACTED)
            .field("credit_card_cvv", &REDACTED)
            .field("amount", &self.amount)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl fmt::Debug for RawTransaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = |v: Option<&serde_json::value::RawValue>| if v.is_some() { REDACTED } else { "absent" };
        f.debug_struct("RawTransaction")
            .field("id", &self.id)
            .field("account_id", &self.account_id.map(|v| v.get()))
            .field("credit_card_number", &present(self.credit_card_number))
            .field("credit_card_name", &present(self.credit_card_name))
            .field("credit_card_expiration_month", &present(self.credit_card_expiration_month))
            .field("credit_card_expiration_year", &present(self.credit_card_expiration_year))
            .field("credit_card_cvv", &present(self.credit_card_cvv))
            .field("amount", &self.amount.map(|v| v.get()))
            .field("created_at", &self.created_at.map(|v| v.get()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Amount, RawTransaction, TransactionMessage};

    #[test]
    fn debug_prints_no_card_data() {
        let message = TransactionMessage {
            id: "t1".into(),
            account_id: "acc".into(),
            credit_card_number: "4111111111111111".into(),
            credit_card_name: "Ada Lovelace".into(),
            credit_card_expiration_month: 11,
            credit_card_expiration_year: 2031,
            credit_card_cvv: "987".into(),
            amount: Amount::from_cents(1050),
            created_at: None,
        };
        let payload = serde_json::to_vec(&message).unwrap();
        let raw = RawTransaction::from_slice(&payload).unwrap();
        for text in [format!("{message:?}"), format!("{raw:?}"), format!("{message:#?}")] {
            for secret in ["4111", "Ada", "987", "2031"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            assert!(text.contains("t1") && text.contains("acc"), "{text}");
        }
    }
}
