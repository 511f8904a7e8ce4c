//! Merchant accounts: who may post transactions, and with which secret.

use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;
use transaction_model::AccountId;

use crate::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    Active,
    Disabled,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(AccountStatus::Active),
            "disabled" => Some(AccountStatus::Disabled),
            _ => None,
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub status: AccountStatus,
    /// Hex HMAC-SHA256 of the secret (see `transaction_model::SecretHasher`).
    pub secret_hash: String,
    /// Microsecond precision once stored.
    pub created_at: OffsetDateTime,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("status", &self.status)
            .field("secret_hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Storage of merchant accounts, keyed by account id.
#[async_trait]
pub trait AccountRepository: Send + Sync + 'static {
    /// Fails with [`StoreError::AlreadyExists`] when the id is taken.
    async fn create_account(&self, account: &Account) -> Result<(), StoreError>;

    async fn find_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError>;

    /// Every account, ordered by id.
    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError>;

    /// False when no such account exists.
    async fn set_account_status(&self, id: &AccountId, status: AccountStatus) -> Result<bool, StoreError>;

    /// Replaces the stored secret hash; false when no such account exists.
    async fn rotate_secret(&self, id: &AccountId, new_hash: &str) -> Result<bool, StoreError>;
}
