//! The approval rules, applied in a fixed order; the first that fails gives
//! the rejection reason.

use std::borrow::Cow;

use time::OffsetDateTime;
use transaction_model::amount::{MAX_APPROVED, MIN_APPROVED};
use transaction_model::message::{json_integer, json_number_text, json_string};
use transaction_model::{
    AccountId, Amount, CardNumber, MaskedCard, ProcessedTransaction, RawTransaction, RejectionReason, Status,
    TransactionId,
};

use crate::card_hash::CardHasher;
use crate::created_at::decision_time;

/// Expiry years accepted after the transaction's year.
const MAX_YEARS_AHEAD: i64 = 20;
const MAX_NAME_CHARS: usize = 100;

/// Decides one transaction. The rules run at the message's `created_at` when
/// it lies in the window around `received_at` (see [`crate::created_at`]),
/// else at `received_at`.
pub fn evaluate(
    id: TransactionId,
    raw: &RawTransaction<'_>,
    received_at: OffsetDateTime,
    hasher: &CardHasher,
) -> ProcessedTransaction {
    decide(id, raw, received_at, hasher, false).0
}

/// [`evaluate`] for a message whose sealed fields were opened, with the rule
/// that rejected it (`None`: approved), so the caller need not read the
/// reason back from the message text. With `cvv_destroyed` its CVV's key is
/// gone, and the CVV rule rejects with [`RejectionReason::CvvExpired`] (the
/// earlier rules still come first).
pub fn decide(
    id: TransactionId,
    raw: &RawTransaction<'_>,
    received_at: OffsetDateTime,
    hasher: &CardHasher,
    cvv_destroyed: bool,
) -> (ProcessedTransaction, Option<RejectionReason>) {
    let created_at = decision_time(json_string(raw.created_at).as_deref(), received_at);
    let number_text = json_string(raw.credit_card_number);
    let card = number_text.as_deref().and_then(|t| CardNumber::try_from(t).ok());
    let amount = json_number_text(raw.amount).and_then(|t| Amount::parse_dollars(&t).ok());

    let verdict = check(raw, card.as_ref(), amount, created_at, cvv_destroyed);

    // Only first 6 / last 4 and a keyed hash are kept, valid card or not.
    let (card_masked, card_hash) = match (&card, number_text.as_deref()) {
        (Some(card), _) => (Some(card.masked()), Some(hasher.hash(card))),
        (None, Some(text)) => match MaskedCard::from_untrusted(text) {
            Some(masked) => {
                let digits: String = text.chars().filter(|c| *c != ' ').collect();
                (Some(masked), Some(hasher.hash_digits(&digits)))
            }
            None => (None, None),
        },
        (None, None) => (None, None),
    };

    let reason = verdict.err();
    let transaction = ProcessedTransaction {
        id,
        account_id: json_string(raw.account_id).and_then(|a| AccountId::try_from(a.as_ref()).ok()),
        amount,
        status: if reason.is_none() { Status::Approved } else { Status::Rejected },
        error_message: reason.map(|r| r.message().to_owned()).unwrap_or_default(),
        card_brand: card.as_ref().map(CardNumber::brand),
        card_masked,
        card_hash_key_id: card_hash.as_ref().map(|_| hasher.key_id().to_owned()),
        card_hash,
        created_at,
        processed_at: transaction_store::truncate_to_micros(OffsetDateTime::now_utc()),
    };
    (transaction, reason)
}

fn check(
    raw: &RawTransaction<'_>,
    card: Option<&CardNumber>,
    amount: Option<Amount>,
    at: OffsetDateTime,
    cvv_destroyed: bool,
) -> Result<(), RejectionReason> {
    use RejectionReason::*;

    card.ok_or(InvalidCardNumber)?;

    let month = json_integer(raw.credit_card_expiration_month)
        .filter(|m| (1..=12).contains(m))
        .ok_or(InvalidExpirationMonth)?;

    let year = json_integer(raw.credit_card_expiration_year).ok_or(InvalidExpirationYear)?;
    let this_year = i64::from(at.year());
    if year < this_year || year > this_year + MAX_YEARS_AHEAD {
        return Err(InvalidExpirationYear);
    }
    if year == this_year && month < i64::from(u8::from(at.month())) {
        return Err(InvalidExpirationMonth);
    }

    if cvv_destroyed {
        return Err(CvvExpired);
    }
    let cvv = json_number_text(raw.credit_card_cvv).ok_or(InvalidCvv)?;
    if !(3..=4).contains(&cvv.len()) || !cvv.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidCvv);
    }

    let name: Option<Cow<'_, str>> = json_string(raw.credit_card_name);
    match name {
        Some(n) if !n.trim().is_empty() && n.chars().count() <= MAX_NAME_CHARS => {}
        _ => return Err(InvalidName),
    }

    let amount = amount.ok_or(InvalidAmount)?;
    if amount > MAX_APPROVED {
        return Err(OverLimit);
    }
    if amount < MIN_APPROVED {
        return Err(BelowMinimum);
    }
    Ok(())
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
