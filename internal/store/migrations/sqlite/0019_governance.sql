-- Governance report snapshots (docs/reports.md): the daily counts trends
-- need, per UTC day, snapshot level, cloud and severity. A snapshot level
-- is the deepest summary level (summary_scope, migration 0017) holding a
-- resource other than a resource group: a subscription, an AWS account, a
-- GCP project or organization, or a root above them; scope_id 0 holds the
-- resources under none. Each day also has rollups, so that a report for
-- everything or a root level reads a few rows a day: scope_id -1 holds the
-- day's totals per cloud and severity, and -1 - id those of everything
-- under the root level id (/subscriptions, /aws, /aws/accounts, /gcp,
-- /gcp/projects, /gcp/organizations). Only rows with a non-zero count are
-- stored, so a day costs a row per level, cloud and severity with anything
-- to count, and a few more for the rollups.

-- One row per day with snapshots: final once the day has ended (written
-- once, by the first process to take it), provisional for today (replaced
-- as the day goes on). source: daily (taken the day after) or backfill
-- (computed from history when snapshots began, or after a gap).
CREATE TABLE governance_day (
    day      INTEGER PRIMARY KEY, -- days since 1970-01-01 (UTC)
    final    INTEGER NOT NULL,
    source   TEXT    NOT NULL,
    taken_at INTEGER NOT NULL,
    -- For today's provisional counts: the history they were computed from
    -- (store.historyMark); a change of it refreshes them within a minute.
    history_mark TEXT NOT NULL DEFAULT '',
    CHECK (source IN ('daily', 'backfill'))
);

CREATE TABLE governance_snapshot (
    day           INTEGER NOT NULL,
    scope_id      INTEGER NOT NULL, -- summary_scope.id, 0 for none, negative for rollups
    cloud         TEXT    NOT NULL,
    severity_rank INTEGER NOT NULL,
    unhealthy     INTEGER NOT NULL DEFAULT 0,
    assigned      INTEGER NOT NULL DEFAULT 0,
    unassigned    INTEGER NOT NULL DEFAULT 0,
    on_time       INTEGER NOT NULL DEFAULT 0,
    overdue       INTEGER NOT NULL DEFAULT 0,
    completed     INTEGER NOT NULL DEFAULT 0,
    new_unhealthy INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, scope_id, cloud, severity_rank)
) WITHOUT ROWID;

-- The report's tables (store/governance_tables.go) count assignments by
-- owner, scope level and severity. An assignment's level and severity come
-- from its assessment's resource and recommendation: looking up the
-- assessment (a million rows in a large estate) for every counted
-- assignment cost 0.4 s for 90 days and 1-2 s for two years. So an
-- assignment carries copies of its assessment's identity, which never
-- changes (recommendation_id and resource_id are the assessment's unique
-- key), so the copies cannot go stale: the report joins the small tables
-- recommendation and resource_summary_scope directly. The DEFAULT only
-- lets the columns be added: existing rows are backfilled below, and
-- store.createAssignment writes both for every new one.
ALTER TABLE assignment ADD COLUMN recommendation_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE assignment ADD COLUMN resource_id INTEGER NOT NULL DEFAULT 0;
UPDATE assignment SET
    recommendation_id = (SELECT a.recommendation_id FROM assessment a WHERE a.id = assignment.assessment_id),
    resource_id = (SELECT a.resource_id FROM assessment a WHERE a.id = assignment.assessment_id);

-- Everything the report's tables read from an assignment, so they read this
-- index alone: the active assignments (ended_at NULL) in owner order, so
-- they are summed by owner without a sort, and the ones completed in a
-- period as a range of ended_at.
CREATE INDEX assignment_report ON assignment (state, ended_at, owner_norm, resource_id, recommendation_id, due_date, created_at, id);
