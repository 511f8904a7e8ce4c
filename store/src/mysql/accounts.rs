//! [`AccountRepository`] on MySQL / MariaDB.

use async_trait::async_trait;
use sqlx::mysql::MySqlRow;
use sqlx::Row;
use time::PrimitiveDateTime;
use transaction_model::AccountId;

use super::{binary_text, MySqlRepository};
use crate::accounts::{Account, AccountRepository, AccountStatus};
use crate::timestamp::to_utc_primitive;
use crate::StoreError;

const COLUMNS: &str = "id, name, status, secret_hash, created_at";

fn read_account(row: &MySqlRow) -> Result<Account, StoreError> {
    let id = binary_text(row, "id")?.unwrap_or_default();
    let corrupt = |reason: &str| StoreError::CorruptRow { id: id.clone(), reason: reason.into() };
    let status: String = row.try_get("status")?;
    let created_at: PrimitiveDateTime = row.try_get("created_at")?;
    Ok(Account {
        id: AccountId::try_from(id.as_str()).map_err(|e| corrupt(&e.to_string()))?,
        name: row.try_get("name")?,
        status: AccountStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: created_at.assume_utc(),
    })
}

#[async_trait]
impl AccountRepository for MySqlRepository {
    async fn create_account(&self, account: &Account) -> Result<(), StoreError> {
        let inserted = sqlx::query(&format!("INSERT IGNORE INTO accounts ({COLUMNS}) VALUES (?, ?, ?, ?, ?)"))
            .bind(account.id.as_str())
            .bind(&account.name)
            .bind(account.status.as_str())
            .bind(&account.secret_hash)
            .bind(to_utc_primitive(account.created_at))
            .execute(self.pool())
            .await?
            .rows_affected();
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(account.id.to_string()));
        }
        Ok(())
    }

    async fn find_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM accounts WHERE id = ?"))
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(read_account).transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM accounts ORDER BY id")).fetch_all(self.pool()).await?;
        rows.iter().map(read_account).collect()
    }

    async fn set_account_status(&self, id: &AccountId, status: AccountStatus) -> Result<bool, StoreError> {
        // MySQL reports changed rows, not matched ones: setting the current
        // status changes nothing yet the account exists, so ask directly.
        sqlx::query("UPDATE accounts SET status = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(id.as_str())
            .execute(self.pool())
            .await?;
        Ok(self.account_exists(id).await?)
    }

    async fn rotate_secret(&self, id: &AccountId, new_hash: &str) -> Result<bool, StoreError> {
        sqlx::query("UPDATE accounts SET secret_hash = ? WHERE id = ?")
            .bind(new_hash)
            .bind(id.as_str())
            .execute(self.pool())
            .await?;
        Ok(self.account_exists(id).await?)
    }
}

impl MySqlRepository {
    async fn account_exists(&self, id: &AccountId) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE id = ?")
            .bind(id.as_str())
            .fetch_one(self.pool())
            .await?;
        Ok(n == 1)
    }
}
