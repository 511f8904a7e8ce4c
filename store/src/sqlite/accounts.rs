//! [`AccountRepository`] on SQLite.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};
use transaction_model::AccountId;

use super::SqliteRepository;
use crate::accounts::{Account, AccountRepository, AccountStatus};
use crate::timestamp::{from_sqlite_text, to_sqlite_text};
use crate::StoreError;

const COLUMNS: &str = "id, name, status, secret_hash, created_at";

fn read_account(row: &Row<'_>) -> rusqlite::Result<Result<Account, StoreError>> {
    let id: String = row.get(0)?;
    let name: String = row.get(1)?;
    let status: String = row.get(2)?;
    let secret_hash: String = row.get(3)?;
    let created_at: String = row.get(4)?;
    let corrupt = |reason: &str| StoreError::CorruptRow { id: id.clone(), reason: reason.into() };
    Ok((|| {
        Ok(Account {
            id: AccountId::try_from(id.as_str()).map_err(|e| corrupt(&e.to_string()))?,
            name,
            status: AccountStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
            secret_hash,
            created_at: from_sqlite_text(&created_at).ok_or_else(|| corrupt("created_at"))?,
        })
    })())
}

#[async_trait]
impl AccountRepository for SqliteRepository {
    async fn create_account(&self, account: &Account) -> Result<(), StoreError> {
        let a = account.clone();
        self.with_conn(move |conn| {
            let inserted = conn.execute(
                &format!("INSERT INTO accounts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO NOTHING"),
                params![a.id.as_str(), a.name, a.status.as_str(), a.secret_hash, to_sqlite_text(a.created_at)],
            )?;
            if inserted == 0 {
                return Err(StoreError::AlreadyExists(a.id.to_string()));
            }
            Ok(())
        })
        .await
    }

    async fn find_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        let id = id.as_str().to_owned();
        self.with_read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM accounts WHERE id = ?1"))?;
            stmt.query_row([id], read_account).optional()?.transpose()
        })
        .await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.with_read(|conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM accounts ORDER BY id"))?;
            let rows = stmt.query_map([], read_account)?;
            let mut accounts = Vec::new();
            for row in rows {
                accounts.push(row??);
            }
            Ok(accounts)
        })
        .await
    }

    async fn set_account_status(&self, id: &AccountId, status: AccountStatus) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        self.with_conn(move |conn| {
            let n = conn.execute("UPDATE accounts SET status = ?1 WHERE id = ?2", params![status.as_str(), id])?;
            Ok(n == 1)
        })
        .await
    }

    async fn rotate_secret(&self, id: &AccountId, new_hash: &str) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        let new_hash = new_hash.to_owned();
        self.with_conn(move |conn| {
            let n = conn.execute("UPDATE accounts SET secret_hash = ?1 WHERE id = ?2", params![new_hash, id])?;
            Ok(n == 1)
        })
        .await
    }
}
