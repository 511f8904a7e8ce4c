//! Idempotency-Key records: one request per (merchant, key), replayed.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use transaction_model::AccountId;

use crate::StoreError;

/// A response kept for replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// What [`IdempotencyRepository::begin_idempotent`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is now held by the caller, who must complete or release it.
    Started,
    /// Another request with this key is running.
    InFlight,
    /// The key was used with a different body.
    Mismatch,
    /// The key's request finished: replay this.
    Completed(StoredResponse),
}

#[derive(Clone, Copy, Debug)]
pub struct IdempotencyTimes {
    pub now: OffsetDateTime,
    /// Records older than this are forgotten (24 h in the API).
    pub ttl: Duration,
    /// An in-flight record older than this is taken to be from a crashed
    /// request and may be taken over.
    pub in_flight_timeout: Duration,
}

#[async_trait]
pub trait IdempotencyRepository: Send + Sync + 'static {
    async fn begin_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        times: IdempotencyTimes,
    ) -> Result<IdempotencyBegin, StoreError>;

    async fn complete_idempotent(
        &self,
        account: &AccountId,
        key: &str,
        response: &StoredResponse,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Forgets an in-flight key, so the request may be retried (after a
    /// failure that must not be replayed, such as a broker outage).
    async fn release_idempotent(&self, account: &AccountId, key: &str) -> Result<(), StoreError>;

    /// Deletes records created before `before`; returns how many.
    async fn purge_idempotency(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

pub(crate) fn cutoff(now: OffsetDateTime, age: Duration) -> OffsetDateTime {
    now - time::Duration::try_from(age).unwrap_or(time::Duration::MAX)
}

/// Shared by both databases: what an existing record means for a new request.
pub(crate) fn classify(
    row: Option<(String, String, Option<i64>, Option<String>)>,
    fingerprint: &str,
) -> IdempotencyBegin {
    match row {
        // Released between our insert attempt and the read: still busy.
        None => IdempotencyBegin::InFlight,
        Some((stored, _, _, _)) if stored != fingerprint => IdempotencyBegin::Mismatch,
        Some((_, state, Some(status), Some(body))) if state == "done" => match u16::try_from(status) {
            Ok(status) => IdempotencyBegin::Completed(StoredResponse { status, body }),
            Err(_) => IdempotencyBegin::InFlight,
        },
        Some(_) => IdempotencyBegin::InFlight,
    }
}
