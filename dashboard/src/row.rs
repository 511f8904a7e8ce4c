//! One transaction as shown in the "latest transactions" table.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use transaction_model::{RejectionReason, ResultMessage, Status};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub merchant: Option<String>,
    pub amount: Option<String>,
    pub amount_cents: Option<i64>,
    pub card_brand: Option<&'static str>,
    /// Never more than the first six and last four digits.
    pub card_masked: Option<String>,
    pub status: &'static str,
    /// Stable label of the rejection reason (`other` when unknown).
    pub reason: Option<&'static str>,
    pub processed_at: String,
}

impl Row {
    pub fn of(result: &ResultMessage) -> Self {
        let reason = match result.status {
            Status::Approved => None,
            Status::Rejected => Some(reason_label(&result.error_message)),
        };
        Row {
            id: result.id.clone(),
            merchant: result.account_id.clone(),
            amount: result.amount.clone(),
            amount_cents: result.amount_cents,
            card_brand: result.card_brand.map(|b| b.as_str()),
            card_masked: result.card_masked.as_ref().and_then(|c| safe_mask(c.as_str())),
            status: result.status.as_str(),
            reason,
            processed_at: result.processed_at.format(&Rfc3339).unwrap_or_default(),
        }
    }
}

/// The label of a rejection message, `other` for one this build does not know.
pub fn reason_label(message: &str) -> &'static str {
    RejectionReason::from_message(message).map_or("other", RejectionReason::label)
}

/// Re-masks what the topic calls masked: whatever a faulty producer wrote,
/// at most the first six and last four digits leave this service.
pub fn safe_mask(text: &str) -> Option<String> {
    let n = text.len();
    if !(13..=19).contains(&n) || !text.bytes().all(|b| b.is_ascii_digit() || b == b'*') {
        return None;
    }
    let mut out = String::with_capacity(n);
    out.push_str(&text[..6]);
    out.extend(std::iter::repeat_n('*', n - 10));
    out.push_str(&text[n - 4..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_more_than_six_and_four() {
        assert_eq!(safe_mask("411111******1111").as_deref(), Some("411111******1111"));
        // A producer bug that published the full number is masked here.
        assert_eq!(safe_mask("4111111111111111").as_deref(), Some("411111******1111"));
        assert_eq!(safe_mask("378282*****0005").as_deref(), Some("378282*****0005"));
        assert_eq!(safe_mask("4111 1111 1111 1111"), None);
        assert_eq!(safe_mask("123456789012"), None);
        assert_eq!(safe_mask("41111111111111111111"), None);
    }

    #[test]
    fn unknown_reasons_are_other() {
        assert_eq!(reason_label("invalid credit card cvv"), "invalid_cvv");
        assert_eq!(reason_label("something new"), "other");
        assert_eq!(reason_label(""), "other");
    }
}
