//! [`WebhookRepository`] on SQLite.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;
use transaction_model::AccountId;

use super::SqliteRepository;
use crate::timestamp::{from_sqlite_text, to_sqlite_text};
use crate::webhooks::{
    join_event_types, split_event_types, Attempt, AttemptResult, Delivery, DeliveryStatus, EndpointStatus,
    EndpointUpdate, NewDelivery, NextState, QueueStats, WebhookEndpoint, WebhookRepository, DISABLED_BY_MERCHANT,
    DISABLED_FAILING,
};
use crate::StoreError;

const ENDPOINT_COLUMNS: &str = "id, account_id, url, description, event_types, status, disabled_reason, secret, \
     previous_secret, previous_secret_expires_at, failing_since, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "endpoint_id, event_id, account_id, event_type, transaction_id, payload, status, \
     attempts, next_attempt_at, created_at, decided_at, delivered_at, last_status_code, last_error";

type Parsed<T> = rusqlite::Result<Result<T, StoreError>>;

fn time_of(id: &str, column: &str, text: Option<String>) -> Result<Option<OffsetDateTime>, StoreError> {
    text.map(|t| {
        from_sqlite_text(&t).ok_or_else(|| StoreError::CorruptRow { id: id.to_owned(), reason: column.to_owned() })
    })
    .transpose()
}

fn required_time(id: &str, column: &str, text: String) -> Result<OffsetDateTime, StoreError> {
    time_of(id, column, Some(text))?
        .ok_or_else(|| StoreError::CorruptRow { id: id.to_owned(), reason: column.to_owned() })
}

fn account_of(id: &str, text: String) -> Result<AccountId, StoreError> {
    AccountId::try_from(text).map_err(|e| StoreError::CorruptRow { id: id.to_owned(), reason: e.to_string() })
}

fn read_endpoint(row: &Row<'_>) -> Parsed<WebhookEndpoint> {
    let id: String = row.get(0)?;
    let account: String = row.get(1)?;
    let status: String = row.get(5)?;
    let (url, description, event_types): (String, String, String) = (row.get(2)?, row.get(3)?, row.get(4)?);
    let disabled_reason: Option<String> = row.get(6)?;
    let secret: String = row.get(7)?;
    let previous_secret: Option<String> = row.get(8)?;
    let previous_until: Option<String> = row.get(9)?;
    let failing_since: Option<String> = row.get(10)?;
    let created_at: String = row.get(11)?;
    let updated_at: String = row.get(12)?;
    Ok((|| {
        Ok(WebhookEndpoint {
            account_id: account_of(&id, account)?,
            url,
            description,
            event_types: split_event_types(&event_types),
            status: EndpointStatus::parse(&status)
                .ok_or_else(|| StoreError::CorruptRow { id: id.clone(), reason: "status".into() })?,
            disabled_reason,
            secret,
            previous_secret,
            previous_secret_expires_at: time_of(&id, "previous_secret_expires_at", previous_until)?,
            failing_since: time_of(&id, "failing_since", failing_since)?,
            created_at: required_time(&id, "created_at", created_at)?,
            updated_at: required_time(&id, "updated_at", updated_at)?,
            id,
        })
    })())
}

