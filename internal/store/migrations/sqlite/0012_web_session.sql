-- Web UI sessions (docs/web.md). The browser holds a random secret in an
-- HttpOnly cookie; only its SHA-256 is stored, like API tokens.
--
-- A session signed in with an API token points at it (token_id): every
-- request re-reads the token, so revoking or expiring the token ends its
-- sessions at once and a role change applies on the next click. A session
-- signed in through OpenID Connect has no token; its name, role and scope
-- come from the identity provider's claims at sign-in.
CREATE TABLE web_session (
    id           INTEGER PRIMARY KEY,
    secret_hash  BLOB    NOT NULL UNIQUE,
    token_id     INTEGER REFERENCES api_token (id),
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    scope        TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX web_session_expires ON web_session (expires_at);
