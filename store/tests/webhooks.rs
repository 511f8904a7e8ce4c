//! The webhook repository contract (endpoints, outbox, attempts), run
//! against SQLite and the real MariaDB.

use std::sync::Arc;
use std::time::Duration;

use testkit::mysql_server;
use time::macros::datetime;
use time::OffsetDateTime;
use transaction_model::AccountId;
use transaction_store::webhooks::{
    Attempt, AttemptResult, DeliveryStatus, EndpointStatus, EndpointUpdate, NewDelivery, NextState, WebhookEndpoint,
    DISABLED_BY_MERCHANT, DISABLED_FAILING,
};
use transaction_store::{mysql, open_webhooks, StoreError, WebhookRepository};

const T0: OffsetDateTime = datetime!(2026-05-06 07:08:09.123456 UTC);

fn at(secs: u64) -> OffsetDateTime {
    T0 + Duration::from_secs(secs)
}

fn acct(id: &str) -> AccountId {
    AccountId::try_from(id).unwrap()
}

fn endpoint(id: &str, account: &str) -> WebhookEndpoint {
    WebhookEndpoint {
        id: id.into(),
        account_id: acct(account),
        url: format!("https://{account}.example.com/hook"),
        description: "orders — ünïcode".into(),
        event_types: vec!["transaction.approved".into(), "transaction.rejected".into()],
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

fn delivery(endpoint: &str, account: &str, event: &str) -> NewDelivery {
    NewDelivery {
        endpoint_id: endpoint.into(),
        event_id: event.into(),
        account_id: acct(account),
        event_type: "transaction.approved".into(),
        transaction_id: format!("tx-{event}"),
        payload: format!(r#"{{"id":"{event}"}}"#),
        decided_at: T0,
        created_at: T0,
    }
}

fn outcome(endpoint: &str, event: &str, n: u32, started: OffsetDateTime, next: NextState) -> AttemptResult {
    let ok = next == NextState::Delivered;
    AttemptResult {
        attempt: Attempt {
            endpoint_id: endpoint.into(),
            event_id: event.into(),
            attempt: n,
            started_at: started,
            duration_ms: 7,
            status_code: Some(if ok { 200 } else { 500 }),
            outcome: if ok { "success" } else { "http_error" }.into(),
            error: (!ok).then(|| "HTTP 500".into()),
        },
        next,
    }
}

async fn contract(repo: Arc<dyn WebhookRepository>) {
    let (a, b) = ("shop-a", "shop-b");
    repo.create_endpoint(&endpoint("ep_a", a)).await.unwrap();
    repo.create_endpoint(&endpoint("ep_b", b)).await.unwrap();
    assert!(matches!(repo.create_endpoint(&endpoint("ep_a", a)).await, Err(StoreError::AlreadyExists(_))));

    // Scoped to the merchant.
    assert_eq!(repo.find_endpoint(&acct(a), "ep_a").await.unwrap(), Some(endpoint("ep_a", a)));
    assert_eq!(repo.find_endpoint(&acct(b), "ep_a").await.unwrap(), None);
    assert_eq!(repo.list_endpoints(&acct(a)).await.unwrap(), vec![endpoint("ep_a", a)]);
    let update = EndpointUpdate { url: Some("https://new.example.com/".into()), ..Default::default() };
    assert_eq!(repo.update_endpoint(&acct(b), "ep_a", &update, at(1)).await.unwrap(), None);
    let updated = repo.update_endpoint(&acct(a), "ep_a", &update, at(1)).await.unwrap().unwrap();
    assert_eq!((updated.url.as_str(), updated.description.as_str()), ("https://new.example.com/", "orders — ünïcode"));
    assert_eq!(repo.set_endpoint_enabled(&acct(b), "ep_a", false, at(1)).await.unwrap(), None);
    assert_eq!(repo.rotate_endpoint_secret(&acct(b), "ep_a", "whsec_x", at(9), at(1)).await.unwrap(), None);

    // Rotation keeps the old secret as the previous one.
    let rotated = repo.rotate_endpoint_secret(&acct(a), "ep_a", "whsec_new", at(3600), at(2)).await.unwrap().unwrap();
    assert_eq!(rotated.secret, "whsec_new");
    assert_eq!(rotated.previous_secret.as_deref(), Some("whsec_ep_a"));
    assert_eq!(rotated.signing_secrets(at(10)), vec!["whsec_new", "whsec_ep_a"]);

    // Recording is idempotent per (endpoint, event).
    let batch = vec![delivery("ep_a", a, "e1"), delivery("ep_a", a, "e2"), delivery("ep_b", b, "e1")];
    assert_eq!(repo.record_deliveries(batch.clone()).await.unwrap(), 3);
    assert_eq!(repo.record_deliveries(batch).await.unwrap(), 0);
    let stats = repo.queue_stats(at(0)).await.unwrap();
    assert_eq!((stats.pending, stats.due, stats.oldest_pending_created_at), (3, 3, Some(T0)));
    let enabled = repo.enabled_endpoints_of(&[acct(a), acct(b), acct("nobody")]).await.unwrap();
    assert_eq!(enabled.len(), 2);

    // Claiming leases: a claimed delivery is not due again until the lease ends.
    let due: Vec<_> = repo.due_endpoints(at(0)).await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(due.len(), 2);
    let claimed = repo.claim_due("ep_a", at(0), at(60), 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let rest = repo.claim_due("ep_a", at(0), at(60), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_ne!(claimed[0].event_id, rest[0].event_id);
    assert!(repo.claim_due("ep_a", at(1), at(61), 10).await.unwrap().is_empty(), "leased");
    assert_eq!(repo.queue_stats(at(1)).await.unwrap().due, 1, "only ep_b's is due");
    assert_eq!(repo.claim_due("ep_a", at(60), at(120), 10).await.unwrap().len(), 2, "lease over");

    // Outcomes: e1 delivered; e2 fails twice, then is exhausted.
    let disabled = repo
        .complete_attempts(
            vec![
                outcome("ep_a", "e1", 1, at(60), NextState::Delivered),
                outcome("ep_a", "e2", 1, at(60), NextState::RetryAt(at(65))),
            ],
            at(61),
            at(61) - Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert!(disabled.is_empty());
    let (d1, log1) = repo.find_delivery(&acct(a), "ep_a", "e1").await.unwrap().unwrap();
    assert_eq!((d1.status, d1.attempts, d1.delivered_at), (DeliveryStatus::Delivered, 1, Some(at(61))));
    assert_eq!(log1.len(), 1);
    assert_eq!(log1[0].status_code, Some(200));
    assert_eq!(repo.find_delivery(&acct(b), "ep_a", "e1").await.unwrap(), None, "scoped");
    let (d2, _) = repo.find_delivery(&acct(a), "ep_a", "e2").await.unwrap().unwrap();
    assert_eq!((d2.status, d2.attempts, d2.next_attempt_at), (DeliveryStatus::Pending, 1, at(65)));
    let e = repo.find_endpoint(&acct(a), "ep_a").await.unwrap().unwrap();
    assert_eq!(e.failing_since, Some(at(60)), "failing since the first failure after a success");
    repo.complete_attempts(vec![outcome("ep_a", "e2", 2, at(70), NextState::Exhausted)], at(71), at(65)).await.unwrap();
    let (d2, log2) = repo.find_delivery(&acct(a), "ep_a", "e2").await.unwrap().unwrap();
    assert_eq!((d2.status, d2.attempts, d2.last_status_code), (DeliveryStatus::Failed, 2, Some(500)));
    assert_eq!(log2.iter().map(|l| l.attempt).collect::<Vec<_>>(), vec![1, 2]);
    // Failing since at(60), before the cut-off: disabled for failing.
    let e = repo.find_endpoint(&acct(a), "ep_a").await.unwrap().unwrap();
    assert_eq!((e.status, e.disabled_reason.as_deref()), (EndpointStatus::Disabled, Some(DISABLED_FAILING)));
    assert_eq!(repo.failing_endpoints().await.unwrap().len(), 1);
    assert!(repo.due_endpoints(at(1000)).await.unwrap().iter().all(|e| e.id != "ep_a"), "disabled: not dispatched");

    // Lists by status; redelivery; enabling clears the failure.
    assert_eq!(repo.list_deliveries(&acct(a), "ep_a", None, 10).await.unwrap().len(), 2);
    assert_eq!(repo.list_deliveries(&acct(a), "ep_a", Some(DeliveryStatus::Failed), 10).await.unwrap().len(), 1);
    assert!(repo.list_deliveries(&acct(b), "ep_a", None, 10).await.unwrap().is_empty());
    assert!(repo.redeliver(&acct(a), "ep_a", "e2", at(100)).await.unwrap());
    assert!(!repo.redeliver(&acct(b), "ep_a", "e2", at(100)).await.unwrap());
    assert!(!repo.redeliver(&acct(a), "ep_a", "nope", at(100)).await.unwrap());
    let e = repo.set_endpoint_enabled(&acct(a), "ep_a", true, at(101)).await.unwrap().unwrap();
    assert_eq!((e.status, e.disabled_reason, e.failing_since), (EndpointStatus::Enabled, None, None));
    assert_eq!(repo.claim_due("ep_a", at(101), at(160), 10).await.unwrap().len(), 1, "the redelivered one");
    let e = repo.set_endpoint_enabled(&acct(a), "ep_a", false, at(102)).await.unwrap().unwrap();
    assert_eq!(e.disabled_reason.as_deref(), Some(DISABLED_BY_MERCHANT));
}

#[tokio::test]
async fn sqlite_keeps_the_webhook_contract() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open_webhooks(&format!("sqlite://{}", dir.path().join("w.db").display())).await.unwrap();
    contract(repo).await;
}

#[tokio::test]
async fn mariadb_keeps_the_webhook_contract() {
    let url = mysql::create_scratch_database(&mysql_server(), "webhooks_contract").await.unwrap();
    contract(open_webhooks(&url).await.unwrap()).await;
    mysql::drop_scratch_database(&url).await.unwrap();
}
