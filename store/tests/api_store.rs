//! The API's tables (accepted transactions, idempotency keys) against
//! SQLite and the real MariaDB.

use std::time::Duration;

use testkit::mysql_server;
use time::macros::datetime;
use time::OffsetDateTime;
use transaction_model::{AccountId, Amount, CardBrand, MaskedCard, ProcessedTransaction, Status, TransactionId};
use transaction_store::{
    mysql, open_api_store, truncate_to_micros, AcceptedTransaction, ApiStore, IdempotencyBegin, IdempotencyTimes,
    ListCursor, StoredResponse,
};

fn acc(id: &str) -> AccountId {
    AccountId::try_from(id).unwrap()
}

fn accepted(id: &str, account: &str, second: u8) -> AcceptedTransaction {
    AcceptedTransaction {
        id: TransactionId::try_from(id).unwrap(),
        account_id: acc(account),
        amount: Amount::from_cents(1050),
        created_at: datetime!(2026-05-06 07:08:00.000001 UTC) + time::Duration::seconds(i64::from(second)),
    }
}

async fn accepted_contract(store: &ApiStore) {
    let repo = &store.accepted;
    let m1 = acc("m1");
    // Same created_at for c and d: the id breaks the tie.
    let rows = vec![
        accepted("a", "m1", 1),
        accepted("b", "m1", 2),
        accepted("c", "m1", 3),
        accepted("d", "m1", 3),
        accepted("x", "m2", 4),
    ];
    repo.record_intents(&rows).await.unwrap();
    // Intents are invisible until delivered.
    assert_eq!(repo.find_accepted(&m1, &rows[0].id).await.unwrap(), None);
    assert!(repo.list_accepted(&m1, 10, None).await.unwrap().is_empty());
    let ids: Vec<_> = rows.iter().filter(|r| r.id.as_str() != "b").map(|r| r.id.clone()).collect();
    repo.mark_delivered(&ids).await.unwrap();

    let a = repo.find_accepted(&m1, &rows[0].id).await.unwrap().unwrap();
    assert_eq!(a.accepted, rows[0]);
    assert_eq!(a.decision, None, "pending until the processor stores it");
    // Tenant isolation: m1 cannot see m2's transaction.
    assert_eq!(repo.find_accepted(&m1, &rows[4].id).await.unwrap(), None);
    assert!(repo.find_accepted(&acc("m2"), &rows[4].id).await.unwrap().is_some());

    // The undelivered "b" appears once the processor has stored it anyway.
    let listed: Vec<String> =
        repo.list_accepted(&m1, 10, None).await.unwrap().iter().map(|v| v.accepted.id.to_string()).collect();
    assert_eq!(listed, ["d", "c", "a"]);
    let processed_at = datetime!(2026-05-06 07:09:00.5 UTC);
    let decided = |id: &str, status: Status, msg: &str| ProcessedTransaction {
        id: TransactionId::try_from(id).unwrap(),
        account_id: Some(m1.clone()),
        amount: Some(Amount::from_cents(1050)),
        status,
        error_message: msg.into(),
        card_brand: Some(CardBrand::Visa),
        card_masked: MaskedCard::from_untrusted("4111111111111111"),
        card_hash: None,
        card_hash_key_id: None,
        created_at: datetime!(2026-05-06 07:08:01 UTC),
        processed_at,
    };
    store
        .transactions
        .record_batch(vec![
            decided("b", Status::Approved, ""),
            decided("c", Status::Rejected, "invalid credit card cvv"),
        ])
        .await
        .unwrap();
    let c = repo.find_accepted(&m1, &rows[2].id).await.unwrap().unwrap();
    let decision = c.decision.unwrap();
    assert_eq!(decision.status, Status::Rejected);
    assert_eq!(decision.error_message, "invalid credit card cvv");
    assert_eq!(decision.processed_at, processed_at);
    assert_eq!(decision.card_brand, Some(CardBrand::Visa));

    // Pages of two, newest first, via cursors.
    let page1 = repo.list_accepted(&m1, 2, None).await.unwrap();
    let ids1: Vec<_> = page1.iter().map(|v| v.accepted.id.to_string()).collect();
    assert_eq!(ids1, ["d", "c"]);
    let last = &page1[1].accepted;
    let cursor = ListCursor { created_at: last.created_at, id: last.id.clone() };
    let page2 = repo.list_accepted(&m1, 2, Some(&cursor)).await.unwrap();
    let ids2: Vec<_> = page2.iter().map(|v| v.accepted.id.to_string()).collect();
    assert_eq!(ids2, ["b", "a"]);
    assert_eq!(page2[0].decision.as_ref().unwrap().status, Status::Approved);
    let last = &page2[1].accepted;
    let cursor = ListCursor { created_at: last.created_at, id: last.id.clone() };
    assert!(repo.list_accepted(&m1, 2, Some(&cursor)).await.unwrap().is_empty());

    // Purging undelivered intents: only "e" (undelivered, never stored, older
    // than the cutoff) goes; "b" was stored by the processor, "f" is recent,
    // the others were delivered.
    repo.record_intents(&[accepted("e", "m1", 5), accepted("f", "m1", 20)]).await.unwrap();
    let cutoff = rows[0].created_at + time::Duration::seconds(9);
    assert_eq!(repo.purge_undelivered(cutoff).await.unwrap(), 1);
    assert_eq!(repo.purge_undelivered(cutoff).await.unwrap(), 0);
    // Marked now, "f" shows (it was kept) and "e" does not (no row left).
    repo.mark_delivered(&[accepted("e", "m1", 5).id, accepted("f", "m1", 20).id]).await.unwrap();
    let listed: Vec<String> =
        repo.list_accepted(&m1, 10, None).await.unwrap().iter().map(|v| v.accepted.id.to_string()).collect();
    assert_eq!(listed, ["f", "d", "c", "b", "a"], "purging never touches what merchants see");

    // Recording an id again (a retry under an Idempotency-Key) keeps the
    // first record.
    let again = AcceptedTransaction { amount: Amount::from_cents(1), ..accepted("a", "m1", 30) };
    repo.record_intents(&[again]).await.unwrap();
    assert_eq!(repo.find_accepted(&m1, &rows[0].id).await.unwrap().unwrap().accepted, rows[0]);

    // One coalesced round: a new intent ("h") recorded and an earlier one
    // ("g") marked together.
    let (g, h) = (accepted("g", "m1", 40), accepted("h", "m1", 41));
    repo.record_intents(std::slice::from_ref(&g)).await.unwrap();
    repo.record_and_mark(std::slice::from_ref(&h), std::slice::from_ref(&g.id)).await.unwrap();
    assert_eq!(repo.find_accepted(&m1, &g.id).await.unwrap().unwrap().accepted, g, "marked");
    assert_eq!(repo.find_accepted(&m1, &h.id).await.unwrap(), None, "recorded, not marked");
    repo.mark_delivered(std::slice::from_ref(&h.id)).await.unwrap();
    assert_eq!(repo.find_accepted(&m1, &h.id).await.unwrap().unwrap().accepted, h, "it was recorded");
}

