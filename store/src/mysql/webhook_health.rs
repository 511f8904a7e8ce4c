//! [`WebhookHealthRepository`] on MySQL / MariaDB.

use async_trait::async_trait;
use sqlx::mysql::MySqlRow;
use sqlx::Row;
use time::PrimitiveDateTime;
use transaction_model::AccountId;

use super::{binary_text, MySqlRepository};
use crate::webhook_health::{EndpointScope, FailingEndpointSummary, WebhookHealthRepository, FAILING};
use crate::webhooks::EndpointStatus;
use crate::StoreError;

/// The newest attempted delivery's outcome; `webhook_deliveries_recent`
/// (endpoint_id, created_at) serves it from the newest row backwards. The
/// code is cast so that its type does not depend on how the server types a
/// subquery.
fn last_outcome(column: &str) -> String {
    format!(
        "(SELECT d.{column} FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.attempts > 0 \
         ORDER BY d.created_at DESC, d.event_id DESC LIMIT 1)"
    )
}

fn read_summary(row: &MySqlRow) -> Result<FailingEndpointSummary, StoreError> {
    let id = binary_text(row, "id")?.unwrap_or_default();
    let corrupt = |reason: &str| StoreError::CorruptRow { id: id.clone(), reason: reason.into() };
    let account = binary_text(row, "account_id")?.unwrap_or_default();
    let status: String = row.try_get("status")?;
    let code: Option<i64> = row.try_get("last_status_code")?;
    Ok(FailingEndpointSummary {
        account_id: AccountId::try_from(account).map_err(|e| corrupt(&e.to_string()))?,
        url: row.try_get("url")?,
        status: EndpointStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        disabled_reason: row.try_get("disabled_reason")?,
        failing_since: row.try_get::<Option<PrimitiveDateTime>, _>("failing_since")?.map(PrimitiveDateTime::assume_utc),
        last_status_code: code.and_then(|c| u16::try_from(c).ok()),
        last_error: row.try_get("last_error")?,
        id: id.clone(),
    })
}

#[async_trait]
impl WebhookHealthRepository for MySqlRepository {
    async fn failing_endpoint_summaries(
        &self,
        scope: EndpointScope<'_>,
        limit: usize,
    ) -> Result<Vec<FailingEndpointSummary>, StoreError> {
        let filter = match scope {
            EndpointScope::All => "",
            EndpointScope::Account(_) => " AND e.account_id = ?",
        };
        let sql = format!(
            "SELECT e.id, e.account_id, e.url, e.status, e.disabled_reason, e.failing_since, \
             CAST({} AS SIGNED) AS last_status_code, {} AS last_error \
             FROM webhook_endpoints e WHERE {FAILING}{filter} ORDER BY e.account_id, e.id LIMIT ?",
            last_outcome("last_status_code"),
            last_outcome("last_error"),
        );
        let mut query = sqlx::query(&sql);
        if let EndpointScope::Account(a) = scope {
            query = query.bind(a.as_str());
        }
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let rows = query.bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(read_summary).collect()
    }
}
