//! Transactions as merchants send them: mostly approvable, with every
//! rejection reason represented.

use rand::Rng;
use time::OffsetDateTime;
use transaction_model::{Amount, TransactionMessage};

const CARDS: [&str; 5] =
    ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "3530111333300000"];
const NAMES: [&str; 5] = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra"];

/// Transaction `i` for `account_id`: about 80 % approvable, the rest spread
/// over the rejection reasons.
pub fn transaction(rng: &mut impl Rng, id: String, account_id: &str) -> TransactionMessage {
    let now = OffsetDateTime::now_utc();
    let mut m = TransactionMessage {
        id,
        account_id: account_id.to_owned(),
        credit_card_number: CARDS[rng.gen_range(0..CARDS.len())].to_owned(),
        credit_card_name: NAMES[rng.gen_range(0..NAMES.len())].to_owned(),
        credit_card_expiration_month: rng.gen_range(1..=12),
        credit_card_expiration_year: now.year() + rng.gen_range(1..6),
        credit_card_cvv: format!("{:03}", rng.gen_range(0..1000)),
        amount: Amount::from_cents(rng.gen_range(100..=100_000)),
        created_at: Some(now),
    };
    match rng.gen_range(0..100) {
        0..=79 => {}
        80..=84 => m.credit_card_number = "4111111111111112".into(),
        85..=88 => m.amount = Amount::from_cents(rng.gen_range(100_001..500_000)),
        89..=92 => m.amount = Amount::from_cents(rng.gen_range(1..100)),
        93..=95 => m.credit_card_cvv = "12".into(),
        96..=97 => m.credit_card_expiration_year = now.year() - 1,
        _ => m.credit_card_name = " ".into(),
    }
    m
}
