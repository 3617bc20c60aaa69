-- Governance rules (docs/rules.md) and the tags of scope levels that owner
-- lookups climb to.
--
-- Same conventions as 0001: INTEGER Unix microseconds for times, INTEGER
-- 0/1 for booleans, JSON documents as TEXT. A rule names its integration
-- rather than referencing its row, so deleting an integration (which
-- deletes the row) never has to touch rules; rules are checked against the
-- integrations when they are saved.
CREATE TABLE rule (
    id                    INTEGER PRIMARY KEY,
    name                  TEXT    NOT NULL,
    name_norm             TEXT    NOT NULL UNIQUE, -- lower(trim(name))
    description           TEXT    NOT NULL DEFAULT '',
    scope                 TEXT    NOT NULL,        -- steward.Scope.Normalize()
    exclude               TEXT    NOT NULL DEFAULT '[]', -- JSON array of scopes
    priority              INTEGER NOT NULL,
    enabled               INTEGER NOT NULL,
    conditions            TEXT    NOT NULL,        -- JSON array of condition sets
    owner_email           TEXT    NOT NULL DEFAULT '',
    owner_tag             TEXT    NOT NULL DEFAULT '',
    owner_fallback        TEXT    NOT NULL DEFAULT '',
    due_in_days           INTEGER NOT NULL,
    grace_period          INTEGER NOT NULL DEFAULT 0,
    owner_email_opt_out   INTEGER NOT NULL DEFAULT 0,
    manager_email_opt_out INTEGER NOT NULL DEFAULT 0,
    ticket_integration    TEXT    NOT NULL DEFAULT '', -- '' for manual assignments
    ticket_type           TEXT    NOT NULL DEFAULT '',
    ticket_group_by       TEXT    NOT NULL DEFAULT '',
    ticket_daily_cap      INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    created_by            TEXT    NOT NULL DEFAULT '',
    updated_at            INTEGER NOT NULL,
    CHECK (priority BETWEEN 0 AND 1000)
);

CREATE INDEX rule_priority ON rule (priority, name_norm);

CREATE TABLE scope_tag (
    scope      TEXT    PRIMARY KEY, -- steward.Scope.Normalize()
    tags       TEXT    NOT NULL,    -- JSON object
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL DEFAULT ''
);
