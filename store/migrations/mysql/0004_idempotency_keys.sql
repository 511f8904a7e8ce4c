-- Idempotency-Key records of the API, per merchant. The fingerprint is a
-- keyed hash of the canonical request body; the stored response holds no card data.
CREATE TABLE idempotency_keys (
    account_id      VARCHAR(64)  COLLATE utf8mb4_bin NOT NULL,
    idem_key        VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
    fingerprint     CHAR(64)     NOT NULL,
    state           ENUM('in_flight', 'done') NOT NULL,
    response_status SMALLINT     NULL,
    response_body   MEDIUMTEXT   NULL,
    created_at      DATETIME(6)  NOT NULL,
    updated_at      DATETIME(6)  NOT NULL,
    PRIMARY KEY (account_id, idem_key),
    KEY idempotency_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
