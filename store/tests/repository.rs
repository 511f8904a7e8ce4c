//! The repository contract, run against SQLite and against the real MariaDB.

use std::sync::Arc;

use testkit::mysql_server;
use time::macros::datetime;
use transaction_model::{AccountId, Amount, CardBrand, MaskedCard, ProcessedTransaction, Status, TransactionId};
use transaction_store::{mysql, open, TransactionRepository};

fn tx(id: &str, status: Status, cents: i64) -> ProcessedTransaction {
    ProcessedTransaction {
        id: TransactionId::try_from(id).unwrap(),
        account_id: Some(AccountId::try_from("merchant-1").unwrap()),
        amount: Some(Amount::from_cents(cents)),
        status,
        error_message: if status == Status::Approved { String::new() } else { "invalid credit card number".into() },
        card_brand: Some(CardBrand::Visa),
        card_masked: MaskedCard::from_untrusted("4111111111111111"),
        card_hash: Some("ab".repeat(32)),
        card_hash_key_id: Some("h2".into()),
        created_at: datetime!(2026-05-06 07:08:09.123456 UTC),
        processed_at: datetime!(2026-05-06 07:08:10.654321 UTC),
    }
}

async fn contract(repo: Arc<dyn TransactionRepository>) {
    repo.ping().await.unwrap();
    assert_eq!(repo.count().await.unwrap(), 0);

    // A fresh batch is stored as given.
    let first = vec![tx("a", Status::Approved, 100), tx("b", Status::Rejected, 99)];
    let stored = repo.record_batch(first.clone()).await.unwrap();
    assert_eq!(stored, first);
    assert_eq!(repo.count().await.unwrap(), 2);
    assert_eq!(repo.find(&first[0].id).await.unwrap().as_ref(), Some(&first[0]));

    // A redelivered id keeps its first decision, even if decided otherwise now;
    // a duplicate inside the batch also resolves to the first one.
    let mut changed = tx("a", Status::Rejected, 5);
    changed.error_message = "the amount must be greater than 1".into();
    let second = vec![changed, tx("c", Status::Approved, 100_000), tx("c", Status::Rejected, 1)];
    let stored = repo.record_batch(second).await.unwrap();
    assert_eq!(stored[0], first[0]);
    assert_eq!(stored[1], tx("c", Status::Approved, 100_000));
    assert_eq!(stored[2], tx("c", Status::Approved, 100_000));
    assert_eq!(repo.count().await.unwrap(), 3);

    // The shared form names only the rows whose stored decision is another
    // one; the caller's rows are left as they were.
    let third = Arc::new(vec![
        tx("e", Status::Approved, 100),
        tx("a", Status::Approved, 100_000),
        tx("e", Status::Rejected, 1),
        tx("b", Status::Rejected, 99),
    ]);
    let kept = repo.record_shared(Arc::clone(&third)).await.unwrap();
    assert_eq!(kept, vec![None, Some(first[0].clone()), Some(third[0].clone()), None]);
    assert_eq!(third[1], tx("a", Status::Approved, 100_000));
    assert_eq!(repo.count().await.unwrap(), 4);

    // Nullable fields round-trip as None.
    let mut bare = tx("d", Status::Rejected, 0);
    bare.account_id = None;
    bare.amount = None;
    bare.card_brand = None;
    bare.card_masked = None;
    bare.card_hash = None;
    bare.card_hash_key_id = None;
    repo.record_batch(vec![bare.clone()]).await.unwrap();
    assert_eq!(repo.find(&bare.id).await.unwrap(), Some(bare));

    // The hash key id is kept beside the hash, so the key can rotate: rows
    // of the old and the new key tell which key made their hash.
    let mut rotated = tx("f", Status::Approved, 100);
    rotated.card_hash_key_id = Some("h3".into());
    repo.record_batch(vec![rotated.clone()]).await.unwrap();
    assert_eq!(repo.find(&first[0].id).await.unwrap().and_then(|t| t.card_hash_key_id).as_deref(), Some("h2"));
    assert_eq!(repo.find(&rotated.id).await.unwrap().and_then(|t| t.card_hash_key_id).as_deref(), Some("h3"));

    // A large batch crosses the per-statement chunking.
    let many: Vec<_> = (0..2500).map(|i| tx(&format!("bulk-{i}"), Status::Approved, 100 + i)).collect();
    assert_eq!(repo.record_batch(many.clone()).await.unwrap(), many);
    assert_eq!(repo.count().await.unwrap(), 2506);
    assert_eq!(repo.record_batch(Vec::new()).await.unwrap(), Vec::new());
    assert_eq!(repo.find(&TransactionId::try_from("nope").unwrap()).await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_repository_honours_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    contract(open(&url).await.unwrap()).await;
    // Reopening runs no migration twice and keeps the data.
    assert_eq!(open(&url).await.unwrap().count().await.unwrap(), 2506);
}

#[tokio::test]
async fn mysql_repository_honours_the_contract_on_mariadb() {
    let url = mysql::create_scratch_database(&mysql_server(), "store_test").await.unwrap();
    contract(open(&url).await.unwrap()).await;
    assert_eq!(open(&url).await.unwrap().count().await.unwrap(), 2506);
    mysql::drop_scratch_database(&url).await.unwrap();
}

#[tokio::test]
async fn unknown_scheme_is_a_clear_error() {
    let err = open("postgres://x").await.err().unwrap();
    assert!(err.to_string().contains("unsupported database URL"), "{err}");
}

/// With RUN_MIGRATIONS=false a service only checks the schema: it refuses a
/// database the migrate job has not brought up to date, and opens it after.
#[tokio::test]
async fn without_migrations_at_start_a_service_waits_for_the_migrate_job() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let behind = transaction_store::sqlite::SqliteRepository::open_with(&url, false).await.err();
    assert!(matches!(behind, Some(transaction_store::StoreError::SchemaBehind { have: 0, .. })), "{behind:?}");
    assert_eq!(behind.map(|e| e.kind()), Some(transaction_store::FailureKind::Transient));
    transaction_store::migrate(&url).await.unwrap();
    let repo = transaction_store::sqlite::SqliteRepository::open_with(&url, false).await.unwrap();
    assert_eq!(repo.count().await.unwrap(), 0);
}

#[tokio::test]
async fn without_migrations_at_start_mariadb_waits_for_the_migrate_job() {
    let url = mysql::create_scratch_database(&mysql_server(), "store_migrate").await.unwrap();
    let behind = mysql::MySqlRepository::connect_with(&url, false).await.err();
    assert!(matches!(behind, Some(transaction_store::StoreError::SchemaBehind { have: 0, .. })), "{behind:?}");
    transaction_store::migrate(&url).await.unwrap();
    let repo = mysql::MySqlRepository::connect_with(&url, false).await.unwrap();
    assert_eq!(repo.count().await.unwrap(), 0);
    drop(repo);
    mysql::drop_scratch_database(&url).await.unwrap();
}
