-- Transactions the API has accepted for a merchant. No card data at all.
-- `delivered` turns 1 once the broker acknowledged the message; a row left
-- at 0 (broker failure, crash) stays hidden unless the processor stored the
-- transaction anyway.
CREATE TABLE accepted_transactions (
    id           TEXT    NOT NULL PRIMARY KEY,
    account_id   TEXT    NOT NULL,
    amount_cents INTEGER NOT NULL,
    created_at   TEXT    NOT NULL,
    delivered    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX accepted_account_created ON accepted_transactions (account_id, created_at DESC, id DESC);