fn read_delivery(row: &Row<'_>) -> Parsed<Delivery> {
    let endpoint_id: String = row.get(0)?;
    let event_id: String = row.get(1)?;
    let account: String = row.get(2)?;
    let event_type: String = row.get(3)?;
    let transaction_id: String = row.get(4)?;
    let payload: String = row.get(5)?;
    let status: String = row.get(6)?;
    let attempts: i64 = row.get(7)?;
    let next_attempt_at: String = row.get(8)?;
    let created_at: String = row.get(9)?;
    let decided_at: String = row.get(10)?;
    let delivered_at: Option<String> = row.get(11)?;
    let last_status_code: Option<i64> = row.get(12)?;
    let last_error: Option<String> = row.get(13)?;
    Ok((|| {
        let id = event_id.as_str();
        let corrupt = |reason: &str| StoreError::CorruptRow { id: id.to_owned(), reason: reason.into() };
        Ok(Delivery {
            account_id: account_of(id, account)?,
            event_type,
            transaction_id,
            payload,
            status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
            attempts: u32::try_from(attempts).map_err(|_| corrupt("attempts"))?,
            next_attempt_at: required_time(id, "next_attempt_at", next_attempt_at)?,
            created_at: required_time(id, "created_at", created_at)?,
            decided_at: required_time(id, "decided_at", decided_at)?,
            delivered_at: time_of(id, "delivered_at", delivered_at)?,
            last_status_code: last_status_code
                .map(|c| u16::try_from(c).map_err(|_| corrupt("status code")))
                .transpose()?,
            last_error,
            endpoint_id,
            event_id: event_id.clone(),
        })
    })())
}

fn read_attempt(row: &Row<'_>) -> Parsed<Attempt> {
    let endpoint_id: String = row.get(0)?;
    let event_id: String = row.get(1)?;
    let attempt: i64 = row.get(2)?;
    let started_at: String = row.get(3)?;
    let duration_ms: i64 = row.get(4)?;
    let status_code: Option<i64> = row.get(5)?;
    let outcome: String = row.get(6)?;
    let error: Option<String> = row.get(7)?;
    Ok((|| {
        let corrupt = |reason: &str| StoreError::CorruptRow { id: event_id.clone(), reason: reason.into() };
        Ok(Attempt {
            attempt: u32::try_from(attempt).map_err(|_| corrupt("attempt"))?,
            started_at: required_time(&event_id, "started_at", started_at)?,
            duration_ms: u64::try_from(duration_ms).map_err(|_| corrupt("duration_ms"))?,
            status_code: status_code.map(|c| u16::try_from(c).map_err(|_| corrupt("status code"))).transpose()?,
            outcome,
            error,
            endpoint_id,
            event_id: event_id.clone(),
        })
    })())
}

fn select_endpoint(conn: &Connection, account: &str, id: &str) -> Result<Option<WebhookEndpoint>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?1 AND account_id = ?2"
    ))?;
    stmt.query_row(params![id, account], read_endpoint).optional()?.transpose()
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<Result<T, StoreError>>>) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

/// Runs `update` on the merchant's endpoint, then reads it back.
async fn update_and_read(
    repo: &SqliteRepository,
    account: &AccountId,
    id: &str,
    update: impl FnOnce(&Connection, &str, &str) -> Result<usize, StoreError> + Send + 'static,
) -> Result<Option<WebhookEndpoint>, StoreError> {
    let (account, id) = (account.as_str().to_owned(), id.to_owned());
    repo.with_conn(move |conn| {
        let tx = conn.transaction()?;
        let changed = update(&tx, &account, &id)?;
        let endpoint = if changed == 0 { None } else { select_endpoint(&tx, &account, &id)? };
        tx.commit()?;
        Ok(endpoint)
    })
    .await
}

#[async_trait]
impl WebhookRepository for SqliteRepository {
    async fn create_endpoint(&self, e: &WebhookEndpoint) -> Result<(), StoreError> {
        let e = e.clone();
        self.with_conn(move |conn| {
            let inserted = conn.execute(
                &format!(
                    "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT(id) DO NOTHING"
                ),
                params![
                    e.id,
                    e.account_id.as_str(),
                    e.url,
                    e.description,
                    join_event_types(&e.event_types),
                    e.status.as_str(),
                    e.disabled_reason,
                    e.secret,
                    e.previous_secret,
                    e.previous_secret_expires_at.map(to_sqlite_text),
                    e.failing_since.map(to_sqlite_text),
                    to_sqlite_text(e.created_at),
                    to_sqlite_text(e.updated_at),
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::AlreadyExists(e.id));
            }
            Ok(())
        })
        .await
    }

