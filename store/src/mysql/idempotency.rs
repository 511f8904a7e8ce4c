//! [`IdempotencyRepository`] on MySQL / MariaDB.

use async_trait::async_trait;
use sqlx::Row;
use time::{OffsetDateTime, PrimitiveDateTime};
use transaction_model::AccountId;

use super::MySqlRepository;
use crate::idempotency::{
    classify, cutoff, IdempotencyBegin, IdempotencyRepository, IdempotencyTimes, StoredResponse, RELEASED_AT,
};
use crate::timestamp::{to_utc_primitive, truncate_to_micros};
use crate::StoreError;

#[async_trait]
impl IdempotencyRepository for MySqlRepository {
    async fn begin_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        times: IdempotencyTimes,
    ) -> Result<IdempotencyBegin, StoreError> {
        // Each statement is atomic on its own; the primary key makes the
        // insert the arbiter between concurrent requests.
        sqlx::query("DELETE FROM idempotency_keys WHERE account_id = ? AND idem_key = ? AND created_at < ?")
            .bind(account.as_str())
            .bind(key)
            .bind(to_utc_primitive(cutoff(times.now, times.ttl)))
            .execute(self.pool())
            .await?;
        let now = to_utc_primitive(times.now);
        let inserted = sqlx::query(
            "INSERT IGNORE INTO idempotency_keys (account_id, idem_key, fingerprint, state, created_at, updated_at) \
             VALUES (?, ?, ?, 'in_flight', ?, ?)",
        )
        .bind(account.as_str())
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(IdempotencyBegin::Started { since: truncate_to_micros(times.now) });
        }
        // A released attempt, or one left by a crashed request: taken over
        // with its first `since`, for the same body only. The guarded update
        // lets one of several concurrent retries win.
        let taken_over = sqlx::query(
            "UPDATE idempotency_keys SET updated_at = ? WHERE account_id = ? AND idem_key = ? \
             AND fingerprint = ? AND state = 'in_flight' AND updated_at < ?",
        )
        .bind(now)
        .bind(account.as_str())
        .bind(key)
        .bind(fingerprint)
        .bind(to_utc_primitive(cutoff(times.now, times.in_flight_timeout)))
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1;
        if taken_over {
            let since: PrimitiveDateTime =
                sqlx::query_scalar("SELECT created_at FROM idempotency_keys WHERE account_id = ? AND idem_key = ?")
                    .bind(account.as_str())
                    .bind(key)
                    .fetch_one(self.pool())
                    .await?;
            return Ok(IdempotencyBegin::Started { since: since.assume_utc() });
        }
        let row = sqlx::query(
            "SELECT fingerprint, CAST(state AS CHAR) AS state, response_status, response_body \
             FROM idempotency_keys WHERE account_id = ? AND idem_key = ?",
        )
        .bind(account.as_str())
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        let row = match row {
            Some(r) => Some((
                r.try_get::<String, _>("fingerprint")?,
                r.try_get::<String, _>("state")?,
                r.try_get::<Option<i16>, _>("response_status")?.map(i64::from),
                r.try_get::<Option<String>, _>("response_body")?,
            )),
            None => None,
        };
        Ok(classify(row, fingerprint))
    }

    async fn complete_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        response: &StoredResponse,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_keys SET state = 'done', response_status = ?, response_body = ?, updated_at = ? \
             WHERE account_id = ? AND idem_key = ?",
        )
        .bind(i16::try_from(response.status).unwrap_or(i16::MAX))
        .bind(&response.body)
        .bind(to_utc_primitive(now))
        .bind(account.as_str())
        .bind(key)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn release_idempotent(&self, account: &AccountId, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_keys SET updated_at = ? WHERE account_id = ? AND idem_key = ? AND state = 'in_flight'",
        )
        .bind(to_utc_primitive(RELEASED_AT))
        .bind(account.as_str())
        .bind(key)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn purge_idempotency(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let n = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
            .bind(to_utc_primitive(before))
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n)
    }
}
