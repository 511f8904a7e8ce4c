//! Read-only connections beside the one writer.
//!
//! SQLite in WAL mode lets readers run while a writer commits, but only on
//! connections of their own: behind the writer's mutex, every `GET`, list
//! and account lookup would queue behind a commit's fsync. Each reader sees
//! the last committed state when its statement starts, so a read that
//! follows a completed write sees it.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};

use rusqlite::Connection;

use crate::StoreError;

/// Enough for the blocking pool to overlap reads with a commit on a small
/// machine; each one is a file handle and a page cache.
pub(super) const READERS: usize = 4;

pub(super) struct ReadPool {
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl ReadPool {
    /// No readers: every read goes to the writer (an in-memory database,
    /// which other connections cannot open).
    pub(super) fn none() -> Self {
        ReadPool { connections: Vec::new(), next: AtomicUsize::new(0) }
    }

    /// Opens `count` connections to `path`, which the writer has already
    /// put in WAL mode and migrated. `query_only` makes a write through a
    /// reader an error instead of a second writer.
    pub(super) fn open(path: &Path, count: usize) -> Result<Self, StoreError> {
        let mut connections = Vec::with_capacity(count);
        for _ in 0..count {
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "query_only", "ON")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            connections.push(Mutex::new(conn));
        }
        Ok(ReadPool { connections, next: AtomicUsize::new(0) })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    /// Runs `f` on a free reader, or waits for one (blocking: call it on
    /// the blocking pool).
    pub(super) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let count = self.connections.len();
        if count == 0 {
            return Err(StoreError::Worker("no sqlite reader".into()));
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        for i in 0..count {
            match self.connections[(start + i) % count].try_lock() {
                Ok(conn) => return f(&conn),
                Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => continue,
            }
        }
        let conn = self.connections[start].lock().map_err(|_| StoreError::Worker("sqlite reader poisoned".into()))?;
        f(&conn)
    }
}
