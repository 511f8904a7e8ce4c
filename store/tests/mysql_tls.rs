//! The MySQL store over TLS with the server's certificate verified, against
//! a MariaDB of the test's own that requires secure transport: the store
//! connects and migrates with `ssl-mode=VERIFY_IDENTITY` and the test CA;
//! plaintext is refused by the server, an untrusted certificate by the
//! client.

use sqlx::{Connection, Executor};
use testkit::{PrivateMariaDb, TestCa};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mysql_store_speaks_tls_and_verifies_the_server() {
    let ca = TestCa::generate();
    let db = PrivateMariaDb::start_tls(&ca).await;
    let url = |database: &str, mode: &str, ca_path: &std::path::Path| {
        format!("mysql://root@127.0.0.1:{}/{database}?ssl-mode={mode}&ssl-ca={}", db.port(), ca_path.display())
    };

    let mut admin = sqlx::MySqlConnection::connect(&url("mysql", "VERIFY_IDENTITY", &ca.ca())).await.unwrap();
    admin.execute("CREATE DATABASE gateway").await.unwrap();
    let (_, cipher): (String, String) =
        sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'").fetch_one(&mut admin).await.unwrap();
    assert!(!cipher.is_empty(), "the session is encrypted");

    let repo = transaction_store::open(&url("gateway", "VERIFY_IDENTITY", &ca.ca())).await.expect("store over TLS");
    assert_eq!(repo.count().await.unwrap(), 0, "migrated and queried over TLS");
    let accounts = transaction_store::open_accounts(&url("gateway", "VERIFY_CA", &ca.ca())).await;
    assert!(accounts.is_ok(), "VERIFY_CA works too");

    let plaintext = format!("mysql://root@127.0.0.1:{}/gateway?ssl-mode=DISABLED", db.port());
    assert!(transaction_store::open(&plaintext).await.is_err(), "the server refuses plaintext");
    let other = TestCa::generate();
    assert!(
        transaction_store::open(&url("gateway", "VERIFY_CA", &other.ca())).await.is_err(),
        "the client refuses a server its CA did not sign"
    );
}
