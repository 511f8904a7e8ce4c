//! [`AcceptedRepository`] on SQLite.

use async_trait::async_trait;
use rusqlite::{params, Connection, Row};
use time::OffsetDateTime;
use transaction_model::{AccountId, Amount, CardBrand, MaskedCard, Status, TransactionId};

use super::SqliteRepository;
use crate::accepted::{AcceptedRepository, AcceptedTransaction, Decision, ListCursor, TransactionView};
use crate::timestamp::{from_sqlite_text, to_sqlite_text};
use crate::StoreError;

const SELECT: &str = "SELECT a.id, a.account_id, a.amount_cents, a.created_at, \
     t.status, t.error_message, t.card_brand, t.card_masked, t.processed_at \
     FROM accepted_transactions a LEFT JOIN transactions t ON t.id = a.id \
     WHERE a.account_id = ?1 AND (a.delivered = 1 OR t.id IS NOT NULL)";

fn read_view(row: &Row<'_>) -> rusqlite::Result<Result<TransactionView, StoreError>> {
    let id: String = row.get(0)?;
    let account_id: String = row.get(1)?;
    let amount_cents: i64 = row.get(2)?;
    let created_at: String = row.get(3)?;
    let status: Option<String> = row.get(4)?;
    let error_message: Option<String> = row.get(5)?;
    let card_brand: Option<String> = row.get(6)?;
    let card_masked: Option<String> = row.get(7)?;
    let processed_at: Option<String> = row.get(8)?;
    let corrupt = |reason: &str| StoreError::CorruptRow { id: id.clone(), reason: reason.into() };
    Ok((|| {
        let decision = match (status, processed_at) {
            (Some(status), Some(processed_at)) => Some(Decision {
                status: Status::parse(&status).ok_or_else(|| corrupt("status"))?,
                error_message: error_message.unwrap_or_default(),
                card_brand: card_brand
                    .map(|b| CardBrand::parse(&b).ok_or_else(|| corrupt("card_brand")))
                    .transpose()?,
                card_masked: card_masked.map(MaskedCard::from_stored),
                processed_at: from_sqlite_text(&processed_at).ok_or_else(|| corrupt("processed_at"))?,
            }),
            _ => None,
        };
        Ok(TransactionView {
            accepted: AcceptedTransaction {
                id: TransactionId::try_from(id.as_str()).map_err(|e| corrupt(&e.to_string()))?,
                account_id: AccountId::try_from(account_id.as_str()).map_err(|e| corrupt(&e.to_string()))?,
                amount: Amount::from_cents(amount_cents),
                created_at: from_sqlite_text(&created_at).ok_or_else(|| corrupt("created_at"))?,
            },
            decision,
        })
    })())
}

/// A retry under an Idempotency-Key records the same ids again: kept as is.
fn insert_intents(conn: &Connection, batch: &[AcceptedTransaction]) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO accepted_transactions (id, account_id, amount_cents, created_at, delivered) \
         VALUES (?1, ?2, ?3, ?4, 0) ON CONFLICT (id) DO NOTHING",
    )?;
    for a in batch {
        insert.execute(params![
            a.id.as_str(),
            a.account_id.as_str(),
            a.amount.cents(),
            to_sqlite_text(a.created_at)
        ])?;
    }
    Ok(())
}

fn mark(conn: &Connection, ids: &[TransactionId]) -> Result<(), StoreError> {
    let mut update = conn.prepare_cached("UPDATE accepted_transactions SET delivered = 1 WHERE id = ?1")?;
    for id in ids {
        update.execute([id.as_str()])?;
    }
    Ok(())
}

#[async_trait]
impl AcceptedRepository for SqliteRepository {
    async fn record_intents(&self, batch: &[AcceptedTransaction]) -> Result<(), StoreError> {
        self.record_and_mark(batch, &[]).await
    }

    async fn mark_delivered(&self, ids: &[TransactionId]) -> Result<(), StoreError> {
        self.record_and_mark(&[], ids).await
    }

    async fn record_and_mark(
        &self,
        intents: &[AcceptedTransaction],
        delivered: &[TransactionId],
    ) -> Result<(), StoreError> {
        let (intents, delivered) = (intents.to_vec(), delivered.to_vec());
        self.with_conn(move |conn| {
            let tx = conn.transaction()?;
            insert_intents(&tx, &intents)?;
            mark(&tx, &delivered)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn purge_undelivered(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.with_conn(move |conn| {
            let n = conn.execute(
                "DELETE FROM accepted_transactions WHERE delivered = 0 AND created_at < ?1 \
                 AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.id = accepted_transactions.id)",
                [to_sqlite_text(before)],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn find_accepted(
        &self,
        account: &AccountId,
        id: &TransactionId,
    ) -> Result<Option<TransactionView>, StoreError> {
        let (account, id) = (account.as_str().to_owned(), id.as_str().to_owned());
        self.with_read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!("{SELECT} AND a.id = ?2"))?;
            let mut rows = stmt.query_map(params![account, id], read_view)?;
            rows.next().transpose()?.transpose()
        })
        .await
    }

    async fn list_accepted(
        &self,
        account: &AccountId,
        limit: usize,
        after: Option<&ListCursor>,
    ) -> Result<Vec<TransactionView>, StoreError> {
        let account = account.as_str().to_owned();
        let after = after.map(|c| (to_sqlite_text(c.created_at), c.id.as_str().to_owned()));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_read(move |conn| {
            let order = "ORDER BY a.created_at DESC, a.id DESC LIMIT";
            let mut views = Vec::new();
            match after {
                None => {
                    let mut stmt = conn.prepare_cached(&format!("{SELECT} {order} ?2"))?;
                    for v in stmt.query_map(params![account, limit], read_view)? {
                        views.push(v??);
                    }
                }
                Some((created_at, id)) => {
                    let mut stmt = conn.prepare_cached(&format!(
                        "{SELECT} AND (a.created_at < ?2 OR (a.created_at = ?2 AND a.id < ?3)) {order} ?4"
                    ))?;
                    for v in stmt.query_map(params![account, created_at, id, limit], read_view)? {
                        views.push(v??);
                    }
                }
            }
            Ok(views)
        })
        .await
    }
}
