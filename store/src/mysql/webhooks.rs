//! [`WebhookRepository`] on MySQL / MariaDB.

use async_trait::async_trait;
use sqlx::mysql::MySqlRow;
use sqlx::{MySql, QueryBuilder, Row};
use time::{OffsetDateTime, PrimitiveDateTime};
use transaction_model::AccountId;

use super::{binary_text, MySqlRepository};
use crate::timestamp::to_utc_primitive;
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

/// Rows per INSERT statement: well under MySQL's 65,535 placeholders.
const ROWS_PER_STATEMENT: usize = 1000;

fn text(row: &MySqlRow, column: &str) -> Result<String, StoreError> {
    Ok(binary_text(row, column)?.unwrap_or_default())
}

fn time_of(row: &MySqlRow, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    Ok(row.try_get::<Option<PrimitiveDateTime>, _>(column)?.map(PrimitiveDateTime::assume_utc))
}

fn read_endpoint(row: &MySqlRow) -> Result<WebhookEndpoint, StoreError> {
    let id = text(row, "id")?;
    let corrupt = |reason: &str| StoreError::CorruptRow { id: id.clone(), reason: reason.into() };
    let status: String = row.try_get("status")?;
    let event_types: String = row.try_get("event_types")?;
    Ok(WebhookEndpoint {
        account_id: AccountId::try_from(text(row, "account_id")?).map_err(|e| corrupt(&e.to_string()))?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        event_types: split_event_types(&event_types),
        status: EndpointStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        disabled_reason: row.try_get("disabled_reason")?,
        secret: row.try_get("secret")?,
        previous_secret: row.try_get("previous_secret")?,
        previous_secret_expires_at: time_of(row, "previous_secret_expires_at")?,
        failing_since: time_of(row, "failing_since")?,
        created_at: time_of(row, "created_at")?.ok_or_else(|| corrupt("created_at"))?,
        updated_at: time_of(row, "updated_at")?.ok_or_else(|| corrupt("updated_at"))?,
        id: id.clone(),
    })
}

fn read_delivery(row: &MySqlRow) -> Result<Delivery, StoreError> {
    let event_id = text(row, "event_id")?;
    let corrupt = |reason: &str| StoreError::CorruptRow { id: event_id.clone(), reason: reason.into() };
    let status: String = row.try_get("status")?;
    Ok(Delivery {
        endpoint_id: text(row, "endpoint_id")?,
        account_id: AccountId::try_from(text(row, "account_id")?).map_err(|e| corrupt(&e.to_string()))?,
        event_type: row.try_get("event_type")?,
        transaction_id: text(row, "transaction_id")?,
        payload: row.try_get("payload")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: time_of(row, "next_attempt_at")?.ok_or_else(|| corrupt("next_attempt_at"))?,
        created_at: time_of(row, "created_at")?.ok_or_else(|| corrupt("created_at"))?,
        decided_at: time_of(row, "decided_at")?.ok_or_else(|| corrupt("decided_at"))?,
        delivered_at: time_of(row, "delivered_at")?,
        last_status_code: row.try_get("last_status_code")?,
        last_error: row.try_get("last_error")?,
        event_id: event_id.clone(),
    })
}

fn read_attempt(row: &MySqlRow) -> Result<Attempt, StoreError> {
    let event_id = text(row, "event_id")?;
    Ok(Attempt {
        endpoint_id: text(row, "endpoint_id")?,
        attempt: row.try_get("attempt")?,
        started_at: time_of(row, "started_at")?
            .ok_or_else(|| StoreError::CorruptRow { id: event_id.clone(), reason: "started_at".into() })?,
        duration_ms: row.try_get("duration_ms")?,
        status_code: row.try_get("status_code")?,
        outcome: row.try_get("outcome")?,
        error: row.try_get("error")?,
        event_id,
    })
}

impl MySqlRepository {
    async fn select_endpoint(&self, account: &AccountId, id: &str) -> Result<Option<WebhookEndpoint>, StoreError> {
        let row =
            sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ? AND account_id = ?"))
                .bind(id)
                .bind(account.as_str())
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(read_endpoint).transpose()
    }
}

