//! Merchant credentials (account id + secret) checked against the account
//! store shared with the API.

use std::sync::Arc;
use std::time::Duration;

use transaction_model::secret::SecretHasher;
use transaction_model::AccountId;
use transaction_store::{AccountRepository, AccountStatus};

use crate::error::ApiError;
use crate::session::binding;

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
    /// The account id and the session binding of its current secret when
    /// the secret is right and the account active. Every failure looks the
    /// same to the caller.
    pub async fn login(&self, account_id: &str, secret: &str) -> Result<(AccountId, String), ApiError> {
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
            Some(a) if secret_ok && a.status == AccountStatus::Active => Ok((id, binding(a.secret_hash.as_bytes()))),
            _ => Err(ApiError::InvalidCredentials),
        }
    }

    /// Whether a merchant session may go on: the account still exists, is
    /// active, and its secret is the one the session was issued for (a
    /// disabled or rotated merchant loses the view at the next renewal,
    /// reconnection or stream re-check).
    pub async fn still_valid(&self, account_id: &str, bind: &str) -> Result<(), ApiError> {
        let MerchantLogin::Enabled { accounts, .. } = self else {
            return Err(self.unavailable());
        };
        let id = AccountId::try_from(account_id).map_err(|_| ApiError::Unauthenticated)?;
        match find(accounts.as_ref(), &id).await? {
            Some(a) if a.status == AccountStatus::Active && binding(a.secret_hash.as_bytes()) == bind => Ok(()),
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
