-- Merchant accounts. The secret is kept only as a keyed hash (HMAC-SHA256).
CREATE TABLE accounts (
    id          TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
