-- Merchant webhooks: endpoints, the delivery outbox and the attempt log.
-- Signing secrets are kept as issued (HMAC needs them); never logged.
CREATE TABLE webhook_endpoints (
    id                         TEXT NOT NULL PRIMARY KEY,
    account_id                 TEXT NOT NULL,
    url                        TEXT NOT NULL,
    description                TEXT NOT NULL,
    event_types                TEXT NOT NULL,
    status                     TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    disabled_reason            TEXT,
    secret                     TEXT NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at TEXT,
    failing_since              TEXT,
    created_at                 TEXT NOT NULL,
    updated_at                 TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id, status);

-- One row per (endpoint, event), written before the notifier's Kafka offsets
-- move past the decision.
CREATE TABLE webhook_deliveries (
    endpoint_id      TEXT    NOT NULL,
    event_id         TEXT    NOT NULL,
    account_id       TEXT    NOT NULL,
    event_type       TEXT    NOT NULL,
    transaction_id   TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL,
    next_attempt_at  TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    decided_at       TEXT    NOT NULL,
    delivered_at     TEXT,
    last_status_code INTEGER,
    last_error       TEXT,
    PRIMARY KEY (endpoint_id, event_id)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, status, next_attempt_at);
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (endpoint_id, created_at);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (created_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    endpoint_id TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    started_at  TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL,
    status_code INTEGER,
    outcome     TEXT    NOT NULL,
    error       TEXT,
    PRIMARY KEY (endpoint_id, event_id, attempt)
) STRICT;
