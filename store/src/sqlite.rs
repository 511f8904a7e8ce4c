//! The embedded implementation: one SQLite file in WAL mode.

mod accepted;
mod accounts;
mod idempotency;
mod read_pool;
mod webhooks;

// The dashboard's read of failing endpoints, without secrets.
mod webhook_health;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use transaction_model::{AccountId, Amount, CardBrand, MaskedCard, ProcessedTransaction, Status, TransactionId};

use self::read_pool::{ReadPool, READERS};
use crate::row::check_storable;
use crate::timestamp::{from_sqlite_text, to_sqlite_text};
use crate::{StoreError, TransactionRepository};

/// Schema versions, applied in order and recorded in `PRAGMA user_version`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_transactions.sql"),
    include_str!("../migrations/sqlite/0002_accounts.sql"),
    include_str!("../migrations/sqlite/0003_accepted_transactions.sql"),
    include_str!("../migrations/sqlite/0004_idempotency_keys.sql"),
    include_str!("../migrations/sqlite/0005_undelivered_intents.sql"),
    // 0006 is reserved for another change; keep this list in file order.
    include_str!("../migrations/sqlite/0007_webhooks.sql"),
    include_str!("../migrations/sqlite/0008_card_hash_key_id.sql"),
];

const COLUMNS: &str = "id, account_id, amount_cents, status, error_message, card_brand, \
                       card_masked, card_hash, created_at, processed_at, card_hash_key_id";

pub struct SqliteRepository {
    // rusqlite connections are not Sync; every call runs on the blocking
    // pool and takes the lock, which also serialises writers as SQLite does.
    conn: Arc<Mutex<Connection>>,
    /// Reads that need not queue behind a commit (see `read_pool`).
    readers: Arc<ReadPool>,
}

impl SqliteRepository {
    /// `sqlite://FILE` (relative or absolute) or `sqlite::memory:`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, crate::migrations_at_start()).await
    }

    /// Opens `url`, migrating when `run_migrations`, else only checking the
    /// schema is current.
    pub async fn open_with(url: &str, run_migrations: bool) -> Result<Self, StoreError> {
        let target = parse_url(url)?;
        let (conn, readers) = tokio::task::spawn_blocking(move || -> Result<(Connection, ReadPool), StoreError> {
            let mut conn = match &target {
                Some(path) => Connection::open(path)?,
                None => Connection::open_in_memory()?,
            };
            // WAL lets readers (the API) run beside the processor's writes;
            // synchronous=FULL makes a commit durable before Kafka offsets
            // move past it, even across a power loss.
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            if run_migrations {
                migrate(&mut conn)?;
            } else {
                check_schema(&conn)?;
            }
            let readers = match &target {
                Some(path) => ReadPool::open(path, READERS)?,
                None => ReadPool::none(),
            };
            Ok((conn, readers))
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))??;
        Ok(SqliteRepository { conn: Arc::new(Mutex::new(conn)), readers: Arc::new(readers) })
    }

    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Worker("sqlite lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    /// A read on a reader connection, so it does not wait for the writer;
    /// on the writer when there are no readers (in-memory database).
    async fn with_read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.readers.is_empty() {
            return self.with_conn(move |conn| f(conn)).await;
        }
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || readers.with(f)).await.map_err(|e| StoreError::Worker(e.to_string()))?
    }
}

fn parse_url(url: &str) -> Result<Option<PathBuf>, StoreError> {
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return Ok(None);
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() {
        return Err(StoreError::UnsupportedUrl(url.to_owned()));
    }
    Ok(Some(PathBuf::from(path)))
}

fn check_schema(conn: &Connection) -> Result<(), StoreError> {
    let have: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let want = MIGRATIONS.len() as i64;
    if have < want {
        return Err(StoreError::SchemaBehind { have, want });
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied sqlite migration");
    }
    Ok(())
}

fn select_one(conn: &Connection, id: &str) -> Result<Option<ProcessedTransaction>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM transactions WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let row = stmt.query_row([id], read_row).optional()?;
    row.transpose()
}

type RowResult = Result<ProcessedTransaction, StoreError>;

