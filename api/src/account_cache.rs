//! Authenticated accounts kept in memory, so a merchant's request does not
//! read the database to check its credentials.
//!
//! Only what authentication needs is kept (the stored secret hash and the
//! status); the secret itself is still checked on every request, by HMAC
//! and a constant-time comparison. Changes made through this replica (the
//! admin API) drop the entry at once; changes made elsewhere (another
//! replica, the CLI) are seen once the entry is older than the TTL, which
//! bounds how long a rotated secret or a disabled account keeps working
//! there. Unknown ids are not kept, so guessed ids cannot fill the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use transaction_model::AccountId;
use transaction_store::{Account, AccountRepository, AccountStatus, StoreError};

/// Most accounts kept; beyond it the cache starts over (every entry is one
/// database read away).
const MAX_ENTRIES: usize = 10_000;

/// What authentication needs of an account.
#[derive(Clone)]
pub struct Credentials {
    pub status: AccountStatus,
    /// Hex HMAC of the secret, as stored.
    pub secret_hash: Arc<str>,
}

struct Entry {
    credentials: Credentials,
    fetched: Instant,
}

#[derive(Default)]
struct Entries {
    map: HashMap<AccountId, Entry>,
    /// Bumped by every change: a lookup that read the database before a
    /// change does not store what it read after it.
    generation: u64,
}

/// An [`AccountRepository`] whose writes drop the account's cached entry;
/// [`CachedAccounts::credentials`] is the cached read. Every other read goes
/// to the database, so the admin API always shows the stored account.
pub struct CachedAccounts {
    inner: Arc<dyn AccountRepository>,
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl CachedAccounts {
    /// A `ttl` of zero keeps nothing: every lookup reads the database.
    pub fn new(inner: Arc<dyn AccountRepository>, ttl: Duration) -> Self {
        CachedAccounts { inner, ttl, entries: Mutex::new(Entries::default()) }
    }

    /// The account's credentials, from memory if read within the TTL.
    pub async fn credentials(&self, id: &AccountId) -> Result<Option<Credentials>, StoreError> {
        let generation = {
            let entries = self.lock();
            if let Some(entry) = entries.map.get(id) {
                if entry.fetched.elapsed() < self.ttl {
                    return Ok(Some(entry.credentials.clone()));
                }
            }
            entries.generation
        };
        let fetched = Instant::now();
        let Some(account) = self.inner.find_account(id).await? else {
            return Ok(None);
        };
        let credentials = Credentials { status: account.status, secret_hash: Arc::from(account.secret_hash) };
        if !self.ttl.is_zero() {
            let mut entries = self.lock();
            if entries.generation == generation {
                if entries.map.len() >= MAX_ENTRIES && !entries.map.contains_key(id) {
                    let ttl = self.ttl;
                    entries.map.retain(|_, e| e.fetched.elapsed() < ttl);
                    if entries.map.len() >= MAX_ENTRIES {
                        entries.map.clear();
                    }
                }
                entries.map.insert(id.clone(), Entry { credentials: credentials.clone(), fetched });
            }
        }
        Ok(Some(credentials))
    }

    /// Forgets the account; called after every change to it, whether or not
    /// the change succeeded (a failed commit may still have landed).
    pub fn invalidate(&self, id: &AccountId) {
        let mut entries = self.lock();
        entries.generation = entries.generation.wrapping_add(1);
        entries.map.remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The map holds no invariant a panicking holder could break halfway.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl AccountRepository for CachedAccounts {
    async fn create_account(&self, account: &Account) -> Result<(), StoreError> {
        let result = self.inner.create_account(account).await;
        self.invalidate(&account.id);
        result
    }

    async fn find_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.inner.find_account(id).await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.inner.list_accounts().await
    }

    async fn set_account_status(&self, id: &AccountId, status: AccountStatus) -> Result<bool, StoreError> {
        let result = self.inner.set_account_status(id, status).await;
        self.invalidate(id);
        result
    }

    async fn rotate_secret(&self, id: &AccountId, new_hash: &str) -> Result<bool, StoreError> {
        let result = self.inner.rotate_secret(id, new_hash).await;
        self.invalidate(id);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use time::OffsetDateTime;

    /// One account in memory; counts the reads that reach it.
    struct Store {
        account: Mutex<Option<Account>>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl AccountRepository for Store {
        async fn create_account(&self, account: &Account) -> Result<(), StoreError> {
            *self.account.lock().unwrap() = Some(account.clone());
            Ok(())
        }
        async fn find_account(&self, _: &AccountId) -> Result<Option<Account>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.account.lock().unwrap().clone())
        }
        async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
            Ok(self.account.lock().unwrap().iter().cloned().collect())
        }
        async fn set_account_status(&self, _: &AccountId, status: AccountStatus) -> Result<bool, StoreError> {
            Ok(self.account.lock().unwrap().as_mut().map(|a| a.status = status).is_some())
        }
        async fn rotate_secret(&self, _: &AccountId, new_hash: &str) -> Result<bool, StoreError> {
            Ok(self.account.lock().unwrap().as_mut().map(|a| a.secret_hash = new_hash.into()).is_some())
        }
    }

    fn setup(ttl: Duration) -> (Arc<Store>, CachedAccounts, AccountId) {
        let id = AccountId::try_from("m1").unwrap();
        let account = Account {
            id: id.clone(),
            name: "M".into(),
            status: AccountStatus::Active,
            secret_hash: "aa".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let store = Arc::new(Store { account: Mutex::new(Some(account)), reads: AtomicUsize::new(0) });
        let cache = CachedAccounts::new(store.clone(), ttl);
        (store, cache, id)
    }

    #[tokio::test]
    async fn hits_stay_in_memory_and_changes_through_it_are_seen_at_once() {
        let (store, cache, id) = setup(Duration::from_secs(3600));
        for _ in 0..3 {
            assert_eq!(&*cache.credentials(&id).await.unwrap().unwrap().secret_hash, "aa");
        }
        assert_eq!(store.reads.load(Ordering::SeqCst), 1, "one database read for three lookups");

        assert!(cache.rotate_secret(&id, "bb").await.unwrap());
        assert_eq!(&*cache.credentials(&id).await.unwrap().unwrap().secret_hash, "bb");
        assert!(cache.set_account_status(&id, AccountStatus::Disabled).await.unwrap());
        assert_eq!(cache.credentials(&id).await.unwrap().unwrap().status, AccountStatus::Disabled);

        // A change made elsewhere (another replica) waits for the TTL.
        store.account.lock().unwrap().as_mut().unwrap().secret_hash = "cc".into();
        assert_eq!(&*cache.credentials(&id).await.unwrap().unwrap().secret_hash, "bb");
    }

    #[tokio::test]
    async fn a_zero_ttl_reads_every_time_and_unknown_ids_are_not_kept() {
        let (store, cache, id) = setup(Duration::ZERO);
        cache.credentials(&id).await.unwrap();
        cache.credentials(&id).await.unwrap();
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);

        let (store, cache, _) = setup(Duration::from_secs(3600));
        *store.account.lock().unwrap() = None;
        let unknown = AccountId::try_from("nobody").unwrap();
        assert!(cache.credentials(&unknown).await.unwrap().is_none());
        assert!(cache.lock().map.is_empty());
    }
}
