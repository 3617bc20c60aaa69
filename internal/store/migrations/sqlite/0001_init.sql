-- Steward's initial schema (SQLite).
--
-- Conventions, shared with the PostgreSQL schema (migrations/postgres, whose
-- 0001 lists how each translates), so both stores hold the same values:
--   * times are INTEGER UTC Unix microseconds (PostgreSQL: BIGINT);
--   * booleans are INTEGER 0/1 (PostgreSQL: BIGINT 0/1);
--   * resource IDs are matched through norm_id = steward.NormalizeResourceID,
--     and scope filters are byte ranges on it (PostgreSQL: every TEXT column
--     is COLLATE "C", which compares bytes as SQLite's BINARY does);
--   * JSON documents (tags, changes, results) are TEXT (PostgreSQL: TEXT).

CREATE TABLE recommendation (
    id            INTEGER PRIMARY KEY,
    key           TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL DEFAULT '',
    description   TEXT    NOT NULL DEFAULT '',
    remediation   TEXT    NOT NULL DEFAULT '',
    severity      TEXT    NOT NULL,
    severity_rank INTEGER NOT NULL, -- steward.Severity.Rank(): Low 1 .. Critical 4
    category      TEXT    NOT NULL DEFAULT '',
    source        TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- The listing order: most severe first, then key.
CREATE INDEX recommendation_listing ON recommendation (severity_rank DESC, key);

-- Per-recommendation assessment counts, maintained by
-- RecomputeRecommendationSummaries. One row per cloud plus one with cloud = ''
-- for all clouds, so both unfiltered and cloud-filtered listings read one row
-- per recommendation.
CREATE TABLE recommendation_summary (
    recommendation_id INTEGER NOT NULL REFERENCES recommendation (id) ON DELETE CASCADE,
    cloud             TEXT    NOT NULL,
    unhealthy         INTEGER NOT NULL DEFAULT 0,
    healthy           INTEGER NOT NULL DEFAULT 0,
    not_applicable    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (recommendation_id, cloud)
);

CREATE TABLE resource (
    id          INTEGER PRIMARY KEY,
    norm_id     TEXT    NOT NULL UNIQUE, -- steward.NormalizeResourceID(resource_id)
    resource_id TEXT    NOT NULL,        -- as first reported by a source
    name        TEXT    NOT NULL DEFAULT '',
    type        TEXT    NOT NULL DEFAULT '',
    cloud       TEXT    NOT NULL,
    region      TEXT    NOT NULL DEFAULT '',
    tags        TEXT    NOT NULL DEFAULT '', -- JSON object, '' when none
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
);

-- An assessment points at its resource by integer ID: the long text resource
-- IDs live once, in resource. Scope filters are a range on resource.norm_id
-- (its unique index) joined through assessment_resource; with a text copy of
-- norm_id on every assessment the indexes outgrew the page cache and halved
-- ingest throughput. severity_rank is copied from the recommendation so
-- severity filters need no join; ingest keeps it in step.
CREATE TABLE assessment (
    id                INTEGER PRIMARY KEY,
    recommendation_id INTEGER NOT NULL REFERENCES recommendation (id),
    resource_id       INTEGER NOT NULL REFERENCES resource (id),
    status            TEXT    NOT NULL,
    status_reason     TEXT    NOT NULL DEFAULT '',
    severity_rank     INTEGER NOT NULL,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    status_changed_at INTEGER NOT NULL
);

-- Identity of an assessment and the ingest lookup.
CREATE UNIQUE INDEX assessment_identity ON assessment (recommendation_id, resource_id);
-- Scope and resource filters: resources in the scope (a norm_id range), then
-- their assessments. Covers scoped counts by recommendation and status.
CREATE INDEX assessment_resource ON assessment (resource_id, recommendation_id, status);

CREATE TABLE assessment_status_change (
    id            INTEGER PRIMARY KEY,
    assessment_id INTEGER NOT NULL REFERENCES assessment (id) ON DELETE CASCADE,
    from_status   TEXT    NOT NULL,
    to_status     TEXT    NOT NULL,
    at            INTEGER NOT NULL
);

CREATE INDEX assessment_status_change_assessment ON assessment_status_change (assessment_id, at);

CREATE TABLE assignment (
    id                    INTEGER PRIMARY KEY,
    assessment_id         INTEGER NOT NULL REFERENCES assessment (id),
    type                  TEXT    NOT NULL,
    state                 TEXT    NOT NULL,
    owner                 TEXT    NOT NULL,
    owner_norm            TEXT    NOT NULL, -- lower(owner), for case-insensitive lookup
    due_date              INTEGER NOT NULL,
    grace_period          INTEGER NOT NULL DEFAULT 0,
    eta                   INTEGER,
    eta_justification     TEXT    NOT NULL DEFAULT '',
    owner_email_opt_out   INTEGER NOT NULL DEFAULT 0,
    manager_email_opt_out INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    created_by            TEXT    NOT NULL DEFAULT '',
    updated_at            INTEGER NOT NULL,
    ended_at              INTEGER,
    end_reason            TEXT    NOT NULL DEFAULT '',
    CHECK (state IN ('active', 'completed', 'removed'))
);

-- At most one active assignment per assessment: the database, not just the
-- code, guarantees it (partial indexes exist in PostgreSQL too).
CREATE UNIQUE INDEX assignment_active ON assignment (assessment_id) WHERE state = 'active';
CREATE INDEX assignment_assessment ON assignment (assessment_id);
CREATE INDEX assignment_due ON assignment (state, due_date, id);
CREATE INDEX assignment_owner ON assignment (owner_norm, state, due_date, id);

CREATE TABLE assignment_event (
    id            INTEGER PRIMARY KEY,
    assignment_id INTEGER NOT NULL REFERENCES assignment (id) ON DELETE CASCADE,
    at            INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    reason        TEXT    NOT NULL DEFAULT '',
    changes       TEXT    NOT NULL DEFAULT '' -- JSON object field -> {from, to}, '' when none
);

CREATE INDEX assignment_event_assignment ON assignment_event (assignment_id, id);

-- Uploaded files waiting for, or processed by, the import job.
CREATE TABLE import_file (
    id          INTEGER PRIMARY KEY,
    format      TEXT    NOT NULL DEFAULT '',
    filename    TEXT    NOT NULL DEFAULT '',
    spool_path  TEXT    NOT NULL DEFAULT '',
    size        INTEGER NOT NULL DEFAULT 0,
    state       TEXT    NOT NULL,
    error       TEXT    NOT NULL DEFAULT '',
    result      TEXT    NOT NULL DEFAULT '', -- JSON ApplyResult, '' until finished
    created_by  TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    CHECK (state IN ('queued', 'running', 'succeeded', 'failed'))
);
