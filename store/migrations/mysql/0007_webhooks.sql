-- Merchant webhooks: endpoints, the delivery outbox and the attempt log.
-- Signing secrets are kept as issued (HMAC needs them); never logged.
CREATE TABLE webhook_endpoints (
    id                         VARCHAR(64)   COLLATE utf8mb4_bin NOT NULL,
    account_id                 VARCHAR(64)   COLLATE utf8mb4_bin NOT NULL,
    url                        VARCHAR(2048) NOT NULL,
    description                VARCHAR(255)  NOT NULL,
    event_types                VARCHAR(255)  NOT NULL,
    status                     ENUM('enabled', 'disabled') NOT NULL,
    disabled_reason            VARCHAR(32),
    secret                     VARCHAR(128)  NOT NULL,
    previous_secret            VARCHAR(128),
    previous_secret_expires_at DATETIME(6),
    failing_since              DATETIME(6),
    created_at                 DATETIME(6)   NOT NULL,
    updated_at                 DATETIME(6)   NOT NULL,
    PRIMARY KEY (id),
    KEY webhook_endpoints_account (account_id, status)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- One row per (endpoint, event), written before the notifier's Kafka offsets
-- move past the decision.
CREATE TABLE webhook_deliveries (
    endpoint_id      VARCHAR(64)  COLLATE utf8mb4_bin NOT NULL,
    event_id         VARCHAR(64)  COLLATE utf8mb4_bin NOT NULL,
    account_id       VARCHAR(64)  COLLATE utf8mb4_bin NOT NULL,
    event_type       VARCHAR(64)  NOT NULL,
    transaction_id   VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    payload          TEXT         NOT NULL,
    status           ENUM('pending', 'delivered', 'failed') NOT NULL,
    attempts         INT UNSIGNED NOT NULL,
    next_attempt_at  DATETIME(6)  NOT NULL,
    created_at       DATETIME(6)  NOT NULL,
    decided_at       DATETIME(6)  NOT NULL,
    delivered_at     DATETIME(6),
    last_status_code SMALLINT UNSIGNED,
    last_error       VARCHAR(255),
    PRIMARY KEY (endpoint_id, event_id),
    KEY webhook_deliveries_due (endpoint_id, status, next_attempt_at),
    KEY webhook_deliveries_recent (endpoint_id, created_at),
    KEY webhook_deliveries_pending (status, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE webhook_attempts (
    endpoint_id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    event_id    VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    attempt     INT UNSIGNED NOT NULL,
    started_at  DATETIME(6) NOT NULL,
    duration_ms BIGINT UNSIGNED NOT NULL,
    status_code SMALLINT UNSIGNED,
    outcome     VARCHAR(32) NOT NULL,
    error       VARCHAR(255),
    PRIMARY KEY (endpoint_id, event_id, attempt)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
