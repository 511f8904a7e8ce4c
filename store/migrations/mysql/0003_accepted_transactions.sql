-- Transactions the API has accepted for a merchant. No card data at all.
-- `delivered` turns 1 once the broker acknowledged the message; a row left
-- at 0 (broker failure, crash) stays hidden unless the processor stored the
-- transaction anyway.
CREATE TABLE accepted_transactions (
    id           VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    account_id   VARCHAR(64)  COLLATE utf8mb4_bin NOT NULL,
    amount_cents BIGINT       NOT NULL,
    created_at   DATETIME(6)  NOT NULL,
    delivered    TINYINT(1)   NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    KEY accepted_account_created (account_id, created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
