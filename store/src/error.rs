use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://FILE or mysql://USER:PASS@HOST/DB")]
    UnsupportedUrl(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("mysql: {0}")]
    MySql(#[from] sqlx::Error),
    #[error("mysql migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored row {id:?} is invalid: {reason}")]
    CorruptRow { id: String, reason: String },
    #[error("{0:?} already exists")]
    AlreadyExists(String),
    #[error("database worker stopped: {0}")]
    Worker(String),
}
