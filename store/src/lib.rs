//! Where decided transactions are kept.
//!
//! [`TransactionRepository`] is the one interface; [`open`] picks the
//! implementation from the database URL: `sqlite://FILE` (embedded default)
//! or `mysql://…` (production).

pub mod accepted;
pub mod accounts;
mod error;
pub mod idempotency;
pub mod mysql;
mod open_retry;
mod repository;
pub mod row;
pub mod sqlite;
mod timestamp;
pub mod webhook_health;
pub mod webhooks;

pub use open_retry::open_with_retry;
pub use timestamp::{storable_utc, truncate_to_micros};

use std::sync::Arc;

pub use accepted::{AcceptedRepository, AcceptedTransaction, Decision, ListCursor, TransactionView};
pub use accounts::{Account, AccountRepository, AccountStatus};
pub use error::{FailureKind, StoreError};
pub use idempotency::{IdempotencyBegin, IdempotencyRepository, IdempotencyTimes, StoredResponse};
pub use repository::TransactionRepository;
pub use webhook_health::{EndpointScope, FailingEndpointSummary, WebhookHealthRepository};
pub use webhooks::WebhookRepository;

/// Whether a service brings the schema up to date when it opens the store
/// (`RUN_MIGRATIONS`, default `true`: the local run and the tests). The
/// production manifests set `false`: the services' database users have no
/// DDL rights, a one-off job runs `api migrate` as the migrator user, and a
/// service only checks that the schema is current (and waits until it is).
pub fn migrations_at_start() -> bool {
    !matches!(
        std::env::var("RUN_MIGRATIONS").map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Ok("false" | "0" | "no")
    )
}

/// Brings the schema of the database named by `url` up to date, whatever
/// `RUN_MIGRATIONS` says: the migrate job.
pub async fn migrate(url: &str) -> Result<(), StoreError> {
    if url.starts_with("sqlite:") {
        sqlite::SqliteRepository::open_with(url, true).await.map(drop)
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        mysql::MySqlRepository::connect_with(url, true).await.map(drop)
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Opens the repository named by `url` and brings its schema up to date
/// (or checks it is, see [`migrations_at_start`]).
pub async fn open(url: &str) -> Result<Arc<dyn TransactionRepository>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteRepository::open(url).await?))
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        Ok(Arc::new(mysql::MySqlRepository::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Opens the account store named by `url` (same URLs as [`open`]) and
/// brings its schema up to date.
pub async fn open_accounts(url: &str) -> Result<Arc<dyn AccountRepository>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteRepository::open(url).await?))
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        Ok(Arc::new(mysql::MySqlRepository::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// The webhook endpoints and delivery outbox named by `url` (same URLs as
/// [`open`]), schema brought up to date.
pub async fn open_webhooks(url: &str) -> Result<Arc<dyn WebhookRepository>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteRepository::open(url).await?))
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        Ok(Arc::new(mysql::MySqlRepository::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// What the dashboard reads: merchant accounts (sign-in) and the health of
/// webhook endpoints. One connection pool serves both.
#[derive(Clone)]
pub struct DashboardStore {
    pub accounts: Arc<dyn AccountRepository>,
    pub webhook_health: Arc<dyn WebhookHealthRepository>,
}

/// Opens the dashboard's store named by `url` (same URLs as [`open`]).
pub async fn open_dashboard_store(url: &str) -> Result<DashboardStore, StoreError> {
    if url.starts_with("sqlite:") {
        let repo = Arc::new(sqlite::SqliteRepository::open(url).await?);
        Ok(DashboardStore { accounts: repo.clone(), webhook_health: repo })
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        let repo = Arc::new(mysql::MySqlRepository::connect(url).await?);
        Ok(DashboardStore { accounts: repo.clone(), webhook_health: repo })
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Everything the API keeps, in one database: accounts, the transactions it
/// accepted (joined with the processor's decisions) and idempotency keys.
#[derive(Clone)]
pub struct ApiStore {
    pub accounts: Arc<dyn AccountRepository>,
    pub accepted: Arc<dyn AcceptedRepository>,
    pub idempotency: Arc<dyn IdempotencyRepository>,
    pub transactions: Arc<dyn TransactionRepository>,
    pub webhooks: Arc<dyn WebhookRepository>,
}

/// Opens the API's store named by `url` (same URLs as [`open`]).
pub async fn open_api_store(url: &str) -> Result<ApiStore, StoreError> {
    if url.starts_with("sqlite:") {
        let repo = Arc::new(sqlite::SqliteRepository::open(url).await?);
        Ok(ApiStore {
            accounts: repo.clone(),
            accepted: repo.clone(),
            idempotency: repo.clone(),
            webhooks: repo.clone(),
            transactions: repo,
        })
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        let repo = Arc::new(mysql::MySqlRepository::connect(url).await?);
        Ok(ApiStore {
            accounts: repo.clone(),
            accepted: repo.clone(),
            idempotency: repo.clone(),
            webhooks: repo.clone(),
            transactions: repo,
        })
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// The URL without its password, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact_url("mysql://u:secret@h:3306/db"), "mysql://u:***@h:3306/db");
        assert_eq!(super::redact_url("sqlite://gateway.db"), "sqlite://gateway.db");
    }
}
