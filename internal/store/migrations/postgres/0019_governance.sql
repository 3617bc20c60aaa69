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

CREATE INDEX assignment_ended ON assignment (state, ended_at);
