-- Decided transactions. Never the CVV, never the full card number.
CREATE TABLE transactions (
    id            TEXT    NOT NULL PRIMARY KEY,
    account_id    TEXT,
    amount_cents  INTEGER,
    status        TEXT    NOT NULL CHECK (status IN ('approved', 'rejected')),
    error_message TEXT    NOT NULL DEFAULT '',
    card_brand    TEXT,
    card_masked   TEXT,
    card_hash     TEXT,
    created_at    TEXT    NOT NULL,
    processed_at  TEXT    NOT NULL
) STRICT;

CREATE INDEX transactions_account_created ON transactions (account_id, created_at DESC, id);
