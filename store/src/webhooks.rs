//! Merchant webhooks: the endpoints merchants register, and the durable
//! outbox of deliveries (one row per endpoint and event) with the log of
//! every attempt.
//!
//! The notifier records a delivery row *before* it stores its Kafka
//! offsets, so a decision is never lost between the topic and the merchant;
//! rows are keyed by `(endpoint_id, event_id)`, so re-reading a result
//! records nothing twice.

use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;
use transaction_model::AccountId;

use crate::StoreError;

/// Whether the notifier sends to an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndpointStatus {
    Enabled,
    Disabled,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Enabled => "enabled",
            EndpointStatus::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "enabled" => Some(EndpointStatus::Enabled),
            "disabled" => Some(EndpointStatus::Disabled),
            _ => None,
        }
    }
}

/// `disabled_reason` when the merchant disabled the endpoint.
pub const DISABLED_BY_MERCHANT: &str = "merchant";
/// `disabled_reason` when the notifier disabled it after failing too long.
pub const DISABLED_FAILING: &str = "failing";

/// An endpoint as stored. `secret` is the current signing secret
/// (`whsec_…`); during a rotation's overlap `previous_secret` also signs.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub account_id: AccountId,
    pub url: String,
    pub description: String,
    /// Event types delivered (e.g. `transaction.approved`); never empty.
    pub event_types: Vec<String>,
    pub status: EndpointStatus,
    /// [`DISABLED_BY_MERCHANT`] or [`DISABLED_FAILING`] when disabled.
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    /// First failed attempt since the last success; `None` when healthy.
    pub failing_since: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl WebhookEndpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|t| t == event_type)
    }

    /// The secrets to sign with at `now`: the current one, and the previous
    /// one while its overlap lasts.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_secret_expires_at) {
            if now < until {
                secrets.push(previous.as_str());
            }
        }
        secrets
    }
}

impl fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("status", &self.status)
            .field("disabled_reason", &self.disabled_reason)
            .field("secret", &"<redacted>")
            .field("previous_secret", &self.previous_secret.as_ref().map(|_| "<redacted>"))
            .field("previous_secret_expires_at", &self.previous_secret_expires_at)
            .field("failing_since", &self.failing_since)
            .finish_non_exhaustive()
    }
}

/// Fields a merchant may change; `None` keeps the stored value.
#[derive(Clone, Debug, Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not yet delivered; attempted at `next_attempt_at`.
    Pending,
    Delivered,
    /// Every scheduled attempt failed; the merchant may redeliver.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// A delivery to record: one event for one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    pub endpoint_id: String,
    /// The `webhook-id`: the same for every attempt and every replay.
    pub event_id: String,
    pub account_id: AccountId,
    pub event_type: String,
    pub transaction_id: String,
    /// The exact body sent (JSON; the decision and the masked card only).
    pub payload: String,
    /// When the processor decided (the result's `processed_at`).
    pub decided_at: OffsetDateTime,
    /// When recorded; also the first attempt's time.
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub endpoint_id: String,
    pub event_id: String,
    pub account_id: AccountId,
    pub event_type: String,
    pub transaction_id: String,
    pub payload: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub decided_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
}

/// How an attempt ended (`webhook_attempts.outcome`, metric label).
pub const OUTCOME_SUCCESS: &str = "success";
pub const OUTCOME_HTTP_ERROR: &str = "http_error";
pub const OUTCOME_TIMEOUT: &str = "timeout";
pub const OUTCOME_CONNECT_ERROR: &str = "connect_error";
pub const OUTCOME_REFUSED: &str = "refused";
pub const OUTCOMES: [&str; 5] =
    [OUTCOME_SUCCESS, OUTCOME_HTTP_ERROR, OUTCOME_TIMEOUT, OUTCOME_CONNECT_ERROR, OUTCOME_REFUSED];

/// One HTTP attempt, as logged for the merchant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub endpoint_id: String,
    pub event_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub started_at: OffsetDateTime,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub outcome: String,
    /// A short description of a failure; never the response body.
    pub error: Option<String>,
}

/// What becomes of a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextState {
    Delivered,
    RetryAt(OffsetDateTime),
    /// The schedule is used up: the delivery is `failed`.
    Exhausted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptResult {
    pub attempt: Attempt,
    pub next: NextState,
}

