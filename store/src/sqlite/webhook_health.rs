//! [`WebhookHealthRepository`] on SQLite.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::Row;
use transaction_model::AccountId;

use super::SqliteRepository;
use crate::timestamp::from_sqlite_text;
use crate::webhook_health::{EndpointScope, FailingEndpointSummary, WebhookHealthRepository, FAILING};
use crate::webhooks::EndpointStatus;
use crate::StoreError;

/// The newest attempted delivery's outcome; `webhook_deliveries_recent`
/// (endpoint_id, created_at) serves it from the newest row backwards.
fn last_outcome(column: &str) -> String {
    format!(
        "(SELECT d.{column} FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.attempts > 0 \
         ORDER BY d.created_at DESC, d.event_id DESC LIMIT 1)"
    )
}

fn read_summary(row: &Row<'_>) -> rusqlite::Result<Result<FailingEndpointSummary, StoreError>> {
    let id: String = row.get(0)?;
    let account: String = row.get(1)?;
    let url: String = row.get(2)?;
    let status: String = row.get(3)?;
    let disabled_reason: Option<String> = row.get(4)?;
    let failing_since: Option<String> = row.get(5)?;
    let last_status_code: Option<i64> = row.get(6)?;
    let last_error: Option<String> = row.get(7)?;
    Ok((|| {
        let corrupt = |reason: &str| StoreError::CorruptRow { id: id.clone(), reason: reason.into() };
        Ok(FailingEndpointSummary {
            account_id: AccountId::try_from(account).map_err(|e| corrupt(&e.to_string()))?,
            url,
            status: EndpointStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
            disabled_reason,
            failing_since: failing_since
                .map(|t| from_sqlite_text(&t).ok_or_else(|| corrupt("failing_since")))
                .transpose()?,
            last_status_code: last_status_code.and_then(|c| u16::try_from(c).ok()),
            last_error,
            id: id.clone(),
        })
    })())
}

#[async_trait]
impl WebhookHealthRepository for SqliteRepository {
    async fn failing_endpoint_summaries(
        &self,
        scope: EndpointScope<'_>,
        limit: usize,
    ) -> Result<Vec<FailingEndpointSummary>, StoreError> {
        let (filter, account) = match scope {
            EndpointScope::All => ("", Value::Null),
            EndpointScope::Account(a) => (" AND e.account_id = ?2", Value::Text(a.as_str().to_owned())),
        };
        let sql = format!(
            "SELECT e.id, e.account_id, e.url, e.status, e.disabled_reason, e.failing_since, {}, {} \
             FROM webhook_endpoints e WHERE {FAILING}{filter} ORDER BY e.account_id, e.id LIMIT ?1",
            last_outcome("last_status_code"),
            last_outcome("last_error"),
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = match account {
                Value::Null => stmt.query_map(rusqlite::params![limit], read_summary)?,
                account => stmt.query_map(rusqlite::params![limit, account], read_summary)?,
            };
            let mut out = Vec::new();
            for row in rows {
                out.push(row??);
            }
            Ok(out)
        })
        .await
    }
}
