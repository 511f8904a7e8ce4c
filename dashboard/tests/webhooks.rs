//! The failing webhook endpoints view: the operator sees every merchant's,
//! a merchant only their own, nobody the signing secrets, and nobody
//! without a session.

mod support;

use serde_json::{json, Value};
use support::*;
use time::macros::datetime;
use time::OffsetDateTime;
use transaction_model::AccountId;
use transaction_store::webhooks::{
    Attempt, AttemptResult, EndpointStatus, NewDelivery, NextState, WebhookEndpoint, OUTCOME_HTTP_ERROR,
    OUTCOME_TIMEOUT,
};
use transaction_store::{AccountStatus, WebhookRepository};

const T0: OffsetDateTime = datetime!(2026-05-06 07:08:09 UTC);

fn endpoint(id: &str, account: &str) -> WebhookEndpoint {
    WebhookEndpoint {
        id: id.into(),
        account_id: AccountId::try_from(account).unwrap(),
        url: format!("https://{account}.example.com/hooks/{id}"),
        description: String::new(),
        event_types: vec!["transaction.approved".into()],
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        secret: format!("whsec_secret_of_{id}"),
        previous_secret: Some(format!("whsec_previous_of_{id}")),
        previous_secret_expires_at: Some(datetime!(2099-01-01 00:00 UTC)),
        failing_since: None,
        created_at: T0,
        updated_at: T0,
    }
}

/// One delivery to the endpoint whose only attempt failed as given.
async fn fail_once(
    repo: &dyn WebhookRepository,
    endpoint: &str,
    account: &str,
    code: Option<u16>,
    outcome: &str,
    disable_failing_before: OffsetDateTime,
) {
    let event = format!("evt_{endpoint}");
    repo.record_deliveries(vec![NewDelivery {
        endpoint_id: endpoint.into(),
        event_id: event.clone(),
        account_id: AccountId::try_from(account).unwrap(),
        event_type: "transaction.approved".into(),
        transaction_id: format!("tx-{endpoint}"),
        payload: "{}".into(),
        decided_at: T0,
        created_at: T0,
    }])
    .await
    .unwrap();
    let result = AttemptResult {
        attempt: Attempt {
            endpoint_id: endpoint.into(),
            event_id: event,
            attempt: 1,
            started_at: T0,
            duration_ms: 12,
            status_code: code,
            outcome: outcome.into(),
            error: Some(format!("{outcome} from {endpoint}")),
        },
        next: NextState::RetryAt(datetime!(2026-05-06 07:09:00 UTC)),
    };
    repo.complete_attempts(vec![result], T0, disable_failing_before).await.unwrap();
}

async fn failing(port: u16, token: Option<&str>) -> (u16, Value, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let (status, body) = http(port, "GET", "/api/webhook-endpoints/failing", &headers, None).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null), body)
}

fn ids(list: &Value) -> Vec<(String, String)> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["account_id"].as_str().unwrap().to_owned(), e["endpoint_id"].as_str().unwrap().to_owned()))
        .collect()
}

async fn merchant_token(port: u16, id: &str, secret: &str) -> String {
    let (status, body) = login(port, json!({"kind": "merchant", "account_id": id, "secret": secret})).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_endpoints_are_shown_to_the_operator_and_to_their_merchant_only() {
    let topic = create_topic(1).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    create_accounts(
        &db,
        &[("shop-a", "secret-a-123", AccountStatus::Active), ("shop-b", "secret-b-123", AccountStatus::Active)],
    )
    .await;
    let repo = transaction_store::open_webhooks(&db).await.unwrap();
    for (id, account) in [("ep_a_fail", "shop-a"), ("ep_a_ok", "shop-a"), ("ep_b_ok", "shop-b")] {
        repo.create_endpoint(&endpoint(id, account)).await.unwrap();
    }
    // A failed attempt marks the endpoint failing; the disabling threshold
    // lies before its failure, so it stays enabled (retrying).
    fail_once(repo.as_ref(), "ep_a_fail", "shop-a", Some(503), OUTCOME_HTTP_ERROR, T0 - time::Duration::hours(1)).await;

    let app = spawn(config(&topic, &db)).await;
    let port = app.port;

    let (status, body, _) = failing(port, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")));
    let (status, _, _) = failing(port, Some("not-a-session-token")).await;
    assert_eq!(status, 401);

    let operator = operator_token(port).await;
    let token_a = merchant_token(port, "shop-a", "secret-a-123").await;
    let token_b = merchant_token(port, "shop-b", "secret-b-123").await;

    let (status, list, raw) = failing(port, Some(&operator)).await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(ids(&list), vec![("shop-a".to_owned(), "ep_a_fail".to_owned())]);
    let row = &list["data"][0];
    assert_eq!(row["url"], "https://shop-a.example.com/hooks/ep_a_fail");
    assert_eq!(row["status"], "enabled");
    assert_eq!(row["disabled_for_failing"], false);
    assert_eq!(row["failing_since"], "2026-05-06T07:08:09Z");
    assert_eq!(row["last_status_code"], 503);
    assert_eq!(row["last_error"], "http_error from ep_a_fail");
    assert_eq!(list["truncated"], false);
    assert!(!raw.contains("whsec_"), "no signing secret in the answer: {raw}");

    let (status, list, raw) = failing(port, Some(&token_a)).await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(ids(&list), vec![("shop-a".to_owned(), "ep_a_fail".to_owned())]);
    assert!(!raw.contains("whsec_"), "{raw}");

    let (status, list, raw) = failing(port, Some(&token_b)).await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(ids(&list), Vec::<(String, String)>::new(), "B sees none of A's");
    assert!(!raw.contains("shop-a") && !raw.contains("ep_a_"), "{raw}");

    // B's endpoint now fails past the threshold: the notifier disables it.
    fail_once(repo.as_ref(), "ep_b_ok", "shop-b", None, OUTCOME_TIMEOUT, T0 + time::Duration::seconds(1)).await;

    let (_, list, _) = failing(port, Some(&operator)).await;
    assert_eq!(
        ids(&list),
        vec![("shop-a".to_owned(), "ep_a_fail".to_owned()), ("shop-b".to_owned(), "ep_b_ok".to_owned())]
    );
    let b = &list["data"][1];
    assert_eq!((b["status"].as_str(), b["disabled_for_failing"].as_bool()), (Some("disabled"), Some(true)));
    assert_eq!(b["last_status_code"], Value::Null);
    assert_eq!(b["last_error"], "timeout from ep_b_ok");

    let (_, list, _) = failing(port, Some(&token_a)).await;
    assert_eq!(ids(&list), vec![("shop-a".to_owned(), "ep_a_fail".to_owned())], "A sees none of B's");
    let (_, list, _) = failing(port, Some(&token_b)).await;
    assert_eq!(ids(&list), vec![("shop-b".to_owned(), "ep_b_ok".to_owned())]);

    app.stop().await;
}