async fn idempotency_contract(store: &ApiStore) {
    let repo = &store.idempotency;
    let (m1, m2) = (acc("m1"), acc("m2"));
    let t0 = OffsetDateTime::now_utc();
    let started = |at| IdempotencyBegin::Started { since: truncate_to_micros(at) };
    let times =
        |now| IdempotencyTimes { now, ttl: Duration::from_secs(24 * 3600), in_flight_timeout: Duration::from_secs(60) };
    let seconds = time::Duration::seconds;
    let (fp, other) = ("f".repeat(64), "e".repeat(64));
    assert_eq!(repo.begin_idempotent(&m1, "k1", &fp, times(t0)).await.unwrap(), started(t0));
    assert_eq!(repo.begin_idempotent(&m1, "k1", &fp, times(t0)).await.unwrap(), IdempotencyBegin::InFlight);
    assert_eq!(repo.begin_idempotent(&m1, "k1", &other, times(t0)).await.unwrap(), IdempotencyBegin::Mismatch);
    // Scoped per merchant.
    assert_eq!(repo.begin_idempotent(&m2, "k1", &fp, times(t0)).await.unwrap(), started(t0));

    let response = StoredResponse { status: 202, body: r#"{"id":"x"}"#.into() };
    repo.complete_idempotent(&m1, "k1", &response, t0).await.unwrap();
    assert_eq!(
        repo.begin_idempotent(&m1, "k1", &fp, times(t0)).await.unwrap(),
        IdempotencyBegin::Completed(response.clone())
    );
    // Release does not forget a completed key.
    repo.release_idempotent(&m1, "k1").await.unwrap();
    assert_eq!(repo.begin_idempotent(&m1, "k1", &fp, times(t0)).await.unwrap(), IdempotencyBegin::Completed(response));

    // A released key is retried at once with the same body, and keeps its
    // first `since` (the retry re-sends the same transactions); another
    // body is refused, since the first one may have reached the broker.
    repo.release_idempotent(&m2, "k1").await.unwrap();
    let retry = t0 + seconds(5);
    assert_eq!(repo.begin_idempotent(&m2, "k1", &other, times(retry)).await.unwrap(), IdempotencyBegin::Mismatch);
    assert_eq!(repo.begin_idempotent(&m2, "k1", &fp, times(retry)).await.unwrap(), started(t0));
    assert_eq!(repo.begin_idempotent(&m2, "k1", &fp, times(retry)).await.unwrap(), IdempotencyBegin::InFlight);
    // A stuck in-flight key (a crashed request) is taken over after the
    // in-flight timeout, still with its first `since`.
    assert_eq!(
        repo.begin_idempotent(&m2, "k1", &fp, times(retry + seconds(30))).await.unwrap(),
        IdempotencyBegin::InFlight
    );
    let later = retry + seconds(61);
    assert_eq!(repo.begin_idempotent(&m2, "k1", &fp, times(later)).await.unwrap(), started(t0));
    // Keys expire after the TTL: a new use starts afresh.
    let next_day = t0 + time::Duration::hours(24) + seconds(1);
    assert_eq!(repo.begin_idempotent(&m1, "k1", &"d".repeat(64), times(next_day)).await.unwrap(), started(next_day));
    // Purge removes records created before the cutoff (m2's, from t0).
    assert_eq!(repo.purge_idempotency(later + seconds(1)).await.unwrap(), 1);
}

#[tokio::test]
async fn sqlite_api_store_honours_the_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_api_store(&format!("sqlite://{}", dir.path().join("a.db").display())).await.unwrap();
    accepted_contract(&store).await;
    idempotency_contract(&store).await;
}

#[tokio::test]
async fn mysql_api_store_honours_the_contracts_on_mariadb() {
    let url = mysql::create_scratch_database(&mysql_server(), "api_store_test").await.unwrap();
    let store = open_api_store(&url).await.unwrap();
    accepted_contract(&store).await;
    idempotency_contract(&store).await;
    mysql::drop_scratch_database(&url).await.unwrap();
}
