//! Account administration, shared by the CLI and the admin endpoints.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;
use transaction_model::account::AccountIdError;
use transaction_model::{AccountId, SecretHasher};
use transaction_store::{truncate_to_micros, Account, AccountRepository, AccountStatus, StoreError};

use crate::secret::generate_secret;

pub const MAX_NAME_CHARS: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("invalid account id: {0}")]
    InvalidId(#[from] AccountIdError),
    #[error("account name must be 1 to {MAX_NAME_CHARS} characters, without control characters")]
    InvalidName,
    #[error("no account {0:?}")]
    NotFound(String),
    #[error("account {0:?} already exists")]
    AlreadyExists(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists(id) => AdminError::AlreadyExists(id),
            e => AdminError::Store(e),
        }
    }
}

/// An account with its new secret, which exists only here: it is shown once
/// and stored only as a hash.
pub struct WithSecret {
    pub account: Account,
    pub secret: String,
}

impl fmt::Debug for WithSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithSecret").field("account", &self.account).field("secret", &"<redacted>").finish()
    }
}

#[derive(Clone)]
pub struct AccountAdmin {
    pub repo: Arc<dyn AccountRepository>,
    pub hasher: SecretHasher,
}

fn valid_name(name: &str) -> Result<String, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AdminError::InvalidName);
    }
    Ok(name.to_owned())
}

impl AccountAdmin {
    pub async fn create(&self, id: &str, name: &str) -> Result<WithSecret, AdminError> {
        let id = AccountId::try_from(id)?;
        let name = valid_name(name)?;
        let secret = generate_secret();
        let account = Account {
            id,
            name,
            status: AccountStatus::Active,
            secret_hash: self.hasher.hash(&secret),
            created_at: truncate_to_micros(OffsetDateTime::now_utc()),
        };
        self.repo.create_account(&account).await?;
        Ok(WithSecret { account, secret })
    }

    pub async fn list(&self) -> Result<Vec<Account>, AdminError> {
        Ok(self.repo.list_accounts().await?)
    }

    pub async fn get(&self, id: &str) -> Result<Account, AdminError> {
        let account_id = AccountId::try_from(id)?;
        self.repo.find_account(&account_id).await?.ok_or_else(|| AdminError::NotFound(id.to_owned()))
    }

    pub async fn set_status(&self, id: &str, status: AccountStatus) -> Result<Account, AdminError> {
        let account_id = AccountId::try_from(id)?;
        if !self.repo.set_account_status(&account_id, status).await? {
            return Err(AdminError::NotFound(id.to_owned()));
        }
        self.get(id).await
    }

    /// A new secret; the old one stops working at once.
    pub async fn rotate_secret(&self, id: &str) -> Result<WithSecret, AdminError> {
        let account_id = AccountId::try_from(id)?;
        let secret = generate_secret();
        if !self.repo.rotate_secret(&account_id, &self.hasher.hash(&secret)).await? {
            return Err(AdminError::NotFound(id.to_owned()));
        }
        Ok(WithSecret { account: self.get(id).await?, secret })
    }
}
