//! A read-only view of unhealthy webhook endpoints, for the dashboard.
//!
//! A trait of its own rather than more of [`crate::WebhookRepository`]: the
//! dashboard needs this one read and nothing else, and the summary carries
//! no signing secret, so the reader never holds one (and its MySQL user
//! needs no more than SELECT on the columns read here).

use async_trait::async_trait;
use time::OffsetDateTime;
use transaction_model::AccountId;

use crate::webhooks::EndpointStatus;
use crate::StoreError;

/// Whose endpoints a read covers. An enum, not an `Option`, so that "every
/// merchant" is always written out at the call site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointScope<'a> {
    /// Every merchant's (operators).
    All,
    /// One merchant's only.
    Account(&'a AccountId),
}

/// An endpoint failing now or disabled for failing, without its secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailingEndpointSummary {
    pub id: String,
    pub account_id: AccountId,
    pub url: String,
    pub status: EndpointStatus,
    /// `failing` when the notifier disabled it, `merchant` when the
    /// merchant did (while it was failing).
    pub disabled_reason: Option<String>,
    /// First failed attempt since the last success; `None` once disabled
    /// endpoints are re-enabled.
    pub failing_since: Option<OffsetDateTime>,
    /// The outcome of the last attempt of the endpoint's newest attempted
    /// delivery (what the delivery row keeps), when there is one.
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
}

#[async_trait]
pub trait WebhookHealthRepository: Send + Sync + 'static {
    /// Endpoints in `scope` failing now or disabled for failing, ordered by
    /// merchant and id, at most `limit`.
    async fn failing_endpoint_summaries(
        &self,
        scope: EndpointScope<'_>,
        limit: usize,
    ) -> Result<Vec<FailingEndpointSummary>, StoreError>;
}

/// The `WHERE` of the failing-endpoint reads (both backends).
pub(crate) const FAILING: &str = "(e.failing_since IS NOT NULL OR e.disabled_reason = 'failing')";
