//! The production implementation: MySQL (or MariaDB) through sqlx.

mod accepted;
mod accounts;
mod idempotency;
mod webhooks;

// The dashboard's read of failing endpoints, without secrets.
mod webhook_health;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{ConnectOptions, Connection, Executor, QueryBuilder, Row};
use time::PrimitiveDateTime;
use transaction_model::{AccountId, Amount, CardBrand, MaskedCard, ProcessedTransaction, Status, TransactionId};

use crate::row::check_storable;
use crate::timestamp::to_utc_primitive;
use crate::{StoreError, TransactionRepository};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

const COLUMNS: &str = "id, account_id, amount_cents, status, error_message, card_brand, \
                       card_masked, card_hash, created_at, processed_at, card_hash_key_id";

/// Rows per INSERT statement: well under MySQL's 65,535 placeholders.
const ROWS_PER_STATEMENT: usize = 1000;

pub struct MySqlRepository {
    pool: MySqlPool,
}

impl MySqlRepository {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, crate::migrations_at_start()).await
    }

    /// Connects to `url`, migrating when `run_migrations`, else only
    /// checking that every migration of this build has been applied (the
    /// services' users may not even read other tables' DDL).
    pub async fn connect_with(url: &str, run_migrations: bool) -> Result<Self, StoreError> {
        let url = url.replacen("mariadb://", "mysql://", 1);
        let options = MySqlConnectOptions::from_str(&url)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let pool = MySqlPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        if run_migrations {
            MIGRATOR.run(&pool).await?;
        } else {
            check_schema(&pool).await?;
        }
        Ok(MySqlRepository { pool })
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }
}

/// Every migration of this build applied successfully? (`_sqlx_migrations`
/// is sqlx's own table; a missing table means nothing was applied.)
async fn check_schema(pool: &MySqlPool) -> Result<(), StoreError> {
    let applied: Vec<i64> =
        match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1").fetch_all(pool).await {
            Ok(versions) => versions,
            // ER_NO_SUCH_TABLE: the migrate job has not run at all.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42S02") => Vec::new(),
            Err(e) => return Err(e.into()),
        };
    let want: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    let have = want.iter().filter(|v| applied.contains(v)).count() as i64;
    if have < want.len() as i64 {
        return Err(StoreError::SchemaBehind { have, want: want.len() as i64 });
    }
    Ok(())
}

/// `id` and `account_id` use a binary collation (ids are case-sensitive),
/// which the driver reports as VARBINARY: read them as bytes.
fn binary_text(row: &MySqlRow, column: &str) -> Result<Option<String>, StoreError> {
    let bytes: Option<Vec<u8>> = row.try_get(column)?;
    bytes
        .map(|b| {
            String::from_utf8(b).map_err(|_| StoreError::CorruptRow {
                id: String::from_utf8_lossy(&row.try_get::<Vec<u8>, _>("id").unwrap_or_default()).into_owned(),
                reason: format!("{column} is not UTF-8"),
            })
        })
        .transpose()
}

fn read_row(row: &MySqlRow) -> Result<ProcessedTransaction, StoreError> {
    let id = binary_text(row, "id")?.unwrap_or_default();
    let corrupt = |reason: &str| StoreError::CorruptRow { id: id.clone(), reason: reason.into() };
    let account_id = binary_text(row, "account_id")?;
    let status: String = row.try_get("status")?;
    let card_brand: Option<String> = row.try_get("card_brand")?;
    let card_masked: Option<String> = row.try_get("card_masked")?;
    let created_at: PrimitiveDateTime = row.try_get("created_at")?;
    let processed_at: PrimitiveDateTime = row.try_get("processed_at")?;
    Ok(ProcessedTransaction {
        id: TransactionId::try_from(id.as_str()).map_err(|e| corrupt(&e.to_string()))?,
        account_id: account_id.map(|a| AccountId::try_from(a).map_err(|e| corrupt(&e.to_string()))).transpose()?,
        amount: row.try_get::<Option<i64>, _>("amount_cents")?.map(Amount::from_cents),
        status: Status::parse(&status).ok_or_else(|| corrupt("status"))?,
        error_message: row.try_get("error_message")?,
        card_brand: card_brand.map(|b| CardBrand::parse(&b).ok_or_else(|| corrupt("card_brand"))).transpose()?,
        card_masked: card_masked.map(MaskedCard::from_stored),
        card_hash: row.try_get("card_hash")?,
        card_hash_key_id: row.try_get("card_hash_key_id")?,
        created_at: created_at.assume_utc(),
        processed_at: processed_at.assume_utc(),
    })
}

