//! A transaction as the API shows it to its merchant. No card data beyond
//! what the processor stored (brand and masked number).

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use transaction_store::{AcceptedTransaction, TransactionView};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionResource {
    pub id: String,
    /// `pending` until the processor has stored its decision.
    pub status: String,
    /// Dollars with two decimals.
    pub amount: String,
    pub amount_cents: i64,
    pub created_at: String,
    pub processed_at: Option<String>,
    /// Why it was rejected; null unless rejected.
    pub error_message: Option<String>,
    pub card_brand: Option<String>,
    pub card_masked: Option<String>,
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    // A UTC OffsetDateTime within year 0..=9999 always formats.
    t.format(&Rfc3339).unwrap_or_default()
}

impl TransactionResource {
    pub fn pending(a: &AcceptedTransaction) -> Self {
        TransactionResource {
            id: a.id.to_string(),
            status: "pending".into(),
            amount: a.amount.to_string(),
            amount_cents: a.amount.cents(),
            created_at: rfc3339(a.created_at),
            processed_at: None,
            error_message: None,
            card_brand: None,
            card_masked: None,
        }
    }

    pub fn from_view(v: &TransactionView) -> Self {
        let mut r = Self::pending(&v.accepted);
        if let Some(d) = &v.decision {
            r.status = d.status.as_str().to_owned();
            r.processed_at = Some(rfc3339(d.processed_at));
            r.error_message = (!d.error_message.is_empty()).then(|| d.error_message.clone());
            r.card_brand = d.card_brand.map(|b| b.as_str().to_owned());
            r.card_masked = d.card_masked.as_ref().map(|m| m.as_str().to_owned());
        }
        r
    }
}
