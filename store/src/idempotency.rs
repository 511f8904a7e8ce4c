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
    /// `since` is when the key was first used (microseconds), the same for
    /// every attempt under the key until it expires: the caller derives the
    /// transactions' ids and times from it, so a retry after an unclear
    /// failure re-sends the same transactions instead of new ones.
    Started { since: OffsetDateTime },
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

    /// Ends an attempt without a stored response (a failure that must not be
    /// replayed, such as a broker outage), so the request may be retried.
    /// The record stays: a retry with the same body takes it over and keeps
    /// `since`; a different body is a mismatch until the key expires,
    /// because the broker may hold the first body's transactions.
    async fn release_idempotent(&self, account: &AccountId, key: &str) -> Result<(), StoreError>;

    /// Deletes records created before `before`; returns how many.
    async fn purge_idempotency(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// `updated_at` of a released record: older than any in-flight timeout, so
/// the next attempt takes it over at once.
pub(crate) const RELEASED_AT: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

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
