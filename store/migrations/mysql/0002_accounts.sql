-- Merchant accounts. The secret is kept only as a keyed hash (HMAC-SHA256).
CREATE TABLE accounts (
    id          VARCHAR(64)  COLLATE utf8mb4_bin NOT NULL,
    name        VARCHAR(255) NOT NULL,
    status      ENUM('active', 'disabled') NOT NULL,
    secret_hash CHAR(64)     NOT NULL,
    created_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
