//! Merchant authentication, account administration (HTTP and CLI), and the
//! limits on failed authentications and per-merchant rates.

mod support;

use api::cli::{run_accounts, AccountsArgs, AccountsCommand};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use support::*;

async fn status_of(app: &TestApp, auth: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url("/v1/transactions"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_cases() {
    let app = spawn_sqlite().await;
    let m = app.merchant("merchant-1").await;
    assert_eq!(status_of(&app, Some(&m.basic())).await.status(), 200);

    let wrong = Merchant { id: m.id.clone(), secret: "nope".into() };
    let unknown = Merchant { id: "ghost".into(), secret: m.secret.clone() };
    let bad_id = format!("Basic {}", STANDARD.encode(format!("a/b:{}", m.secret)));
    let no_colon = format!("Basic {}", STANDARD.encode("merchant-1"));
    for auth in [
        None,
        Some(wrong.basic()),
        Some(unknown.basic()),
        Some(bad_id),
        Some(no_colon),
        Some("Basic !!!not-base64".into()),
        Some(format!("Bearer {}", m.secret)),
        Some(format!("Basic {}", STANDARD.encode(format!("merchant-1:{}x", m.secret)))),
    ] {
        let r = status_of(&app, auth.as_deref()).await;
        assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"gateway\"", "{auth:?}");
        let (code, _) = error_code(r, 401).await;
        assert_eq!(code, "invalid_credentials");
    }
    // The scheme is case-insensitive.
    let lower = m.basic().replacen("Basic", "basic", 1);
    assert_eq!(status_of(&app, Some(&lower)).await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_manage_accounts_behind_the_operator_token() {
    let app = spawn_sqlite().await;
    let accounts = app.internal_url("/v1/admin/accounts");
    // No token, wrong token.
    let r = app.client.get(&accounts).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"gateway-admin\"");
    assert_eq!(error_code(r, 401).await.0, "invalid_operator_token");
    let r = app.client.get(&accounts).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(error_code(r, 401).await.0, "invalid_operator_token");
    // A merchant's credentials are not the operator's.
    let m = app.merchant("merchant-0").await;
    let r = app.client.get(&accounts).header("authorization", m.basic()).send().await.unwrap();
    assert_eq!(error_code(r, 401).await.0, "invalid_operator_token");

    let r = app
        .client
        .post(&accounts)
        .bearer_auth(OPERATOR)
        .json(&json!({"id": "shop-1", "name": "Shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["account"]["status"], "active");
    let m = Merchant { id: "shop-1".into(), secret: created["secret"].as_str().unwrap().into() };
    assert!(m.secret.len() >= 43);
    assert_eq!(status_of(&app, Some(&m.basic())).await.status(), 200);

    // Duplicate id, invalid id, unknown field.
    let r = app
        .client
        .post(&accounts)
        .bearer_auth(OPERATOR)
        .json(&json!({"id": "shop-1", "name": "Again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, 409).await.0, "account_exists");
    let r =
        app.client.post(&accounts).bearer_auth(OPERATOR).json(&json!({"id": "a b", "name": "x"})).send().await.unwrap();
    assert_eq!(error_code(r, 422).await.0, "invalid_account_id");
    let r = app
        .client
        .post(&accounts)
        .bearer_auth(OPERATOR)
        .json(&json!({"id": "x", "name": "x", "secret": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, 422).await.0, "unknown_field");

    // The listing never shows secrets or hashes.
    let text = app.client.get(&accounts).bearer_auth(OPERATOR).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("shop-1") && !text.contains(&m.secret) && !text.contains("secret"), "{text}");

    // Disabled: 403 with the right secret; still 401 with a wrong one.
    let r = app
        .client
        .post(app.internal_url("/v1/admin/accounts/shop-1/disable"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "disabled");
    assert_eq!(error_code(status_of(&app, Some(&m.basic())).await, 403).await.0, "account_disabled");
    let wrong = Merchant { id: "shop-1".into(), secret: "guess".into() };
    assert_eq!(status_of(&app, Some(&wrong.basic())).await.status(), 401);
    let r = app
        .client
        .post(app.internal_url("/v1/admin/accounts/shop-1/enable"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(status_of(&app, Some(&m.basic())).await.status(), 200);

    // Rotation: the old secret stops working at once.
    let r = app
        .client
        .post(app.internal_url("/v1/admin/accounts/shop-1/rotate-secret"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    let rotated: Value = r.json().await.unwrap();
    let new = Merchant { id: "shop-1".into(), secret: rotated["secret"].as_str().unwrap().into() };
    assert_ne!(new.secret, m.secret);
    assert_eq!(status_of(&app, Some(&m.basic())).await.status(), 401);
    assert_eq!(status_of(&app, Some(&new.basic())).await.status(), 200);

    let r = app
        .client
        .post(app.internal_url("/v1/admin/accounts/nobody/disable"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, 404).await.0, "account_not_found");
    let r = app.client.get(app.internal_url("/v1/admin/accounts/shop-1")).bearer_auth(OPERATOR).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Shop");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_are_off_without_an_operator_token() {
    let (mut config, dir) = sqlite_config().await;
    config.admin_token = None;
    let app = spawn_with(config, Some(dir)).await;
    let r = app.client.get(app.internal_url("/v1/admin/accounts")).bearer_auth("").send().await.unwrap();
    assert_eq!(error_code(r, 403).await.0, "admin_disabled");
    app.stop().await;
}

/// Authentication reads accounts from a cache (`ACCOUNT_CACHE_TTL_MS`),
/// here with a TTL far longer than the test: a rotation or a disable through
/// the admin API still takes effect on the very next request, while a change
/// written to the database behind the API's back (as the CLI or another
/// replica does) is not seen before the TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_take_effect_at_once_through_the_account_cache() {
    let (mut config, dir) = sqlite_config().await;
    config.account_cache_ttl_ms = 3_600_000;
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("cached-shop").await;
    let admin = |action: &'static str| {
        app.client
            .post(app.internal_url(&format!("/v1/admin/accounts/cached-shop/{action}")))
            .bearer_auth(OPERATOR)
            .send()
    };
    assert_eq!(status_of(&app, Some(&m.basic())).await.status(), 200, "now cached");

    assert_eq!(admin("disable").await.unwrap().status(), 200);
    assert_eq!(error_code(status_of(&app, Some(&m.basic())).await, 403).await.0, "account_disabled");
    assert_eq!(admin("enable").await.unwrap().status(), 200);
    assert_eq!(status_of(&app, Some(&m.basic())).await.status(), 200);

    let rotated: Value = admin("rotate-secret").await.unwrap().json().await.unwrap();
    let new = Merchant { id: m.id.clone(), secret: rotated["secret"].as_str().unwrap().into() };
    assert_eq!(status_of(&app, Some(&m.basic())).await.status(), 401, "the old secret refused at once");
    assert_eq!(status_of(&app, Some(&new.basic())).await.status(), 200);

    // The cache is really in the way: the same changes made directly in the
    // database wait for the TTL (the cross-replica bound in the README).
    let id = transaction_model::AccountId::try_from("cached-shop").unwrap();
    let hasher = api::startup::secret_hasher(Some(SECRET_KEY)).unwrap();
    assert!(app.store.accounts.rotate_secret(&id, &hasher.hash("elsewhere")).await.unwrap());
    assert!(app.store.accounts.set_account_status(&id, transaction_store::AccountStatus::Disabled).await.unwrap());
    assert_eq!(status_of(&app, Some(&new.basic())).await.status(), 200, "served from the cache");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_accounts_the_server_accepts() {
    let (mut config, dir) = sqlite_config().await;
    // The CLI writes to the database like another replica would: seen by
    // this server after the account cache's TTL, here at once.
    config.account_cache_ttl_ms = 0;
    let app = spawn_with(config, Some(dir)).await;
    let args = |command| AccountsArgs {
        database_url: app.database_url.clone(),
        secret_hash_key: Some(SECRET_KEY.into()),
        development: false,
        command,
    };
    let mut out = Vec::new();
    run_accounts(args(AccountsCommand::Create { id: "cli-shop".into(), name: "CLI Shop".into() }), &mut out)
        .await
        .unwrap();
    let created: Value = serde_json::from_slice(&out).unwrap();
    let m = Merchant { id: "cli-shop".into(), secret: created["secret"].as_str().unwrap().into() };
    assert_eq!(status_of(&app, Some(&m.basic())).await.status(), 200);

    let mut out = Vec::new();
    run_accounts(args(AccountsCommand::List), &mut out).await.unwrap();
    let listing = String::from_utf8(out).unwrap();
    assert!(listing.contains("cli-shop") && listing.contains("active") && !listing.contains(&m.secret), "{listing}");

    run_accounts(args(AccountsCommand::Disable { id: "cli-shop".into() }), &mut Vec::new()).await.unwrap();
    assert_eq!(status_of(&app, Some(&m.basic())).await.status(), 403);
    run_accounts(args(AccountsCommand::Enable { id: "cli-shop".into() }), &mut Vec::new()).await.unwrap();
    let mut out = Vec::new();
    run_accounts(args(AccountsCommand::RotateSecret { id: "cli-shop".into() }), &mut out).await.unwrap();
    let rotated: Value = serde_json::from_slice(&out).unwrap();
    let new = Merchant { id: "cli-shop".into(), secret: rotated["secret"].as_str().unwrap().into() };
    assert_eq!(status_of(&app, Some(&m.basic())).await.status(), 401);
    assert_eq!(status_of(&app, Some(&new.basic())).await.status(), 200);

    // A different key makes secrets that the server does not accept.
    let mut out = Vec::new();
    let other_key = AccountsArgs {
        secret_hash_key: Some("some-other-key-1234".into()),
        ..args(AccountsCommand::Create { id: "k2".into(), name: "K2".into() })
    };
    run_accounts(other_key, &mut out).await.unwrap();
    let created: Value = serde_json::from_slice(&out).unwrap();
    let k2 = Merchant { id: "k2".into(), secret: created["secret"].as_str().unwrap().into() };
    assert_eq!(status_of(&app, Some(&k2.basic())).await.status(), 401);
    assert!(run_accounts(args(AccountsCommand::Disable { id: "nobody".into() }), &mut Vec::new()).await.is_err());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_from_one_address_are_limited() {
    let (mut config, dir) = sqlite_config().await;
    config.auth_failures_per_minute = 3;
    let app = spawn_with(config, Some(dir)).await;
    let m = app.merchant("merchant-1").await;
    let wrong = Merchant { id: m.id.clone(), secret: "guess".into() };
    for _ in 0..3 {
        assert_eq!(status_of(&app, Some(&wrong.basic())).await.status(), 401);
    }
    let r = status_of(&app, Some(&wrong.basic())).await;
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(error_code(r, 429).await.0, "too_many_failed_authentications");
    // The right secret is never refused by the failure limit: credentials
    // are checked first, and only failures are throttled.
    assert_eq!(status_of(&app, Some(&m.basic())).await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_merchant_has_a_rate_limit() {
    let (mut config, dir) = sqlite_config().await;
    config.rate_limit_per_second = 0.5;
    config.rate_limit_burst = 3.0;
    let app = spawn_with(config, Some(dir)).await;
    let a = app.merchant("merchant-a").await;
    let b = app.merchant("merchant-b").await;
    for _ in 0..3 {
        assert_eq!(app.post(&a, "/v1/transactions", &approvable()).await.status(), 202);
    }
    let r = app.post(&a, "/v1/transactions", &approvable()).await;
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(error_code(r, 429).await.0, "rate_limited");
    assert_eq!(app.post(&b, "/v1/transactions", &approvable()).await.status(), 202, "per merchant");
    let batch = json!({ "transactions": [approvable(), approvable(), approvable()] });
    assert_eq!(app.post(&b, "/v1/transactions/batch", &batch).await.status(), 429, "a batch costs its items");
    app.stop().await;
}
