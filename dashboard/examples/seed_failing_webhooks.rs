//! Creates webhook endpoints that are failing (one failed attempt each),
//! for trying out the dashboard's "Webhook endpoints failing" panel and
//! for its browser test. `disabled` ones are disabled for failing, as the
//! notifier does after a sustained failure.
//!
//!   cargo run -p dashboard --example seed_failing_webhooks -- \
//!       --database-url sqlite://gateway.db ep_a:shop-a:enabled ep_b:shop-b:disabled

use clap::Parser;
use time::{Duration, OffsetDateTime};
use transaction_model::AccountId;
use transaction_store::webhooks::{
    Attempt, AttemptResult, EndpointStatus, NewDelivery, NextState, WebhookEndpoint, OUTCOME_HTTP_ERROR,
};

#[derive(Parser)]
struct Args {
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://gateway.db")]
    database_url: String,
    /// `endpoint_id:account_id:enabled|disabled` triples.
    endpoints: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let repo = transaction_store::open_webhooks(&args.database_url).await?;
    let now = OffsetDateTime::now_utc();
    for spec in &args.endpoints {
        let mut parts = spec.split(':');
        let (Some(id), Some(account), Some(state), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            anyhow::bail!("{spec:?} is not endpoint:account:enabled|disabled");
        };
        let account = AccountId::try_from(account)?;
        repo.create_endpoint(&WebhookEndpoint {
            id: id.to_owned(),
            account_id: account.clone(),
            url: format!("https://{account}.example.com/webhooks"),
            description: "seeded failing endpoint".into(),
            event_types: vec!["transaction.approved".into()],
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            // Random enough for a demo; the dashboard never shows it.
            secret: format!("whsec_{}", uuid::Uuid::new_v4().simple()),
            previous_secret: None,
            previous_secret_expires_at: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        })
        .await?;
        let event_id = format!("evt_seed_{id}");
        repo.record_deliveries(vec![NewDelivery {
            endpoint_id: id.to_owned(),
            event_id: event_id.clone(),
            account_id: account,
            event_type: "transaction.approved".into(),
            transaction_id: format!("tx_seed_{id}"),
            payload: "{}".into(),
            decided_at: now,
            created_at: now,
        }])
        .await?;
        // A threshold after the failure disables the endpoint; one long
        // before it leaves the endpoint enabled and retrying.
        let disable_failing_before =
            if state == "disabled" { now + Duration::seconds(1) } else { now - Duration::days(3) };
        let attempt = Attempt {
            endpoint_id: id.to_owned(),
            event_id,
            attempt: 1,
            started_at: now,
            duration_ms: 31,
            status_code: Some(503),
            outcome: OUTCOME_HTTP_ERROR.into(),
            error: Some("HTTP 503".into()),
        };
        let next = NextState::RetryAt(now + Duration::minutes(5));
        repo.complete_attempts(vec![AttemptResult { attempt, next }], now, disable_failing_before).await?;
        println!("{id}: failing ({state})");
    }
    Ok(())
}