#[async_trait]
impl TransactionRepository for MySqlRepository {
    async fn record_shared(
        &self,
        batch: Arc<Vec<ProcessedTransaction>>,
    ) -> Result<Vec<Option<ProcessedTransaction>>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        for t in batch.iter() {
            check_storable(t)?;
        }
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0u64;
        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::new(format!("INSERT IGNORE INTO transactions ({COLUMNS}) "));
            query.push_values(chunk, |mut row, t| {
                row.push_bind(t.id.as_str())
                    .push_bind(t.account_id.as_ref().map(AccountId::as_str))
                    .push_bind(t.amount.map(Amount::cents))
                    .push_bind(t.status.as_str())
                    .push_bind(t.error_message.as_str())
                    .push_bind(t.card_brand.map(CardBrand::as_str))
                    .push_bind(t.card_masked.as_ref().map(MaskedCard::as_str))
                    .push_bind(t.card_hash.as_deref())
                    .push_bind(to_utc_primitive(t.created_at))
                    .push_bind(to_utc_primitive(t.processed_at))
                    .push_bind(t.card_hash_key_id.as_deref());
            });
            inserted += query.build().execute(&mut *tx).await?.rows_affected();
        }
        if inserted == batch.len() as u64 {
            tx.commit().await?;
            return Ok(vec![None; batch.len()]);
        }
        // Some ids were already stored (or repeated in the batch): read back
        // what is stored, which is the decision to publish.
        let mut stored: HashMap<String, ProcessedTransaction> = HashMap::with_capacity(batch.len());
        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM transactions WHERE id IN ("));
            let mut ids = query.separated(", ");
            for t in chunk {
                ids.push_bind(t.id.as_str());
            }
            query.push(")");
            for row in query.build().fetch_all(&mut *tx).await? {
                let t = read_row(&row)?;
                stored.insert(t.id.as_str().to_owned(), t);
            }
        }
        // A row IGNORE skipped for a reason other than its id (a constraint)
        // fails the whole batch, uncommitted, like on SQLite.
        let kept: Vec<Option<ProcessedTransaction>> = batch
            .iter()
            .map(|t| match stored.get(t.id.as_str()) {
                Some(first) => Ok((first != t).then(|| first.clone())),
                None => {
                    Err(StoreError::Unstorable { id: t.id.to_string(), reason: "the database refused the row".into() })
                }
            })
            .collect::<Result<_, _>>()?;
        tx.commit().await?;
        Ok(kept)
    }

    async fn find(&self, id: &TransactionId) -> Result<Option<ProcessedTransaction>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM transactions WHERE id = ?"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(read_row).transpose()
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transactions").fetch_one(&self.pool).await?;
        Ok(n as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool.execute("SELECT 1").await?;
        Ok(())
    }
}

/// Creates an empty database with a unique name on the server of
/// `server_url` (e.g. `mysql://root@127.0.0.1:3306`) and returns its URL.
/// For tests and benchmarks that need a fresh database each.
pub async fn create_scratch_database(server_url: &str, prefix: &str) -> Result<String, StoreError> {
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::MySqlConnection::connect(server_url.trim_end_matches('/')).await?;
    conn.execute(format!("CREATE DATABASE `{name}`").as_str()).await?;
    conn.close().await?;
    Ok(format!("{}/{name}", server_url.trim_end_matches('/')))
}

/// Drops a database made by [`create_scratch_database`].
pub async fn drop_scratch_database(database_url: &str) -> Result<(), StoreError> {
    let (server, name) =
        database_url.rsplit_once('/').ok_or_else(|| StoreError::UnsupportedUrl(database_url.to_owned()))?;
    let mut conn = sqlx::MySqlConnection::connect(server).await?;
    conn.execute(format!("DROP DATABASE IF EXISTS `{name}`").as_str()).await?;
    conn.close().await?;
    Ok(())
}