/// Pending deliveries to enabled endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub pending: u64,
    pub oldest_pending_created_at: Option<OffsetDateTime>,
    /// Pending and due now (not waiting for a retry, not being attempted):
    /// how far behind the notifier is.
    pub due: u64,
    pub oldest_due_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait WebhookRepository: Send + Sync + 'static {
    /// Fails with [`StoreError::AlreadyExists`] when the id is taken.
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), StoreError>;

    /// The merchant's endpoint; another merchant's is `None`.
    async fn find_endpoint(&self, account: &AccountId, id: &str) -> Result<Option<WebhookEndpoint>, StoreError>;

    /// The merchant's endpoints, oldest first.
    async fn list_endpoints(&self, account: &AccountId) -> Result<Vec<WebhookEndpoint>, StoreError>;

    async fn update_endpoint(
        &self,
        account: &AccountId,
        id: &str,
        update: &EndpointUpdate,
        now: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, StoreError>;

    /// Enabling clears the failure record; disabling records
    /// [`DISABLED_BY_MERCHANT`].
    async fn set_endpoint_enabled(
        &self,
        account: &AccountId,
        id: &str,
        enabled: bool,
        now: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, StoreError>;

    /// The current secret becomes the previous one until `previous_until`.
    async fn rotate_endpoint_secret(
        &self,
        account: &AccountId,
        id: &str,
        new_secret: &str,
        previous_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, StoreError>;

    /// Enabled endpoints of these merchants (the notifier's fan-out).
    async fn enabled_endpoints_of(&self, accounts: &[AccountId]) -> Result<Vec<WebhookEndpoint>, StoreError>;

    /// Records deliveries in one transaction; a `(endpoint_id, event_id)`
    /// already recorded is left as it is. Returns how many were new.
    async fn record_deliveries(&self, deliveries: Vec<NewDelivery>) -> Result<u64, StoreError>;

    /// Enabled endpoints with a pending delivery due at `now`.
    async fn due_endpoints(&self, now: OffsetDateTime) -> Result<Vec<WebhookEndpoint>, StoreError>;

    /// Takes up to `limit` due deliveries of one endpoint, oldest due first,
    /// and moves their `next_attempt_at` to `lease_until`, so that another
    /// notifier (or this one after a crash) tries them only once the lease
    /// has passed.
    async fn claim_due(
        &self,
        endpoint_id: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Logs attempts and moves their deliveries on, in one transaction;
    /// tracks each endpoint's `failing_since` and disables the enabled
    /// endpoints failing since before `disable_failing_before`. Returns the
    /// ids of the endpoints disabled.
    async fn complete_attempts(
        &self,
        results: Vec<AttemptResult>,
        now: OffsetDateTime,
        disable_failing_before: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError>;

    /// Deliveries of the merchant's endpoint, newest first.
    async fn list_deliveries(
        &self,
        account: &AccountId,
        endpoint_id: &str,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// One delivery of the merchant's endpoint with its attempts, in order.
    async fn find_delivery(
        &self,
        account: &AccountId,
        endpoint_id: &str,
        event_id: &str,
    ) -> Result<Option<(Delivery, Vec<Attempt>)>, StoreError>;

    /// Makes the delivery pending and due at `now` (one more attempt when
    /// its schedule is used up). False when there is no such delivery.
    async fn redeliver(
        &self,
        account: &AccountId,
        endpoint_id: &str,
        event_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Pending deliveries of enabled endpoints; `due` as of `now`.
    async fn queue_stats(&self, now: OffsetDateTime) -> Result<QueueStats, StoreError>;

    /// Every endpoint failing now or disabled for failing, for operators.
    async fn failing_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError>;
}

/// `event_types` as stored: space-separated.
pub(crate) fn join_event_types(types: &[String]) -> String {
    types.join(" ")
}

pub(crate) fn split_event_types(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn endpoint() -> WebhookEndpoint {
        let t = datetime!(2026-01-01 00:00 UTC);
        WebhookEndpoint {
            id: "ep_1".into(),
            account_id: AccountId::try_from("m-1").unwrap(),
            url: "https://example.com/hook".into(),
            description: String::new(),
            event_types: vec!["transaction.approved".into()],
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            secret: "whsec_current".into(),
            previous_secret: Some("whsec_old".into()),
            previous_secret_expires_at: Some(datetime!(2026-01-02 00:00 UTC)),
            failing_since: None,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn previous_secret_signs_only_during_the_overlap() {
        let e = endpoint();
        assert_eq!(e.signing_secrets(datetime!(2026-01-01 12:00 UTC)), vec!["whsec_current", "whsec_old"]);
        assert_eq!(e.signing_secrets(datetime!(2026-01-02 00:00 UTC)), vec!["whsec_current"]);
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", endpoint());
        assert!(!text.contains("whsec_current") && !text.contains("whsec_old"), "{text}");
    }

    #[test]
    fn event_types_round_trip() {
        let types = vec!["transaction.approved".to_owned(), "transaction.rejected".to_owned()];
        assert_eq!(split_event_types(&join_event_types(&types)), types);
    }
}
