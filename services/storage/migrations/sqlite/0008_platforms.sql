-- Accounts of the platforms that forward GB/T 32960.3 reports of many vehicles over the TCP
-- gateway (platform login, command 0x05). The password is kept as an argon2 hash only.

CREATE TABLE gbt32960_platforms (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
