-- cairn server schema, version 3: the web UI's sign-in. Applied after version 2.

-- A user's password for the web UI, as a PHC string (argon2id); NULL: API-key sign-in only.
ALTER TABLE users ADD COLUMN password_hash TEXT;

-- Web sessions. `token_hash` is the hex SHA-256 of the cookie's token (the token itself is
-- never stored); `csrf` is the token a page echoes in `X-CSRF-Token` on every write.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
