-- Decided transactions. Never the CVV, never the full card number.
CREATE TABLE transactions (
    id            VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    account_id    VARCHAR(64)  COLLATE utf8mb4_bin NULL,
    amount_cents  BIGINT       NULL,
    status        ENUM('approved', 'rejected') NOT NULL,
    error_message VARCHAR(255) NOT NULL DEFAULT '',
    card_brand    VARCHAR(16)  NULL,
    card_masked   VARCHAR(19)  NULL,
    card_hash     CHAR(64)     NULL,
    created_at    DATETIME(6)  NOT NULL,
    processed_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    KEY transactions_account_created (account_id, created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
