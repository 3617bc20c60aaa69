-- Runs of one governance rule on demand (steward rules run, docs/rules.md):
-- what was asked, how far the job is, what it did.
--
-- rule_id is not a foreign key: deleting a rule keeps the record of its
-- runs, as it keeps the assignments they made.
CREATE TABLE rule_run (
    id           INTEGER PRIMARY KEY,
    rule_id      INTEGER NOT NULL,
    rule_name    TEXT    NOT NULL,
    override     INTEGER NOT NULL DEFAULT 0,
    state        TEXT    NOT NULL,            -- queued, running, succeeded, failed
    scanned      INTEGER NOT NULL DEFAULT 0,  -- Unhealthy assessments in scope looked at
    total        INTEGER NOT NULL DEFAULT 0,  -- of how many, counted when the run started
    assigned     INTEGER NOT NULL DEFAULT 0,
    replaced     INTEGER NOT NULL DEFAULT 0,  -- rule-made assignments ended for a new one
    skipped      TEXT    NOT NULL DEFAULT '{}', -- JSON object: reason -> count
    error        TEXT    NOT NULL DEFAULT '',
    requested_by TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER
);

CREATE INDEX rule_run_rule ON rule_run (rule_id, id);