    async fn find_endpoint(&self, account: &AccountId, id: &str) -> Result<Option<WebhookEndpoint>, StoreError> {
        let (account, id) = (account.as_str().to_owned(), id.to_owned());
        self.with_read(move |conn| select_endpoint(conn, &account, &id)).await
    }

    async fn list_endpoints(&self, account: &AccountId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let account = account.as_str().to_owned();
        self.with_read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE account_id = ?1 ORDER BY created_at, id"
            ))?;
            let rows = stmt.query_map([account], read_endpoint)?;
            collect(rows)
        })
        .await
    }

    async fn update_endpoint(
        &self,
        account: &AccountId,
        id: &str,
        update: &EndpointUpdate,
        now: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let u = update.clone();
        update_and_read(self, account, id, move |conn, account, id| {
            Ok(conn.execute(
                "UPDATE webhook_endpoints SET url = COALESCE(?1, url), description = COALESCE(?2, description), \
                 event_types = COALESCE(?3, event_types), updated_at = ?4 WHERE id = ?5 AND account_id = ?6",
                params![
                    u.url,
                    u.description,
                    u.event_types.as_deref().map(join_event_types),
                    to_sqlite_text(now),
                    id,
                    account
                ],
            )?)
        })
        .await
    }

    async fn set_endpoint_enabled(
        &self,
        account: &AccountId,
        id: &str,
        enabled: bool,
        now: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        update_and_read(self, account, id, move |conn, account, id| {
            let (status, reason) = if enabled {
                (EndpointStatus::Enabled, None)
            } else {
                (EndpointStatus::Disabled, Some(DISABLED_BY_MERCHANT))
            };
            Ok(conn.execute(
                "UPDATE webhook_endpoints SET status = ?1, disabled_reason = ?2, \
                 failing_since = CASE WHEN ?1 = 'enabled' THEN NULL ELSE failing_since END, updated_at = ?3 \
                 WHERE id = ?4 AND account_id = ?5",
                params![status.as_str(), reason, to_sqlite_text(now), id, account],
            )?)
        })
        .await
    }

    async fn rotate_endpoint_secret(
        &self,
        account: &AccountId,
        id: &str,
        new_secret: &str,
        previous_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let new_secret = new_secret.to_owned();
        update_and_read(self, account, id, move |conn, account, id| {
            Ok(conn.execute(
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = ?1, \
                 secret = ?2, updated_at = ?3 WHERE id = ?4 AND account_id = ?5",
                params![to_sqlite_text(previous_until), new_secret, to_sqlite_text(now), id, account],
            )?)
        })
        .await
    }

    async fn enabled_endpoints_of(&self, accounts: &[AccountId]) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let accounts: Vec<String> = accounts.iter().map(|a| a.as_str().to_owned()).collect();
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE account_id = ?1 AND status = 'enabled'"
            ))?;
            let mut out = Vec::new();
            for account in accounts {
                out.extend(collect(stmt.query_map([account], read_endpoint)?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn record_deliveries(&self, deliveries: Vec<NewDelivery>) -> Result<u64, StoreError> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        self.with_conn(move |conn| {
            let tx = conn.transaction()?;
            let mut inserted = 0u64;
            {
                let mut insert = tx.prepare_cached(&format!(
                    "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7, ?8, NULL, NULL, NULL) \
                     ON CONFLICT(endpoint_id, event_id) DO NOTHING"
                ))?;
                for d in deliveries {
                    inserted += insert.execute(params![
                        d.endpoint_id,
                        d.event_id,
                        d.account_id.as_str(),
                        d.event_type,
                        d.transaction_id,
                        d.payload,
                        to_sqlite_text(d.created_at),
                        to_sqlite_text(d.decided_at),
                    ])? as u64;
                }
            }
            tx.commit()?;
            Ok(inserted)
        })
        .await
    }

    async fn due_endpoints(&self, now: OffsetDateTime) -> Result<Vec<WebhookEndpoint>, StoreError> {
        self.with_conn(move |conn| {
            let cols = ENDPOINT_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ");
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {cols} FROM webhook_endpoints e WHERE e.status = 'enabled' AND EXISTS \
                 (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending' \
                  AND d.next_attempt_at <= ?1)"
            ))?;
            let rows = stmt.query_map([to_sqlite_text(now)], read_endpoint)?;
            collect(rows)
        })
        .await
    }

    async fn claim_due(
        &self,
        endpoint_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let endpoint_id = endpoint_id.to_owned();
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let claimed = {
                let mut select = tx.prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ?1 AND status = 'pending' \
                     AND next_attempt_at <= ?2 ORDER BY next_attempt_at LIMIT ?3"
                ))?;
                let rows = select.query_map(
                    params![endpoint_id, to_sqlite_text(now), i64::try_from(limit).unwrap_or(i64::MAX)],
                    read_delivery,
                )?;
                collect(rows)?
            };
            {
                let mut lease = tx.prepare_cached(
                    "UPDATE webhook_deliveries SET next_attempt_at = ?1 WHERE endpoint_id = ?2 AND event_id = ?3",
                )?;
                for d in &claimed {
                    lease.execute(params![to_sqlite_text(lease_until), d.endpoint_id, d.event_id])?;
                }
            }
            tx.commit()?;
            Ok(claimed)
        })
        .await
    }

    async fn complete_attempts(
        &self,
        results: Vec<AttemptResult>,
        now: OffsetDateTime,
        disable_failing_before: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError> {
        self.with_conn(move |conn| {
            let tx = conn.transaction()?;
            let mut disabled = Vec::new();
            {
                let mut log = tx.prepare_cached(
                    "INSERT INTO webhook_attempts (endpoint_id, event_id, attempt, started_at, duration_ms, \
                     status_code, outcome, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT(endpoint_id, event_id, attempt) DO NOTHING",
                )?;
                let mut advance = tx.prepare_cached(
                    "UPDATE webhook_deliveries SET status = ?1, attempts = MAX(attempts, ?2), next_attempt_at = ?3, \
                     delivered_at = COALESCE(?4, delivered_at), last_status_code = ?5, last_error = ?6 \
                     WHERE endpoint_id = ?7 AND event_id = ?8",
                )?;
                let mut healthy =
                    tx.prepare_cached("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?1")?;
                let mut failing = tx.prepare_cached(
                    "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?1) WHERE id = ?2",
                )?;
                let mut disable = tx.prepare_cached(
                    "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = ?1, updated_at = ?2 \
                     WHERE id = ?3 AND status = 'enabled' AND failing_since IS NOT NULL AND failing_since <= ?4",
                )?;
                for r in results {
                    let a = &r.attempt;
                    log.execute(params![
                        a.endpoint_id,
                        a.event_id,
                        a.attempt,
                        to_sqlite_text(a.started_at),
                        i64::try_from(a.duration_ms).unwrap_or(i64::MAX),
                        a.status_code,
                        a.outcome,
                        a.error,
                    ])?;
                    let (status, next_at, delivered_at) = match r.next {
                        NextState::Delivered => (DeliveryStatus::Delivered, now, Some(to_sqlite_text(now))),
                        NextState::RetryAt(at) => (DeliveryStatus::Pending, at, None),
                        NextState::Exhausted => (DeliveryStatus::Failed, now, None),
                    };
                    advance.execute(params![
                        status.as_str(),
                        a.attempt,
                        to_sqlite_text(next_at),
                        delivered_at,
                        a.status_code,
                        a.error,
                        a.endpoint_id,
                        a.event_id,
                    ])?;
                    if r.next == NextState::Delivered {
                        healthy.execute([&a.endpoint_id])?;
                    } else {
                        failing.execute(params![to_sqlite_text(a.started_at), a.endpoint_id])?;
                        let n = disable.execute(params![
                            DISABLED_FAILING,
                            to_sqlite_text(now),
                            a.endpoint_id,
                            to_sqlite_text(disable_failing_before)
                        ])?;
                        if n > 0 {
                            disabled.push(a.endpoint_id.clone());
                        }
                    }
                }
            }
            tx.commit()?;
            Ok(disabled)
        })
        .await
    }

    async fn list_deliveries(
        &self,
        account: &AccountId,
        endpoint_id: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let (account, endpoint_id) = (account.as_str().to_owned(), endpoint_id.to_owned());
        self.with_read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ?1 AND account_id = ?2 \
                 AND (?3 IS NULL OR status = ?3) ORDER BY created_at DESC, event_id LIMIT ?4"
            ))?;
            let rows = stmt.query_map(
                params![endpoint_id, account, status.map(DeliveryStatus::as_str), i64::try_from(limit).unwrap_or(100)],
                read_delivery,
            )?;
            collect(rows)
        })
        .await
    }

    async fn find_delivery(
        &self,
        account: &AccountId,
        endpoint_id: &str,
        event_id: &str,
    ) -> Result<Option<(Delivery, Vec<Attempt>)>, StoreError> {
        let (account, endpoint_id, event_id) =
            (account.as_str().to_owned(), endpoint_id.to_owned(), event_id.to_owned());
        self.with_read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ?1 AND event_id = ?2 \
                 AND account_id = ?3"
            ))?;
            let Some(delivery) =
                stmt.query_row(params![endpoint_id, event_id, account], read_delivery).optional()?.transpose()?
            else {
                return Ok(None);
            };
            let mut stmt = conn.prepare_cached(
                "SELECT endpoint_id, event_id, attempt, started_at, duration_ms, status_code, outcome, error \
                 FROM webhook_attempts WHERE endpoint_id = ?1 AND event_id = ?2 ORDER BY attempt",
            )?;
            let attempts = collect(stmt.query_map(params![endpoint_id, event_id], read_attempt)?)?;
            Ok(Some((delivery, attempts)))
        })
        .await
    }

    async fn redeliver(
        &self,
        account: &AccountId,
        endpoint_id: &str,
        event_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (account, endpoint_id, event_id) =
            (account.as_str().to_owned(), endpoint_id.to_owned(), event_id.to_owned());
        self.with_conn(move |conn| {
            let n = conn.execute(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?1 \
                 WHERE endpoint_id = ?2 AND event_id = ?3 AND account_id = ?4",
                params![to_sqlite_text(now), endpoint_id, event_id, account],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn queue_stats(&self, now: OffsetDateTime) -> Result<QueueStats, StoreError> {
        let now = to_sqlite_text(now);
        self.with_conn(move |conn| {
            let (pending, oldest, due, oldest_due): (i64, Option<String>, Option<i64>, Option<String>) = conn
                .query_row(
                    "SELECT COUNT(*), MIN(d.created_at), SUM(d.next_attempt_at <= ?1), \
                 MIN(CASE WHEN d.next_attempt_at <= ?1 THEN d.next_attempt_at END) \
                 FROM webhook_deliveries d JOIN webhook_endpoints e \
                 ON e.id = d.endpoint_id WHERE d.status = 'pending' AND e.status = 'enabled'",
                    [now],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
            Ok(QueueStats {
                pending: u64::try_from(pending).unwrap_or(0),
                oldest_pending_created_at: time_of("queue", "created_at", oldest)?,
                due: due.and_then(|d| u64::try_from(d).ok()).unwrap_or(0),
                oldest_due_at: time_of("queue", "next_attempt_at", oldest_due)?,
            })
        })
        .await
    }

    async fn failing_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE failing_since IS NOT NULL \
                 OR disabled_reason = 'failing' ORDER BY account_id, id"
            ))?;
            let rows = stmt.query_map([], read_endpoint)?;
            collect(rows)
        })
        .await
    }
}
