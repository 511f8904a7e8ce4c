//! Health, readiness, metrics, the OpenAPI document and request ids.

mod support;

use serde_json::Value;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_openapi_and_request_ids() {
    let app = spawn_sqlite().await;
    let m = app.merchant("merchant-1").await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID when the client sends none");

    let r = app.client.get(app.internal_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!((ready["database"].as_str(), ready["broker"].as_str()), (Some("ok"), Some("ok")));

    assert_eq!(app.post(&m, "/v1/transactions", &approvable()).await.status(), 202);
    let _ = app.get(&m, "/v1/transactions/some-id").await;
    let _ = app.client.get(app.url("/v1/transactions")).send().await.unwrap();
    let odd = reqwest::Method::from_bytes(b"BREW").unwrap();
    let _ = app.client.request(odd, app.url("/v1/transactions")).send().await.unwrap();

    let metrics = app.client.get(app.internal_url("/metrics")).send().await.unwrap().text().await.unwrap();
    for expected in [
        r#"api_http_requests_total{method="POST",route="/v1/transactions",status="202"} 1"#,
        r#"api_http_requests_total{method="GET",route="/v1/transactions/{id}",status="404"} 1"#,
        r#"api_http_requests_total{method="GET",route="/v1/transactions",status="401"} 1"#,
        r#"api_http_request_duration_seconds_count{route="/v1/transactions",status="202"} 1"#,
        r#"api_http_request_duration_seconds_count{route="/v1/transactions",status="401"} 1"#,
        r#"api_http_request_duration_seconds_count{route="/v1/transactions",status="405"} 1"#,
        r#"api_http_request_duration_seconds_bucket{route="/v1/transactions/{id}",status="404",le="+Inf"} 1"#,
        "api_transactions_accepted_total 1",
        r#"api_auth_failures_total{reason="missing_or_malformed"} 1"#,
        r#"api_build_info{version="#,
        r#"api_http_requests_total{method="other",route="/v1/transactions",status="405"} 1"#,
    ] {
        assert!(metrics.contains(expected), "missing {expected} in\n{metrics}");
    }
    assert!(!metrics.contains("4111"), "no card data in metrics");
    assert!(!metrics.contains("some-id"), "route templates, not raw paths");
    assert!(!metrics.contains("BREW"), "bounded method labels");

    let r = app.client.get(app.url("/openapi.yaml")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.starts_with("openapi: 3"), "{}", &text[..40.min(text.len())]);
    assert!(text.contains("/v1/transactions/batch:"));
    app.stop().await;
}
