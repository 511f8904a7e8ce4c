//! The failing-endpoint summaries (the dashboard's read), against SQLite
//! and the real MariaDB: scoped to a merchant, bounded, without secrets,
//! with the newest attempted delivery's outcome.

use std::sync::Arc;

use testkit::mysql_server;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use transaction_model::AccountId;
use transaction_store::webhooks::{Attempt, AttemptResult, EndpointStatus, NewDelivery, NextState, WebhookEndpoint};
use transaction_store::{mysql, sqlite, EndpointScope, WebhookHealthRepository, WebhookRepository};

const T0: OffsetDateTime = datetime!(2026-05-06 07:08:09.5 UTC);

fn acct(id: &str) -> AccountId {
    AccountId::try_from(id).unwrap()
}

fn endpoint(id: &str, account: &str) -> WebhookEndpoint {
    WebhookEndpoint {
        id: id.into(),
        account_id: acct(account),
        url: format!("https://{account}.example.com/{id}"),
        description: String::new(),
        event_types: vec!["transaction.approved".into()],
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        secret: format!("whsec_{id}"),
        previous_secret: None,
        previous_secret_expires_at: None,
        failing_since: None,
        created_at: T0,
        updated_at: T0,
    }
}

fn delivery(endpoint: &str, account: &str, event: &str, created: OffsetDateTime) -> NewDelivery {
    NewDelivery {
        endpoint_id: endpoint.into(),
        event_id: event.into(),
        account_id: acct(account),
        event_type: "transaction.approved".into(),
        transaction_id: format!("tx-{event}"),
        payload: "{}".into(),
        decided_at: created,
        created_at: created,
    }
}

fn failed(endpoint: &str, event: &str, code: u16, started: OffsetDateTime) -> AttemptResult {
    AttemptResult {
        attempt: Attempt {
            endpoint_id: endpoint.into(),
            event_id: event.into(),
            attempt: 1,
            started_at: started,
            duration_ms: 5,
            status_code: Some(code),
            outcome: "http_error".into(),
            error: Some(format!("HTTP {code}")),
        },
        next: NextState::RetryAt(started + Duration::minutes(5)),
    }
}

async fn contract<R: WebhookRepository + WebhookHealthRepository>(repo: Arc<R>) {
    let never = T0 - Duration::days(1);
    for (id, account) in [("ep_a1", "shop-a"), ("ep_a2", "shop-a"), ("ep_b1", "shop-b"), ("ep_c1", "shop-c")] {
        repo.create_endpoint(&endpoint(id, account)).await.unwrap();
    }
    // ep_a1: two failed deliveries and a newer one not yet attempted.
    repo.record_deliveries(vec![
        delivery("ep_a1", "shop-a", "e1", T0),
        delivery("ep_a1", "shop-a", "e2", T0 + Duration::seconds(1)),
        delivery("ep_a1", "shop-a", "e3", T0 + Duration::seconds(2)),
        delivery("ep_b1", "shop-b", "e4", T0),
        delivery("ep_c1", "shop-c", "e5", T0),
    ])
    .await
    .unwrap();
    repo.complete_attempts(
        vec![failed("ep_a1", "e1", 500, T0), failed("ep_a1", "e2", 502, T0 + Duration::seconds(1))],
        T0,
        never,
    )
    .await
    .unwrap();
    // ep_b1 fails past the threshold: disabled for failing.
    repo.complete_attempts(vec![failed("ep_b1", "e4", 404, T0)], T0, T0 + Duration::hours(1)).await.unwrap();
    // ep_c1 failed, then recovered: healthy, not listed.
    repo.complete_attempts(vec![failed("ep_c1", "e5", 500, T0)], T0, never).await.unwrap();
    let mut ok = failed("ep_c1", "e5", 200, T0 + Duration::seconds(9));
    ok.attempt.attempt = 2;
    ok.next = NextState::Delivered;
    repo.complete_attempts(vec![ok], T0, never).await.unwrap();

    let all = repo.failing_endpoint_summaries(EndpointScope::All, 10).await.unwrap();
    let names: Vec<_> = all.iter().map(|s| (s.account_id.as_str(), s.id.as_str())).collect();
    assert_eq!(names, vec![("shop-a", "ep_a1"), ("shop-b", "ep_b1")]);
    let a1 = &all[0];
    assert_eq!(a1.url, "https://shop-a.example.com/ep_a1");
    assert_eq!(a1.status, EndpointStatus::Enabled);
    assert_eq!(a1.failing_since, Some(T0));
    assert_eq!((a1.last_status_code, a1.last_error.as_deref()), (Some(502), Some("HTTP 502")), "newest attempted");
    let b1 = &all[1];
    assert_eq!((b1.status, b1.disabled_reason.as_deref()), (EndpointStatus::Disabled, Some("failing")));
    assert_eq!(b1.last_status_code, Some(404));

    let a = acct("shop-a");
    let mine = repo.failing_endpoint_summaries(EndpointScope::Account(&a), 10).await.unwrap();
    assert_eq!(mine.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["ep_a1"]);
    let c = acct("shop-c");
    assert!(repo.failing_endpoint_summaries(EndpointScope::Account(&c), 10).await.unwrap().is_empty());
    let first = repo.failing_endpoint_summaries(EndpointScope::All, 1).await.unwrap();
    assert_eq!(first.len(), 1, "bounded by the limit");
}

#[tokio::test]
async fn sqlite_summarises_failing_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    contract(Arc::new(sqlite::SqliteRepository::open(&url).await.unwrap())).await;
}

#[tokio::test]
async fn mariadb_summarises_failing_endpoints() {
    let url = mysql::create_scratch_database(&mysql_server(), "webhook_health").await.unwrap();
    contract(Arc::new(mysql::MySqlRepository::connect(&url).await.unwrap())).await;
    mysql::drop_scratch_database(&url).await.unwrap();
}
