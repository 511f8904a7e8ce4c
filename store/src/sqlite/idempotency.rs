//! [`IdempotencyRepository`] on SQLite.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use time::OffsetDateTime;
use transaction_model::AccountId;

use super::SqliteRepository;
use crate::idempotency::{
    classify, cutoff, IdempotencyBegin, IdempotencyRepository, IdempotencyTimes, StoredResponse, RELEASED_AT,
};
use crate::timestamp::{from_sqlite_text, to_sqlite_text, truncate_to_micros};
use crate::StoreError;

#[async_trait]
impl IdempotencyRepository for SqliteRepository {
    async fn begin_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        times: IdempotencyTimes,
    ) -> Result<IdempotencyBegin, StoreError> {
        let (account, key, fingerprint) = (account.as_str().to_owned(), key.to_owned(), fingerprint.to_owned());
        self.with_conn(move |conn| {
            let now = to_sqlite_text(times.now);
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "DELETE FROM idempotency_keys WHERE account_id = ?1 AND idem_key = ?2 AND created_at < ?3",
                params![account, key, to_sqlite_text(cutoff(times.now, times.ttl))],
            )?;
            let inserted = tx.execute(
                "INSERT INTO idempotency_keys (account_id, idem_key, fingerprint, state, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'in_flight', ?4, ?4) ON CONFLICT DO NOTHING",
                params![account, key, fingerprint, now],
            )?;
            // A released attempt, or one left by a crashed request: taken
            // over with its first `since`, for the same body only.
            let taken_over = inserted == 0
                && tx.execute(
                    "UPDATE idempotency_keys SET updated_at = ?4 WHERE account_id = ?1 AND idem_key = ?2 \
                     AND fingerprint = ?3 AND state = 'in_flight' AND updated_at < ?5",
                    params![account, key, fingerprint, now, to_sqlite_text(cutoff(times.now, times.in_flight_timeout))],
                )? == 1;
            let outcome = if inserted == 1 {
                IdempotencyBegin::Started { since: truncate_to_micros(times.now) }
            } else if taken_over {
                let since: String = tx.query_row(
                    "SELECT created_at FROM idempotency_keys WHERE account_id = ?1 AND idem_key = ?2",
                    params![account, key],
                    |r| r.get(0),
                )?;
                let since = from_sqlite_text(&since)
                    .ok_or_else(|| StoreError::CorruptRow { id: key.clone(), reason: "created_at".into() })?;
                IdempotencyBegin::Started { since }
            } else {
                let row: Option<(String, String, Option<i64>, Option<String>)> = tx
                    .query_row(
                        "SELECT fingerprint, state, response_status, response_body FROM idempotency_keys \
                         WHERE account_id = ?1 AND idem_key = ?2",
                        params![account, key],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                classify(row, &fingerprint)
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn complete_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        response: &StoredResponse,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (account, key, response) = (account.as_str().to_owned(), key.to_owned(), response.clone());
        self.with_conn(move |conn| {
            conn.execute(
                "UPDATE idempotency_keys SET state = 'done', response_status = ?3, response_body = ?4, \
                 updated_at = ?5 WHERE account_id = ?1 AND idem_key = ?2",
                params![account, key, i64::from(response.status), response.body, to_sqlite_text(now)],
            )?;
            Ok(())
        })
        .await
    }

    async fn release_idempotent(&self, account: &AccountId, key: &str) -> Result<(), StoreError> {
        let (account, key) = (account.as_str().to_owned(), key.to_owned());
        self.with_conn(move |conn| {
            conn.execute(
                "UPDATE idempotency_keys SET updated_at = ?3 \
                 WHERE account_id = ?1 AND idem_key = ?2 AND state = 'in_flight'",
                params![account, key, to_sqlite_text(RELEASED_AT)],
            )?;
            Ok(())
        })
        .await
    }

    async fn purge_idempotency(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.with_conn(move |conn| {
            let n = conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?1", [to_sqlite_text(before)])?;
            Ok(n as u64)
        })
        .await
    }
}
