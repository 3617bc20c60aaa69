-- API tokens (docs/security.md). The secret is stored only as its SHA-256:
-- tokens are 32 random bytes, so a fast hash is as strong as a slow one and
-- keeps each request's lookup an index probe.
--
-- Same conventions as 0001-0003: INTEGER Unix microseconds for times.
CREATE TABLE api_token (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    scope        TEXT    NOT NULL DEFAULT '',
    secret_hash  BLOB    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
-- One usable token per name, so history that names a token is unambiguous;
-- a revoked name may be reused.
CREATE UNIQUE INDEX api_token_active_name ON api_token (name) WHERE revoked_at IS NULL;