fn read_row(row: &Row<'_>) -> rusqlite::Result<RowResult> {
    let id: String = row.get(0)?;
    let account_id: Option<String> = row.get(1)?;
    let amount_cents: Option<i64> = row.get(2)?;
    let status: String = row.get(3)?;
    let error_message: String = row.get(4)?;
    let card_brand: Option<String> = row.get(5)?;
    let card_masked: Option<String> = row.get(6)?;
    let card_hash: Option<String> = row.get(7)?;
    let created_at: String = row.get(8)?;
    let processed_at: String = row.get(9)?;
    let card_hash_key_id: Option<String> = row.get(10)?;
    let corrupt = |reason: &str| StoreError::CorruptRow { id: id.clone(), reason: reason.into() };
    Ok((|| {
        Ok(ProcessedTransaction {
            id: TransactionId::try_from(id.as_str()).map_err(|e| corrupt(&e.to_string()))?,
            account_id: account_id.map(|a| AccountId::try_from(a).map_err(|e| corrupt(&e.to_string()))).transpose()?,
            amount: amount_cents.map(Amount::from_cents),
            status: Status::parse(&status).ok_or_else(|| corrupt("status"))?,
            error_message,
            card_brand: card_brand.map(|b| CardBrand::parse(&b).ok_or_else(|| corrupt("card_brand"))).transpose()?,
            card_masked: card_masked.map(MaskedCard::from_stored),
            card_hash,
            card_hash_key_id,
            created_at: from_sqlite_text(&created_at).ok_or_else(|| corrupt("created_at"))?,
            processed_at: from_sqlite_text(&processed_at).ok_or_else(|| corrupt("processed_at"))?,
        })
    })())
}

#[async_trait]
impl TransactionRepository for SqliteRepository {
    async fn record_shared(
        &self,
        batch: Arc<Vec<ProcessedTransaction>>,
    ) -> Result<Vec<Option<ProcessedTransaction>>, StoreError> {
        for t in batch.iter() {
            check_storable(t)?;
        }
        self.with_conn(move |conn| {
            let tx = conn.transaction()?;
            let mut kept = Vec::with_capacity(batch.len());
            {
                let sql = format!(
                    "INSERT INTO transactions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                     ON CONFLICT(id) DO NOTHING"
                );
                let mut insert = tx.prepare_cached(&sql)?;
                for t in batch.iter() {
                    let inserted = insert.execute(params![
                        t.id.as_str(),
                        t.account_id.as_ref().map(AccountId::as_str),
                        t.amount.map(Amount::cents),
                        t.status.as_str(),
                        t.error_message.as_str(),
                        t.card_brand.map(CardBrand::as_str),
                        t.card_masked.as_ref().map(MaskedCard::as_str),
                        t.card_hash.as_deref(),
                        to_sqlite_text(t.created_at),
                        to_sqlite_text(t.processed_at),
                        t.card_hash_key_id,
                    ])?;
                    if inserted == 1 {
                        kept.push(None);
                    } else {
                        let first = select_one(&tx, t.id.as_str())?.ok_or_else(|| StoreError::CorruptRow {
                            id: t.id.to_string(),
                            reason: "conflicting row vanished".into(),
                        })?;
                        kept.push((first != *t).then_some(first));
                    }
                }
            }
            tx.commit()?;
            Ok(kept)
        })
        .await
    }

    async fn find(&self, id: &TransactionId) -> Result<Option<ProcessedTransaction>, StoreError> {
        let id = id.as_str().to_owned();
        self.with_read(move |conn| select_one(conn, &id)).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.with_read(|conn| {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM transactions", [], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(parse_url("sqlite://gateway.db").unwrap(), Some(PathBuf::from("gateway.db")));
        assert_eq!(parse_url("sqlite:///tmp/g.db").unwrap(), Some(PathBuf::from("/tmp/g.db")));
        assert_eq!(parse_url("sqlite::memory:").unwrap(), None);
        assert!(parse_url("sqlite://").is_err());
    }

    // Holding the writer across the reads is the point of the test.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_do_not_queue_behind_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let repo = SqliteRepository::open(&format!("sqlite://{}", dir.path().join("r.db").display())).await.unwrap();
        let account = AccountId::try_from("m1").unwrap();
        // The writer held, as during a long commit: a read through it would
        // never finish (the bound only keeps a regression from hanging).
        let writer = Arc::clone(&repo.conn);
        let held = writer.lock().unwrap();
        let read = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            (repo.count().await, crate::AccountRepository::find_account(&repo, &account).await)
        })
        .await;
        drop(held);
        let (count, found) = read.expect("reads went through the held writer");
        assert_eq!(count.unwrap(), 0);
        assert!(found.unwrap().is_none());
    }
}