#[async_trait]
impl WebhookRepository for MySqlRepository {
    async fn create_endpoint(&self, e: &WebhookEndpoint) -> Result<(), StoreError> {
        let inserted = sqlx::query(&format!(
            "INSERT IGNORE INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&e.id)
        .bind(e.account_id.as_str())
        .bind(&e.url)
        .bind(&e.description)
        .bind(join_event_types(&e.event_types))
        .bind(e.status.as_str())
        .bind(&e.disabled_reason)
        .bind(&e.secret)
        .bind(&e.previous_secret)
        .bind(e.previous_secret_expires_at.map(to_utc_primitive))
        .bind(e.failing_since.map(to_utc_primitive))
        .bind(to_utc_primitive(e.created_at))
        .bind(to_utc_primitive(e.updated_at))
        .execute(self.pool())
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(e.id.clone()));
        }
        Ok(())
    }

    async fn find_endpoint(&self, account: &AccountId, id: &str) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.select_endpoint(account, id).await
    }

    async fn list_endpoints(&self, account: &AccountId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE account_id = ? ORDER BY created_at, id"
        ))
        .bind(account.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(read_endpoint).collect()
    }

    async fn update_endpoint(
        &self,
        account: &AccountId,
        id: &str,
        u: &EndpointUpdate,
        now: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        sqlx::query(
            "UPDATE webhook_endpoints SET url = COALESCE(?, url), description = COALESCE(?, description), \
             event_types = COALESCE(?, event_types), updated_at = ? WHERE id = ? AND account_id = ?",
        )
        .bind(&u.url)
        .bind(&u.description)
        .bind(u.event_types.as_deref().map(join_event_types))
        .bind(to_utc_primitive(now))
        .bind(id)
        .bind(account.as_str())
        .execute(self.pool())
        .await?;
        self.select_endpoint(account, id).await
    }

    async fn set_endpoint_enabled(
        &self,
        account: &AccountId,
        id: &str,
        enabled: bool,
        now: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let (status, reason) = if enabled {
            (EndpointStatus::Enabled, None)
        } else {
            (EndpointStatus::Disabled, Some(DISABLED_BY_MERCHANT))
        };
        sqlx::query(
            "UPDATE webhook_endpoints SET status = ?, disabled_reason = ?, \
             failing_since = IF(? , NULL, failing_since), updated_at = ? WHERE id = ? AND account_id = ?",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(enabled)
        .bind(to_utc_primitive(now))
        .bind(id)
        .bind(account.as_str())
        .execute(self.pool())
        .await?;
        self.select_endpoint(account, id).await
    }

    async fn rotate_endpoint_secret(
        &self,
        account: &AccountId,
        id: &str,
        new_secret: &str,
        previous_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        // MySQL assigns left to right: `previous_secret` takes the old value.
        sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = ?, secret = ?, \
             updated_at = ? WHERE id = ? AND account_id = ?",
        )
        .bind(to_utc_primitive(previous_until))
        .bind(new_secret)
        .bind(to_utc_primitive(now))
        .bind(id)
        .bind(account.as_str())
        .execute(self.pool())
        .await?;
        self.select_endpoint(account, id).await
    }

    async fn enabled_endpoints_of(&self, accounts: &[AccountId]) -> Result<Vec<WebhookEndpoint>, StoreError> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in accounts.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<MySql>::new(format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE status = 'enabled' AND account_id IN ("
            ));
            let mut ids = query.separated(", ");
            for a in chunk {
                ids.push_bind(a.as_str());
            }
            query.push(")");
            for row in query.build().fetch_all(self.pool()).await? {
                out.push(read_endpoint(&row)?);
            }
        }
        Ok(out)
    }

    async fn record_deliveries(&self, deliveries: Vec<NewDelivery>) -> Result<u64, StoreError> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool().begin().await?;
        let mut inserted = 0;
        for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
            let mut query =
                QueryBuilder::<MySql>::new(format!("INSERT IGNORE INTO webhook_deliveries ({DELIVERY_COLUMNS}) "));
            query.push_values(chunk, |mut row, d| {
                let created = to_utc_primitive(d.created_at);
                row.push_bind(&d.endpoint_id)
                    .push_bind(&d.event_id)
                    .push_bind(d.account_id.as_str())
                    .push_bind(&d.event_type)
                    .push_bind(&d.transaction_id)
                    .push_bind(&d.payload)
                    .push_bind(DeliveryStatus::Pending.as_str())
                    .push_bind(0u32)
                    .push_bind(created)
                    .push_bind(created)
                    .push_bind(to_utc_primitive(d.decided_at))
                    .push_bind(None::<PrimitiveDateTime>)
                    .push_bind(None::<u16>)
                    .push_bind(None::<String>);
            });
            inserted += query.build().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn due_endpoints(&self, now: OffsetDateTime) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let cols = ENDPOINT_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {cols} FROM webhook_endpoints e WHERE e.status = 'enabled' AND EXISTS \
             (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending' \
              AND d.next_attempt_at <= ?)"
        ))
        .bind(to_utc_primitive(now))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(read_endpoint).collect()
    }

    async fn claim_due(
        &self,
        endpoint_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut tx = self.pool().begin().await?;
        // SKIP LOCKED: notifier replicas claiming at once take disjoint rows.
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ? AND status = 'pending' \
             AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED"
        ))
        .bind(endpoint_id)
        .bind(to_utc_primitive(now))
        .bind(u64::try_from(limit).unwrap_or(u64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        let claimed = rows.iter().map(read_delivery).collect::<Result<Vec<_>, _>>()?;
        if !claimed.is_empty() {
            let mut query = QueryBuilder::<MySql>::new("UPDATE webhook_deliveries SET next_attempt_at = ");
            query.push_bind(to_utc_primitive(lease_until));
            query.push(" WHERE endpoint_id = ");
            query.push_bind(endpoint_id);
            query.push(" AND event_id IN (");
            let mut ids = query.separated(", ");
            for d in &claimed {
                ids.push_bind(d.event_id.as_str());
            }
            query.push(")");
            query.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn complete_attempts(
        &self,
        results: Vec<AttemptResult>,
        now: OffsetDateTime,
        disable_failing_before: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool().begin().await?;
        for chunk in results.chunks(ROWS_PER_STATEMENT) {
            let mut log = QueryBuilder::<MySql>::new(
                "INSERT IGNORE INTO webhook_attempts (endpoint_id, event_id, attempt, started_at, duration_ms, \
                 status_code, outcome, error) ",
            );
            log.push_values(chunk, |mut row, r| {
                let a = &r.attempt;
                row.push_bind(&a.endpoint_id)
                    .push_bind(&a.event_id)
                    .push_bind(a.attempt)
                    .push_bind(to_utc_primitive(a.started_at))
                    .push_bind(a.duration_ms)
                    .push_bind(a.status_code)
                    .push_bind(&a.outcome)
                    .push_bind(&a.error);
            });
            log.build().execute(&mut *tx).await?;
        }
        let mut healthy = Vec::new();
        let mut failing: Vec<(&str, OffsetDateTime)> = Vec::new();
        for r in &results {
            let a = &r.attempt;
            let (status, next_at, delivered_at) = match r.next {
                NextState::Delivered => (DeliveryStatus::Delivered, now, Some(to_utc_primitive(now))),
                NextState::RetryAt(at) => (DeliveryStatus::Pending, at, None),
                NextState::Exhausted => (DeliveryStatus::Failed, now, None),
            };
            sqlx::query(
                "UPDATE webhook_deliveries SET status = ?, attempts = GREATEST(attempts, ?), next_attempt_at = ?, \
                 delivered_at = COALESCE(?, delivered_at), last_status_code = ?, last_error = ? \
                 WHERE endpoint_id = ? AND event_id = ?",
            )
            .bind(status.as_str())
            .bind(a.attempt)
            .bind(to_utc_primitive(next_at))
            .bind(delivered_at)
            .bind(a.status_code)
            .bind(&a.error)
            .bind(&a.endpoint_id)
            .bind(&a.event_id)
            .execute(&mut *tx)
            .await?;
            if r.next == NextState::Delivered {
                healthy.push(a.endpoint_id.as_str());
            } else {
                failing.push((a.endpoint_id.as_str(), a.started_at));
            }
        }
        healthy.sort_unstable();
        healthy.dedup();
        for id in &healthy {
            sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        failing.sort_unstable();
        failing.dedup_by_key(|f| f.0);
        let mut disabled = Vec::new();
        for (id, since) in failing {
            sqlx::query("UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?) WHERE id = ?")
                .bind(to_utc_primitive(since))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query(
                "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = ?, updated_at = ? \
                 WHERE id = ? AND status = 'enabled' AND failing_since IS NOT NULL AND failing_since <= ?",
            )
            .bind(DISABLED_FAILING)
            .bind(to_utc_primitive(now))
            .bind(id)
            .bind(to_utc_primitive(disable_failing_before))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                disabled.push(id.to_owned());
            }
        }
        tx.commit().await?;
        Ok(disabled)
    }

    async fn list_deliveries(
        &self,
        account: &AccountId,
        endpoint_id: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ? AND account_id = ? \
             AND (? IS NULL OR status = ?) ORDER BY created_at DESC, event_id LIMIT ?"
        ))
        .bind(endpoint_id)
        .bind(account.as_str())
        .bind(status.map(DeliveryStatus::as_str))
        .bind(status.map(DeliveryStatus::as_str))
        .bind(u64::try_from(limit).unwrap_or(100))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(read_delivery).collect()
    }

    async fn find_delivery(
        &self,
        account: &AccountId,
        endpoint_id: &str,
        event_id: &str,
    ) -> Result<Option<(Delivery, Vec<Attempt>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ? AND event_id = ? AND account_id = ?"
        ))
        .bind(endpoint_id)
        .bind(event_id)
        .bind(account.as_str())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let delivery = read_delivery(&row)?;
        let rows = sqlx::query(
            "SELECT endpoint_id, event_id, attempt, started_at, duration_ms, status_code, outcome, error \
             FROM webhook_attempts WHERE endpoint_id = ? AND event_id = ? ORDER BY attempt",
        )
        .bind(endpoint_id)
        .bind(event_id)
        .fetch_all(self.pool())
        .await?;
        let attempts = rows.iter().map(read_attempt).collect::<Result<Vec<_>, _>>()?;
        Ok(Some((delivery, attempts)))
    }

    async fn redeliver(
        &self,
        account: &AccountId,
        endpoint_id: &str,
        event_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ? \
             WHERE endpoint_id = ? AND event_id = ? AND account_id = ?",
        )
        .bind(to_utc_primitive(now))
        .bind(endpoint_id)
        .bind(event_id)
        .bind(account.as_str())
        .execute(self.pool())
        .await?;
        // Rows changed, not matched: ask whether it exists.
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = ? AND event_id = ? AND account_id = ?",
        )
        .bind(endpoint_id)
        .bind(event_id)
        .bind(account.as_str())
        .fetch_one(self.pool())
        .await?;
        Ok(n == 1)
    }

    async fn queue_stats(&self, now: OffsetDateTime) -> Result<QueueStats, StoreError> {
        let now = to_utc_primitive(now);
        let row = sqlx::query(
            "SELECT COUNT(*) AS pending, MIN(d.created_at) AS oldest, \
             CAST(COALESCE(SUM(d.next_attempt_at <= ?), 0) AS SIGNED) AS due, \
             MIN(CASE WHEN d.next_attempt_at <= ? THEN d.next_attempt_at END) AS oldest_due \
             FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = 'pending' AND e.status = 'enabled'",
        )
        .bind(now)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        let pending: i64 = row.try_get("pending")?;
        let due: i64 = row.try_get("due")?;
        Ok(QueueStats {
            pending: u64::try_from(pending).unwrap_or(0),
            oldest_pending_created_at: time_of(&row, "oldest")?,
            due: u64::try_from(due).unwrap_or(0),
            oldest_due_at: time_of(&row, "oldest_due")?,
        })
    }

    async fn failing_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE failing_since IS NOT NULL \
             OR disabled_reason = 'failing' ORDER BY account_id, id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(read_endpoint).collect()
    }
}
