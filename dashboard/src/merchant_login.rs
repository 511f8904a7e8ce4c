//! Merchant credentials (account id + secret) checked against the account
//! store shared with the API.

use std::sync::Arc;
use std::time::Duration;

use transaction_model::secret::SecretHasher;
use transaction_model::AccountId;
use transaction_store::{AccountRepository, AccountStatus};

use crate::error::ApiError;

const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// Verified against when the account does not exist, so an unknown id
/// costs the same HMAC as a wrong secret.
const DUMMY_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub enum MerchantLogin {
    Enabled {
        accounts: Arc<dyn AccountRepository>,
        hasher: SecretHasher,
    },
    /// Why merchants cannot log in (missing configuration).
    Disabled(&'static str),
}

impl MerchantLogin {
    /// The account id when the secret is right and the account active.
    /// Every failure looks the same to the caller.
    pub async fn login(&self, account_id: &str, secret: &str) -> Result<AccountId, ApiError> {
        let MerchantLogin::Enabled { accounts, hasher } = self else {
            return Err(self.unavailable());
        };
        let Ok(id) = AccountId::try_from(account_id) else {
            hasher.verify(secret, DUMMY_HASH);
            return Err(ApiError::InvalidCredentials);
        };
        let account = find(accounts.as_ref(), &id).await?;
        let stored = account.as_ref().map_or(DUMMY_HASH, |a| a.secret_hash.as_str());
        let secret_ok = hasher.verify(secret, stored);
        match account {
            Some(a) if secret_ok && a.status == AccountStatus::Active => Ok(id),
            _ => Err(ApiError::InvalidCredentials),
        }
    }

    /// Whether a merchant session may go on: the account still exists and
    /// is active (a disabled merchant loses the view at the next renewal or
    /// reconnection).
    pub async fn still_active(&self, account_id: &str) -> Result<(), ApiError> {
        let MerchantLogin::Enabled { accounts, .. } = self else {
            return Err(self.unavailable());
        };
        let id = AccountId::try_from(account_id).map_err(|_| ApiError::Unauthenticated)?;
        match find(accounts.as_ref(), &id).await? {
            Some(a) if a.status == AccountStatus::Active => Ok(()),
            _ => Err(ApiError::Unauthenticated),
        }
    }

    fn unavailable(&self) -> ApiError {
        match self {
            MerchantLogin::Disabled(why) => ApiError::MerchantLoginUnavailable(why),
            MerchantLogin::Enabled { .. } => ApiError::AccountsUnavailable,
        }
    }
}

async fn find(
    accounts: &dyn AccountRepository,
    id: &AccountId,
) -> Result<Option<transaction_store::Account>, ApiError> {
    match tokio::time::timeout(STORE_TIMEOUT, accounts.find_account(id)).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "account lookup failed");
            Err(ApiError::AccountsUnavailable)
        }
        Err(_) => {
            tracing::error!("account lookup timed out");
            Err(ApiError::AccountsUnavailable)
        }
    }
}
