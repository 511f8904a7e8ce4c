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
    /// Migrations are left to the one-off migrate job (`RUN_MIGRATIONS=false`)
    /// and it has not brought the schema this far yet.
    #[error("the database schema is at version {have}, this build needs {want}: run the migrate job (`api migrate`)")]
    SchemaBehind { have: i64, want: i64 },
    /// A value no store can hold (checked before any statement runs).
    #[error("row {id:?} cannot be stored: {reason}")]
    Unstorable { id: String, reason: String },
}

/// Whether retrying the same call can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The database is down, busy or unreachable: retry, it will pass.
    Transient,
    /// The database refuses this data: retrying the same rows fails again.
    Permanent,
    /// Not known to be either: retry a few times, then treat as permanent.
    Unknown,
}

impl StoreError {
    pub fn kind(&self) -> FailureKind {
        match self {
            StoreError::Unstorable { .. } | StoreError::CorruptRow { .. } => FailureKind::Permanent,
            StoreError::UnsupportedUrl(_) | StoreError::AlreadyExists(_) => FailureKind::Permanent,
            // The migrate job may still be running: wait for it, as for a
            // database that is not up yet.
            StoreError::Worker(_) | StoreError::SchemaBehind { .. } => FailureKind::Transient,
            StoreError::Migration(_) => FailureKind::Unknown,
            StoreError::Sqlite(e) => sqlite_kind(e),
            StoreError::MySql(e) => mysql_kind(e),
        }
    }
}

fn sqlite_kind(e: &rusqlite::Error) -> FailureKind {
    use rusqlite::ErrorCode::*;
    match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            DatabaseBusy
            | DatabaseLocked
            | SystemIoFailure
            | CannotOpen
            | DiskFull
            | OutOfMemory
            | FileLockingProtocolFailed
            | ReadOnly
            | PermissionDenied
            | OperationInterrupted => FailureKind::Transient,
            ConstraintViolation | TooBig | TypeMismatch | ParameterOutOfRange => FailureKind::Permanent,
            _ => FailureKind::Unknown,
        },
        rusqlite::Error::ToSqlConversionFailure(_)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(_)
        | rusqlite::Error::NulError(_) => FailureKind::Permanent,
        _ => FailureKind::Unknown,
    }
}

/// MySQL / MariaDB server error codes that mean "the server is unavailable
/// or busy", not "this row is wrong".
const MYSQL_TRANSIENT_CODES: &[&str] = &[
    "1040", // too many connections
    "1045", // access denied (account changed or locked)
    "1053", // server shutdown in progress
    "1205", // lock wait timeout
    "1213", // deadlock
    "1290", // --read-only
    "1792", // read-only transaction
    "1836", // read-only mode
    "1927", // connection killed (MariaDB)
    "3118", // account locked (MySQL)
    "4151", // account locked (MariaDB)
];

/// Codes that mean "this data is refused" although their SQLSTATE is the
/// generic HY000.
const MYSQL_PERMANENT_CODES: &[&str] = &[
    "1366", // incorrect string value
    "3819", // check constraint violated (MySQL)
    "4025", // check constraint violated (MariaDB)
];

fn mysql_kind(e: &sqlx::Error) -> FailureKind {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => FailureKind::Transient,
        sqlx::Error::Encode(_) | sqlx::Error::TypeNotFound { .. } | sqlx::Error::ColumnDecode { .. } => {
            FailureKind::Permanent
        }
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            let number = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().map(|m| m.number().to_string());
            let number = number.as_deref().unwrap_or("");
            if MYSQL_TRANSIENT_CODES.contains(&number) || code.starts_with("08") || code == "40001" {
                FailureKind::Transient
            } else if MYSQL_PERMANENT_CODES.contains(&number)
                || code.starts_with("22")
                || code.starts_with("23")
                || code.starts_with("45")
            {
                FailureKind::Permanent
            } else {
                FailureKind::Unknown
            }
        }
        _ => FailureKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_transient_and_constraints_are_permanent() {
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None);
        assert_eq!(StoreError::Sqlite(busy).kind(), FailureKind::Transient);
        let constraint = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(19), Some("refused".into()));
        assert_eq!(StoreError::Sqlite(constraint).kind(), FailureKind::Permanent);
        assert_eq!(StoreError::MySql(sqlx::Error::PoolTimedOut).kind(), FailureKind::Transient);
        assert_eq!(StoreError::Unstorable { id: "x".into(), reason: "y".into() }.kind(), FailureKind::Permanent);
    }
}
