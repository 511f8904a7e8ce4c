//! The account repository contract, run against SQLite and the real MariaDB.

use std::sync::Arc;

use testkit::mysql_server;
use time::macros::datetime;
use transaction_model::AccountId;
use transaction_store::{mysql, open_accounts, Account, AccountRepository, AccountStatus, StoreError};

fn account(id: &str, name: &str) -> Account {
    Account {
        id: AccountId::try_from(id).unwrap(),
        name: name.into(),
        status: AccountStatus::Active,
        secret_hash: "ab".repeat(32),
        created_at: datetime!(2026-05-06 07:08:09.123456 UTC),
    }
}

async fn contract(repo: Arc<dyn AccountRepository>) {
    assert!(repo.list_accounts().await.unwrap().is_empty());
    let b = account("merchant-b", "Bob's Bikes");
    let a = account("merchant-a", "Ada's Atelier — ünïcode");
    repo.create_account(&b).await.unwrap();
    repo.create_account(&a).await.unwrap();
    assert_eq!(repo.find_account(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(repo.list_accounts().await.unwrap(), vec![a.clone(), b.clone()], "ordered by id");

    // Ids are unique and case-sensitive.
    let err = repo.create_account(&account("merchant-a", "again")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(ref id) if id == "merchant-a"), "{err:?}");
    assert_eq!(repo.find_account(&a.id).await.unwrap().unwrap().name, a.name, "first one kept");
    let upper = account("MERCHANT-A", "upper");
    repo.create_account(&upper).await.unwrap();
    assert_eq!(repo.find_account(&upper.id).await.unwrap(), Some(upper));

    // Status changes, including to the current status, report existence.
    assert!(repo.set_account_status(&a.id, AccountStatus::Disabled).await.unwrap());
    assert_eq!(repo.find_account(&a.id).await.unwrap().unwrap().status, AccountStatus::Disabled);
    assert!(repo.set_account_status(&a.id, AccountStatus::Disabled).await.unwrap());
    assert!(repo.set_account_status(&a.id, AccountStatus::Active).await.unwrap());
    assert_eq!(repo.find_account(&a.id).await.unwrap().unwrap().status, AccountStatus::Active);
    let ghost = AccountId::try_from("ghost").unwrap();
    assert!(!repo.set_account_status(&ghost, AccountStatus::Disabled).await.unwrap());

    // Rotation replaces only that account's hash.
    let new_hash = "cd".repeat(32);
    assert!(repo.rotate_secret(&b.id, &new_hash).await.unwrap());
    assert!(repo.rotate_secret(&b.id, &new_hash).await.unwrap(), "same hash again still exists");
    assert_eq!(repo.find_account(&b.id).await.unwrap().unwrap().secret_hash, new_hash);
    assert_eq!(repo.find_account(&a.id).await.unwrap().unwrap().secret_hash, a.secret_hash);
    assert!(!repo.rotate_secret(&ghost, &new_hash).await.unwrap());
    assert_eq!(repo.find_account(&ghost).await.unwrap(), None);

    // Debug never shows the hash.
    let shown = format!("{:?}", repo.find_account(&b.id).await.unwrap().unwrap());
    assert!(!shown.contains(&new_hash) && shown.contains("redacted"), "{shown}");
}

#[tokio::test]
async fn sqlite_account_repository_honours_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    contract(open_accounts(&url).await.unwrap()).await;
    // The transaction store opens the same file, migrated once.
    assert_eq!(open_accounts(&url).await.unwrap().list_accounts().await.unwrap().len(), 3);
    assert_eq!(transaction_store::open(&url).await.unwrap().count().await.unwrap(), 0);
}

#[tokio::test]
async fn mysql_account_repository_honours_the_contract_on_mariadb() {
    let url = mysql::create_scratch_database(&mysql_server(), "accounts_test").await.unwrap();
    contract(open_accounts(&url).await.unwrap()).await;
    assert_eq!(open_accounts(&url).await.unwrap().list_accounts().await.unwrap().len(), 3);
    mysql::drop_scratch_database(&url).await.unwrap();
}
