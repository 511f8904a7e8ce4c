-- Idempotency-Key records of the API, per merchant. The fingerprint is a
-- keyed hash of the canonical request body; the stored response holds no card data.
CREATE TABLE idempotency_keys (
    account_id      TEXT    NOT NULL,
    idem_key        TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('in_flight', 'done')),
    response_status INTEGER,
    response_body   TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    PRIMARY KEY (account_id, idem_key)
) STRICT;

CREATE INDEX idempotency_created ON idempotency_keys (created_at);
