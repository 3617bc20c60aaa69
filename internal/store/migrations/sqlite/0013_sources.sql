-- Live sources (docs/sources.md): cloud security services Steward pulls
-- findings from on a schedule, their runs, and which assessments each
-- source reported (the gone rule).

CREATE TABLE source (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,            -- defender, securityhub, scc
    scope       TEXT    NOT NULL,            -- normalized
    schedule_s  INTEGER NOT NULL,            -- seconds between pulls
    enabled     INTEGER NOT NULL DEFAULT 1,
    settings    TEXT    NOT NULL DEFAULT '{}', -- the kind's JSON, as given
    pull_seq    INTEGER NOT NULL DEFAULT 0,  -- bumped at each pull attempt; marks assessment.source_pull
    next_run_at INTEGER,                     -- when the schedule queues the next run
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL DEFAULT '',
    updated_at  INTEGER NOT NULL
);

-- One sealed secret per source and field (secret.Box, bound to the source
-- ID and field name), like integration credentials.
CREATE TABLE source_secret (
    source_id INTEGER NOT NULL REFERENCES source (id) ON DELETE CASCADE,
    field     TEXT    NOT NULL,
    sealed    BLOB    NOT NULL,
    PRIMARY KEY (source_id, field)
);

-- source_id is not a foreign key: deleting a source keeps its runs' record.
CREATE TABLE source_run (
    id           INTEGER PRIMARY KEY,
    source_id    INTEGER NOT NULL,
    state        TEXT    NOT NULL,            -- queued, running, done, partial, failed
    attempt      INTEGER NOT NULL DEFAULT 0,
    observed     INTEGER NOT NULL DEFAULT 0,
    new          INTEGER NOT NULL DEFAULT 0,
    changed      INTEGER NOT NULL DEFAULT 0,
    unchanged    INTEGER NOT NULL DEFAULT 0,
    gone         INTEGER NOT NULL DEFAULT 0,
    errors       INTEGER NOT NULL DEFAULT 0,
    units        TEXT    NOT NULL DEFAULT '[]', -- JSON array of steward.SourceUnit
    error        TEXT    NOT NULL DEFAULT '',
    requested_by TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    ended_at     INTEGER
);

CREATE INDEX source_run_source ON source_run (source_id, id);

-- Which source last reported an assessment, and in which pull (the
-- source's pull_seq). File imports and the push API leave both NULL, and
-- the gone rule never touches such assessments. Adding nullable columns is
-- O(1) in SQLite.
ALTER TABLE assessment ADD COLUMN source_id INTEGER;
ALTER TABLE assessment ADD COLUMN source_pull INTEGER;

CREATE INDEX assessment_source ON assessment (source_id, source_pull) WHERE source_id IS NOT NULL;
