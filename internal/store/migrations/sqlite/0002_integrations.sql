-- Integrations, tickets, the audit log and installation metadata (SQLite).
--
-- Same conventions as 0001: INTEGER Unix microseconds for times, INTEGER 0/1
-- booleans, TEXT JSON documents. Sealed secrets are BLOBs (PostgreSQL:
-- bytea).

-- Key/value facts about this database, such as the installation ID.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE integration (
    id                  INTEGER PRIMARY KEY,
    name                TEXT    NOT NULL,
    name_norm           TEXT    NOT NULL UNIQUE, -- lower(trim(name)): names are unique in any letter case
    type                TEXT    NOT NULL,
    scope               TEXT    NOT NULL,        -- steward.Scope.Normalize()
    instance_url        TEXT    NOT NULL DEFAULT '',
    local               INTEGER NOT NULL DEFAULT 0,
    auth_mode           TEXT    NOT NULL,
    username            TEXT    NOT NULL DEFAULT '',
    client_id           TEXT    NOT NULL DEFAULT '',
    -- Credentials sealed by secret.Box with the context
    -- "integration:<id>:<field>"; NULL when not set.
    password            BLOB,
    client_secret       BLOB,
    webhook_secret      BLOB,
    ticket_types        TEXT    NOT NULL DEFAULT '{}', -- JSON map ticket type -> TicketMapping
    priority            TEXT    NOT NULL DEFAULT '{}', -- JSON map severity -> ImpactUrgency
    requests_per_second REAL    NOT NULL DEFAULT 0,
    sync                TEXT    NOT NULL DEFAULT '{}', -- JSON SyncSettings
    state               TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    created_by          TEXT    NOT NULL DEFAULT '',
    updated_at          INTEGER NOT NULL,
    CHECK (state IN ('active', 'deleting'))
);

-- One ticket per assignment. integration_id deliberately has no foreign key:
-- tickets (and their assignments) outlive a deleted integration as history.
CREATE TABLE ticket (
    assignment_id     INTEGER PRIMARY KEY REFERENCES assignment (id),
    integration_id    INTEGER NOT NULL,
    type              TEXT    NOT NULL,
    table_name        TEXT    NOT NULL,
    correlation_id    TEXT    NOT NULL UNIQUE,
    status            TEXT    NOT NULL,
    error             TEXT    NOT NULL DEFAULT '',
    attempts          INTEGER NOT NULL DEFAULT 0,
    sys_id            TEXT    NOT NULL DEFAULT '',
    number            TEXT    NOT NULL DEFAULT '',
    link              TEXT    NOT NULL DEFAULT '',
    raw_state         TEXT    NOT NULL DEFAULT '',
    state_label       TEXT    NOT NULL DEFAULT '',
    state             TEXT    NOT NULL DEFAULT '',
    assignee_email    TEXT    NOT NULL DEFAULT '',
    remote_updated_at INTEGER,
    mod_count         INTEGER NOT NULL DEFAULT 0,
    last_synced_at    INTEGER,
    short_description TEXT    NOT NULL DEFAULT '',
    description       TEXT    NOT NULL DEFAULT '',
    caller_email      TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CHECK (status IN ('pending', 'created', 'retrying', 'failed'))
);

-- Per-integration listings (keyset by assignment_id), delete preview and
-- the removal job.
CREATE INDEX ticket_integration ON ticket (integration_id, assignment_id);
-- Sync looks records up by sys_id (webhooks, polls).
CREATE INDEX ticket_sys_id ON ticket (integration_id, sys_id);

-- Who did what to integrations and tickets. integration_id and
-- assignment_id are 0 when not applicable and have no foreign keys: the log
-- outlives what it describes.
CREATE TABLE audit_event (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    actor          TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    integration_id INTEGER NOT NULL DEFAULT 0,
    assignment_id  INTEGER NOT NULL DEFAULT 0,
    details        TEXT    NOT NULL DEFAULT '' -- JSON object, '' when none
);

CREATE INDEX audit_event_integration ON audit_event (integration_id, id);
CREATE INDEX audit_event_assignment ON audit_event (assignment_id, id);
