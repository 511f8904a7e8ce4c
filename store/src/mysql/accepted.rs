//! [`AcceptedRepository`] on MySQL / MariaDB.

use async_trait::async_trait;
use sqlx::mysql::MySqlRow;
use sqlx::{QueryBuilder, Row};
use time::{OffsetDateTime, PrimitiveDateTime};
use transaction_model::{AccountId, Amount, CardBrand, MaskedCard, Status, TransactionId};

use super::{binary_text, MySqlRepository, ROWS_PER_STATEMENT};
use crate::accepted::{AcceptedRepository, AcceptedTransaction, Decision, ListCursor, TransactionView};
use crate::timestamp::to_utc_primitive;
use crate::StoreError;

const SELECT: &str = "SELECT a.id, a.account_id, a.amount_cents, a.created_at, \
     t.status, t.error_message, t.card_brand, t.card_masked, t.processed_at \
     FROM accepted_transactions a LEFT JOIN transactions t ON t.id = a.id \
     WHERE a.account_id = ? AND (a.delivered = 1 OR t.id IS NOT NULL)";

fn read_view(row: &MySqlRow) -> Result<TransactionView, StoreError> {
    let id = binary_text(row, "id")?.unwrap_or_default();
    let corrupt = |reason: &str| StoreError::CorruptRow { id: id.clone(), reason: reason.into() };
    let account_id = binary_text(row, "account_id")?.unwrap_or_default();
    let created_at: PrimitiveDateTime = row.try_get("created_at")?;
    let status: Option<String> = row.try_get("status")?;
    let processed_at: Option<PrimitiveDateTime> = row.try_get("processed_at")?;
    let decision = match (status, processed_at) {
        (Some(status), Some(processed_at)) => {
            let card_brand: Option<String> = row.try_get("card_brand")?;
            let card_masked: Option<String> = row.try_get("card_masked")?;
            Some(Decision {
                status: Status::parse(&status).ok_or_else(|| corrupt("status"))?,
                error_message: row.try_get::<Option<String>, _>("error_message")?.unwrap_or_default(),
                card_brand: card_brand
                    .map(|b| CardBrand::parse(&b).ok_or_else(|| corrupt("card_brand")))
                    .transpose()?,
                card_masked: card_masked.map(MaskedCard::from_stored),
                processed_at: processed_at.assume_utc(),
            })
        }
        _ => None,
    };
    Ok(TransactionView {
        accepted: AcceptedTransaction {
            id: TransactionId::try_from(id.as_str()).map_err(|e| corrupt(&e.to_string()))?,
            account_id: AccountId::try_from(account_id.as_str()).map_err(|e| corrupt(&e.to_string()))?,
            amount: Amount::from_cents(row.try_get("amount_cents")?),
            created_at: created_at.assume_utc(),
        },
        decision,
    })
}

#[async_trait]
impl AcceptedRepository for MySqlRepository {
    async fn record_intents(&self, batch: &[AcceptedTransaction]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::new(
                "INSERT INTO accepted_transactions (id, account_id, amount_cents, created_at, delivered) ",
            );
            query.push_values(chunk, |mut row, a| {
                row.push_bind(a.id.as_str())
                    .push_bind(a.account_id.as_str())
                    .push_bind(a.amount.cents())
                    .push_bind(to_utc_primitive(a.created_at))
                    .push_bind(0i8);
            });
            // A retry under an Idempotency-Key records the same ids again.
            query.push(" ON DUPLICATE KEY UPDATE id = id");
            query.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_delivered(&self, ids: &[TransactionId]) -> Result<(), StoreError> {
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::new("UPDATE accepted_transactions SET delivered = 1 WHERE id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            query.push(")");
            query.build().execute(self.pool()).await?;
        }
        Ok(())
    }

    async fn purge_undelivered(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let n = sqlx::query(
            "DELETE FROM accepted_transactions WHERE delivered = 0 AND created_at < ? \
             AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.id = accepted_transactions.id)",
        )
        .bind(to_utc_primitive(before))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn find_accepted(
        &self,
        account: &AccountId,
        id: &TransactionId,
    ) -> Result<Option<TransactionView>, StoreError> {
        let row = sqlx::query(&format!("{SELECT} AND a.id = ?"))
            .bind(account.as_str())
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(read_view).transpose()
    }

    async fn list_accepted(
        &self,
        account: &AccountId,
        limit: usize,
        after: Option<&ListCursor>,
    ) -> Result<Vec<TransactionView>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let order = "ORDER BY a.created_at DESC, a.id DESC LIMIT ?";
        let rows = match after {
            None => {
                sqlx::query(&format!("{SELECT} {order}"))
                    .bind(account.as_str())
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
            Some(c) => {
                let at = to_utc_primitive(c.created_at);
                sqlx::query(&format!("{SELECT} AND (a.created_at < ? OR (a.created_at = ? AND a.id < ?)) {order}"))
                    .bind(account.as_str())
                    .bind(at)
                    .bind(at)
                    .bind(c.id.as_str())
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(read_view).collect()
    }
}
