-- E-mail notifications (docs/notifications.md). notification is the
-- sent-log: one row per recipient, kind and period (an ISO week such as
-- 2026-W48), unique, so an e-mail is planned once whatever retries,
-- restarts or other processes do. The row's state is written before the
-- message is committed to the SMTP server (sending) and after its answer
-- (sent, retrying, failed); a row found in sending by a later attempt has
-- an unknown outcome and is not sent again unless a person says so.
-- subjects: for an escalation, the JSON array of the owners it is about.
-- Times are Unix microseconds.
CREATE TABLE notification (
    id              INTEGER PRIMARY KEY,
    recipient       TEXT    NOT NULL,
    recipient_norm  TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    period          TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    subjects        TEXT    NOT NULL DEFAULT '[]',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    reply           TEXT    NOT NULL DEFAULT '',
    message_id      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    next_attempt_at INTEGER,
    CHECK (kind IN ('digest', 'escalation')),
    CHECK (state IN ('pending', 'sending', 'sent', 'retrying', 'failed', 'unknown', 'skipped'))
);
CREATE UNIQUE INDEX notification_key ON notification (recipient_norm, kind, period);
CREATE INDEX notification_state ON notification (state, id);

-- A period whose notifications have been planned: the first process to
-- insert it plans them, in the same transaction.
CREATE TABLE notification_period (
    period     TEXT    PRIMARY KEY,
    planned_at INTEGER NOT NULL
);

-- Managers named by people, for owners ServiceNow gives none.
CREATE TABLE manager_mapping (
    owner_norm TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    manager    TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL
);

-- The manager last found for each owner with overdue work, and where
-- (servicenow, mapping, none), shown by `steward notify status`.
CREATE TABLE owner_manager (
    owner_norm  TEXT    PRIMARY KEY,
    owner       TEXT    NOT NULL,
    manager     TEXT    NOT NULL DEFAULT '',
    source      TEXT    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT '',
    resolved_at INTEGER NOT NULL,
    CHECK (source IN ('servicenow', 'mapping', 'none'))
);
