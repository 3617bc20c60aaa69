-- Per-scope recommendation counts, so that a listing filtered by a scope
-- level people filter by (store/scopesummary.go: /subscriptions/<s>, its
-- resource groups, /aws/accounts/<a>, /gcp/projects/<p>,
-- /gcp/organizations/<o> and the roots above them) reads one row per
-- recommendation instead of counting the scope's assessments. Maintained by
-- RecomputeRecommendationSummaries with recommendation_summary, so it has
-- the same freshness: as of the last recompute.

-- The scope levels seen so far; resource_summary_scope points at them.
CREATE TABLE summary_scope (
    id    INTEGER PRIMARY KEY,
    scope TEXT    NOT NULL UNIQUE
);

-- The deepest summary level holding each resource (NULL: none), derived
-- from its norm_id when a recompute first sees it; a resource's norm_id
-- never changes. The levels above it follow from the level itself.
CREATE TABLE resource_summary_scope (
    resource_id INTEGER PRIMARY KEY REFERENCES resource (id),
    scope_id    INTEGER REFERENCES summary_scope (id)
);

-- Counts per scope level, cloud ('' for all) and recommendation. The
-- recommendation's severity rank and key are copied so that a scoped page
-- is a keyset range of recommendation_scope_summary_listing.
CREATE TABLE recommendation_scope_summary (
    recommendation_id  INTEGER NOT NULL REFERENCES recommendation (id) ON DELETE CASCADE,
    scope              TEXT    NOT NULL,
    cloud              TEXT    NOT NULL,
    severity_rank      INTEGER NOT NULL,
    recommendation_key TEXT    NOT NULL,
    unhealthy          INTEGER NOT NULL DEFAULT 0,
    healthy            INTEGER NOT NULL DEFAULT 0,
    not_applicable     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (recommendation_id, scope, cloud)
);
CREATE INDEX recommendation_scope_summary_listing
    ON recommendation_scope_summary (scope, cloud, severity_rank DESC, recommendation_key);

-- A database holding assessments gets its scope summaries from its first
-- recompute (which then recomputes everything); until then scoped listings
-- count on the fly. A new database's (empty) summaries are complete.
INSERT INTO meta (key, value) SELECT 'scope_summaries_pending', '1' WHERE EXISTS (SELECT 1 FROM assessment);
