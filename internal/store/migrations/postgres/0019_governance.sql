-- Governance report snapshots: see the SQLite migration of the same number.
CREATE TABLE governance_day (
    day      BIGINT PRIMARY KEY, -- days since 1970-01-01 (UTC)
    final    BIGINT NOT NULL,
    source   TEXT COLLATE "C" NOT NULL,
    taken_at BIGINT NOT NULL,
    history_mark TEXT COLLATE "C" NOT NULL DEFAULT '',
    CHECK (source IN ('daily', 'backfill'))
);

CREATE TABLE governance_snapshot (
    day           BIGINT NOT NULL,
    scope_id      BIGINT NOT NULL, -- summary_scope.id, 0 for none, negative for rollups
    cloud         TEXT COLLATE "C" NOT NULL,
    severity_rank BIGINT NOT NULL,
    unhealthy     BIGINT NOT NULL DEFAULT 0,
    assigned      BIGINT NOT NULL DEFAULT 0,
    unassigned    BIGINT NOT NULL DEFAULT 0,
    on_time       BIGINT NOT NULL DEFAULT 0,
    overdue       BIGINT NOT NULL DEFAULT 0,
    completed     BIGINT NOT NULL DEFAULT 0,
    new_unhealthy BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, scope_id, cloud, severity_rank)
);

-- Copies of an assignment's assessment identity (immutable, so never
-- stale) for the report's tables, and their covering index: see the SQLite
-- migration of the same number.
ALTER TABLE assignment ADD COLUMN recommendation_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE assignment ADD COLUMN resource_id BIGINT NOT NULL DEFAULT 0;
UPDATE assignment g SET recommendation_id = a.recommendation_id, resource_id = a.resource_id
    FROM assessment a WHERE a.id = g.assessment_id;

CREATE INDEX assignment_report ON assignment (state, ended_at, owner_norm, resource_id, recommendation_id, due_date, created_at, id);
