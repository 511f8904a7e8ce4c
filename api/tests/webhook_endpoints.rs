//! Webhook endpoint management: scoped to the merchant, the secret shown
//! once, rotation with an overlap, SSRF refusals in production, the
//! delivery log and redelivery.

mod support;

use serde_json::{json, Value};
use support::*;
use time::OffsetDateTime;
use transaction_model::AccountId;
use transaction_store::webhooks::{Attempt, AttemptResult, DeliveryStatus, NewDelivery, NextState, OUTCOME_HTTP_ERROR};

const BASE: &str = "/v1/webhook-endpoints";

async fn dev_app() -> TestApp {
    let (mut config, dir) = sqlite_config().await;
    config.webhook_allow_loopback_http = true;
    spawn_with(config, Some(dir)).await
}

async fn create(app: &TestApp, m: &Merchant, body: Value) -> reqwest::Response {
    app.post(m, BASE, &body).await
}

async fn send(
    app: &TestApp,
    m: &Merchant,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = app.client.request(method, app.url(path)).header("authorization", m.basic());
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_belong_to_their_merchant_and_the_secret_is_shown_once() {
    let app = dev_app().await;
    let (alice, bob) = (app.merchant(&unique("alice")).await, app.merchant(&unique("bob")).await);
    let r = create(&app, &alice, json!({"url": "http://127.0.0.1:9/hook", "description": "orders"})).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["endpoint"]["event_types"], json!(["transaction.approved", "transaction.rejected"]));
    assert_eq!(created["endpoint"]["status"], "enabled");

    // Never again: not in the list, not in the endpoint, not after an update.
    let list = app.get(&alice, BASE).await.text().await.unwrap();
    let one = app.get(&alice, &format!("{BASE}/{id}")).await.text().await.unwrap();
    let patched = send(
        &app,
        &alice,
        reqwest::Method::PATCH,
        &format!("{BASE}/{id}"),
        Some(json!({"event_types": ["transaction.rejected"]})),
    )
    .await;
    assert_eq!(patched.status(), 200);
    let patched_text = patched.text().await.unwrap();
    for text in [&list, &one, &patched_text] {
        assert!(!text.contains(&secret) && !text.contains("whsec_") && !text.contains("\"secret\""), "{text}");
    }
    let patched: Value = serde_json::from_str(&patched_text).unwrap();
    assert_eq!(patched["event_types"], json!(["transaction.rejected"]));
    assert_eq!(serde_json::from_str::<Value>(&list).unwrap()["data"].as_array().unwrap().len(), 1);

    // Bob sees nothing of Alice's and can touch nothing of it.
    let bobs: Value = app.get(&bob, BASE).await.json().await.unwrap();
    assert_eq!(bobs["data"], json!([]));
    for (method, path, body) in [
        (reqwest::Method::GET, format!("{BASE}/{id}"), None),
        (reqwest::Method::PATCH, format!("{BASE}/{id}"), Some(json!({"description": "mine"}))),
        (reqwest::Method::POST, format!("{BASE}/{id}/disable"), None),
        (reqwest::Method::POST, format!("{BASE}/{id}/enable"), None),
        (reqwest::Method::POST, format!("{BASE}/{id}/rotate-secret"), None),
        (reqwest::Method::GET, format!("{BASE}/{id}/deliveries"), None),
    ] {
        let r = send(&app, &bob, method.clone(), &path, body).await;
        let (code, _) = error_code(r, 404).await;
        assert_eq!(code, "webhook_endpoint_not_found", "{method} {path}");
    }
    let still: Value = app.get(&alice, &format!("{BASE}/{id}")).await.json().await.unwrap();
    assert_eq!(still["status"], "enabled");
    assert_eq!(still["description"], "orders");

    // Disable and enable.
    let d: Value =
        send(&app, &alice, reqwest::Method::POST, &format!("{BASE}/{id}/disable"), None).await.json().await.unwrap();
    assert_eq!((d["status"].as_str(), d["disabled_reason"].as_str()), (Some("disabled"), Some("merchant")));
    let e: Value =
        send(&app, &alice, reqwest::Method::POST, &format!("{BASE}/{id}/enable"), None).await.json().await.unwrap();
    assert_eq!(e["status"], "enabled");
    assert!(e["disabled_reason"].is_null());

    // Without credentials: 401. Bad input: 422 with stable codes.
    let r = app.client.get(app.url(BASE)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    for (body, code) in [
        (json!({"url": "http://127.0.0.1:9/", "event_types": []}), "invalid_event_types"),
        (json!({"url": "http://127.0.0.1:9/", "event_types": ["transaction.created"]}), "invalid_event_types"),
        (json!({"url": "http://127.0.0.1:9/", "description": "x".repeat(300)}), "invalid_description"),
        (json!({"url": "http://127.0.0.1:9/", "secret": "mine"}), "unknown_field"),
        (json!({"url": "nope"}), "invalid_url"),
    ] {
        let (got, _) = error_code(create(&app, &alice, body.clone()).await, 422).await;
        assert_eq!(got, code, "{body}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_the_old_secret_signing_during_the_overlap() {
    let app = dev_app().await;
    let m = app.merchant(&unique("rotator")).await;
    let created: Value = create(&app, &m, json!({"url": "http://127.0.0.1:9/hook"})).await.json().await.unwrap();
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let old = created["secret"].as_str().unwrap().to_owned();
    let before = OffsetDateTime::now_utc();
    let r = send(
        &app,
        &m,
        reqwest::Method::POST,
        &format!("{BASE}/{id}/rotate-secret"),
        Some(json!({"overlap_seconds": 3600})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    let until = OffsetDateTime::parse(
        rotated["endpoint"]["previous_secret_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        until >= before + std::time::Duration::from_secs(3599)
            && until <= OffsetDateTime::now_utc() + std::time::Duration::from_secs(3601)
    );
    // What the notifier signs with: both now, only the new one after.
    let account = AccountId::try_from(m.id.as_str()).unwrap();
    let stored = app.store.webhooks.find_endpoint(&account, &id).await.unwrap().unwrap();
    assert_eq!(stored.signing_secrets(OffsetDateTime::now_utc()), vec![new.as_str(), old.as_str()]);
    assert_eq!(stored.signing_secrets(until + std::time::Duration::from_secs(1)), vec![new.as_str()]);

    // Without a body: the default overlap (24 h). Overlap 0 ends it at once.
    let r = send(&app, &m, reqwest::Method::POST, &format!("{BASE}/{id}/rotate-secret"), None).await;
    assert_eq!(r.status(), 200);
    let r: Value = send(
        &app,
        &m,
        reqwest::Method::POST,
        &format!("{BASE}/{id}/rotate-secret"),
        Some(json!({"overlap_seconds": 0})),
    )
    .await
    .json()
    .await
    .unwrap();
    let newest = r["secret"].as_str().unwrap().to_owned();
    assert!(r["endpoint"]["previous_secret_expires_at"].is_null());
    let stored = app.store.webhooks.find_endpoint(&account, &id).await.unwrap().unwrap();
    assert_eq!(stored.signing_secrets(OffsetDateTime::now_utc()), vec![newest.as_str()]);
    let r = send(
        &app,
        &m,
        reqwest::Method::POST,
        &format!("{BASE}/{id}/rotate-secret"),
        Some(json!({"overlap_seconds": 8 * 86400})),
    )
    .await;
    assert_eq!(error_code(r, 422).await.0, "invalid_overlap");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_plain_http_and_internal_addresses() {
    let app = spawn_sqlite().await; // production policy: the switch is off
    let m = app.merchant(&unique("ssrf")).await;
    for (url, code) in [
        ("http://example.com/hook", "url_scheme_not_allowed"),
        ("http://127.0.0.1:9000/hook", "url_scheme_not_allowed"),
        ("https://127.0.0.1/hook", "url_address_not_allowed"),
        ("https://localhost/hook", "url_address_not_allowed"), // resolved: loopback
        ("https://10.0.0.1/hook", "url_address_not_allowed"),
        ("https://172.16.5.4/hook", "url_address_not_allowed"),
        ("https://192.168.0.10/hook", "url_address_not_allowed"),
        ("https://169.254.169.254/latest/meta-data", "url_address_not_allowed"),
        ("https://0.0.0.0/hook", "url_address_not_allowed"),
        ("https://[::1]/hook", "url_address_not_allowed"),
        ("https://[::ffff:10.0.0.1]/hook", "url_address_not_allowed"),
        ("https://[fd12::1]/hook", "url_address_not_allowed"),
        ("https://user:pass@example.com/hook", "url_credentials_not_allowed"),
        ("https://no-such-host.invalid/hook", "url_unresolvable"),
    ] {
        let (got, param) = error_code(create(&app, &m, json!({"url": url})).await, 422).await;
        assert_eq!((got.as_str(), param.as_deref()), (code, Some("url")), "{url}");
    }
    let list: Value = app.get(&m, BASE).await.json().await.unwrap();
    assert_eq!(list["data"], json!([]), "nothing was registered");
    app.stop().await;

    // The development switch allows http to loopback only.
    let app = dev_app().await;
    let m = app.merchant(&unique("dev")).await;
    assert_eq!(create(&app, &m, json!({"url": "http://127.0.0.1:9/hook"})).await.status(), 201);
    assert_eq!(create(&app, &m, json!({"url": "http://localhost:9/hook"})).await.status(), 201);
    for (url, code) in [
        ("http://10.0.0.1/hook", "url_scheme_not_allowed"),
        ("https://10.0.0.1/hook", "url_address_not_allowed"),
        ("https://169.254.169.254/", "url_address_not_allowed"),
    ] {
        assert_eq!(error_code(create(&app, &m, json!({"url": url})).await, 422).await.0, code, "{url}");
    }
    // An update cannot point an endpoint inside either.
    let list: Value = app.get(&m, BASE).await.json().await.unwrap();
    let id = list["data"][0]["id"].as_str().unwrap();
    let r = send(&app, &m, reqwest::Method::PATCH, &format!("{BASE}/{id}"), Some(json!({"url": "https://10.1.1.1/"})))
        .await;
    assert_eq!(error_code(r, 422).await.0, "url_address_not_allowed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_log_lists_attempts_and_redelivers() {
    let app = dev_app().await;
    let (m, other) = (app.merchant(&unique("logged")).await, app.merchant(&unique("other")).await);
    let created: Value = create(&app, &m, json!({"url": "http://127.0.0.1:9/hook"})).await.json().await.unwrap();
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let account = AccountId::try_from(m.id.as_str()).unwrap();
    // A delivery as the notifier records it, and one failed attempt.
    let now = transaction_store::truncate_to_micros(OffsetDateTime::now_utc());
    let event = "evt_0123456789abcdef0123456789abcdef".to_owned();
    let repo = &app.store.webhooks;
    repo.record_deliveries(vec![NewDelivery {
        endpoint_id: id.clone(),
        event_id: event.clone(),
        account_id: account.clone(),
        event_type: "transaction.approved".into(),
        transaction_id: "tx-1".into(),
        payload: r#"{"type":"transaction.approved","data":{"id":"tx-1"}}"#.into(),
        decided_at: now,
        created_at: now,
    }])
    .await
    .unwrap();
    repo.complete_attempts(
        vec![AttemptResult {
            attempt: Attempt {
                endpoint_id: id.clone(),
                event_id: event.clone(),
                attempt: 1,
                started_at: now,
                duration_ms: 12,
                status_code: Some(503),
                outcome: OUTCOME_HTTP_ERROR.into(),
                error: Some("HTTP 503".into()),
            },
            next: NextState::Exhausted,
        }],
        now,
        now - std::time::Duration::from_secs(86400),
    )
    .await
    .unwrap();

    let list: Value = app.get(&m, &format!("{BASE}/{id}/deliveries")).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["event_id"], event.as_str());
    assert_eq!(list["data"][0]["status"], "failed");
    let failed: Value =
        app.get(&m, &format!("{BASE}/{id}/deliveries?status=failed&limit=5")).await.json().await.unwrap();
    assert_eq!(failed["data"].as_array().unwrap().len(), 1);
    let delivered: Value = app.get(&m, &format!("{BASE}/{id}/deliveries?status=delivered")).await.json().await.unwrap();
    assert_eq!(delivered["data"], json!([]));
    assert_eq!(
        error_code(app.get(&m, &format!("{BASE}/{id}/deliveries?status=lost")).await, 400).await.0,
        "invalid_status"
    );
    assert_eq!(error_code(app.get(&m, &format!("{BASE}/{id}/deliveries?limit=0")).await, 400).await.0, "invalid_limit");

    let detail: Value = app.get(&m, &format!("{BASE}/{id}/deliveries/{event}")).await.json().await.unwrap();
    assert_eq!(detail["payload"]["data"]["id"], "tx-1");
    assert_eq!(detail["attempt_log"][0]["status_code"], 503);
    assert_eq!(detail["attempt_log"][0]["duration_ms"], 12);
    assert_eq!(detail["attempt_log"][0]["outcome"], "http_error");

    // Another merchant cannot read or redeliver it.
    assert_eq!(app.get(&other, &format!("{BASE}/{id}/deliveries/{event}")).await.status(), 404);
    let r = send(&app, &other, reqwest::Method::POST, &format!("{BASE}/{id}/deliveries/{event}/redeliver"), None).await;
    assert_eq!(r.status(), 404);

    let r = send(&app, &m, reqwest::Method::POST, &format!("{BASE}/{id}/deliveries/{event}/redeliver"), None).await;
    assert_eq!(r.status(), 202);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["status"], "pending");
    assert!(again["next_attempt_at"].is_string());
    let (d, _) = repo.find_delivery(&account, &id, &event).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending);
    let r = send(&app, &m, reqwest::Method::POST, &format!("{BASE}/{id}/deliveries/evt_none/redeliver"), None).await;
    assert_eq!(error_code(r, 404).await.0, "delivery_not_found");
    app.stop().await;
}
