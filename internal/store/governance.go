package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// The governance report (docs/reports.md). Three parts, one file each:
//
//   - governance_history.go: the daily counts computed from history
//     (assessment_status_change, assignment, assignment_event), the one
//     definition of every daily number; the snapshot job
//     (TakeGovernanceSnapshots) stores what it computes, and a selection
//     the snapshots do not cover (a scope below the snapshot levels, an
//     owner) is computed from it on request;
//   - governance_tables.go: the owner, scope and severity tables and the
//     totals, from the assignments as they are now;
//   - this file: the shared vocabulary and the report's assembly.

// day is a UTC calendar day as days since 1970-01-01.
type day int64

const dayLength = 24 * time.Hour

// dayOf is the UTC day holding t.
func dayOf(t time.Time) day { return microsDay(t.UnixMicro()) }

// start is the day's first instant; end is the next day's start (the day
// is [start, end)).
func (d day) start() time.Time { return time.Unix(int64(d)*int64(dayLength/time.Second), 0).UTC() }
func (d day) end() time.Time   { return (d + 1).start() }

// String is the report's date layout (2006-01-02).
func (d day) String() string { return d.start().Format(steward.ReportDate) }

// snapshotLevel is the level a resource's counts are kept at in the
// snapshots: the deepest summary level holding it (scopesummary.go) other
// than a resource group — a subscription, an AWS account, a GCP project or
// organization, or a root above those — or "" for none. A report scoped to
// such a level (or to everything) sums the snapshot rows whose level is the
// scope or under it.
func snapshotLevel(normID string) string {
	levels := summaryLevels(normID)
	for i := len(levels) - 1; i >= 0; i-- {
		if !isResourceGroupLevel(levels[i]) {
			return levels[i]
		}
	}
	return ""
}

// isResourceGroupLevel reports whether a summary level is a resource group
// (/subscriptions/<s>/resourcegroups/<g>), which snapshots do not keep.
func isResourceGroupLevel(level string) bool {
	return strings.Count(level, "/") == 4
}

// Rollups: besides a row per snapshot level, each day has its totals per
// cloud and severity under scope_id snapshotAll, and the totals of each
// root level (/subscriptions, /aws, /aws/accounts, /gcp, /gcp/projects,
// /gcp/organizations) under rollupScopeID of its summary_scope ID, so a
// report for everything or a root reads a few rows a day instead of every
// level's.
const snapshotAll int64 = -1

func rollupScopeID(id int64) int64 { return -1 - id }

// rollupLevels are the root levels holding a snapshot level (the level
// itself included when it is a root), outermost first.
func rollupLevels(level string) []string {
	var out []string
	for _, l := range summaryLevels(level) {
		if isRootLevel(l) {
			out = append(out, l)
		}
	}
	return out
}

// isRootLevel reports whether a summary level is a root: a pattern of
// summaryPatterns without a "*" segment.
func isRootLevel(level string) bool {
	segs := strings.Split(strings.TrimPrefix(level, "/"), "/")
	for _, p := range summaryPatterns {
		if slices.Equal(p, segs) {
			return true
		}
	}
	return false
}

// snapshotSeriesScope is the scope_id a snapshot series of level reads
// ("" for everything); noSnapshotScope when the level has no rows yet.
func (db *DB) snapshotSeriesScope(ctx context.Context, level string) (int64, error) {
	if level == "" {
		return snapshotAll, nil
	}
	var id int64
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT id FROM summary_scope WHERE scope = ?`), level).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return noSnapshotScope, nil
	case err != nil:
		return 0, fmt.Errorf("find summary scope %s: %w", level, err)
	case isRootLevel(level):
		return rollupScopeID(id), nil
	}
	return id, nil
}

// noSnapshotScope matches no snapshot row.
const noSnapshotScope int64 = math.MinInt64

// snapshotScope reports whether a report scoped to scope can be read from
// the snapshots: everything, or a snapshot level. It returns the
// normalized scope ("" for everything).
func snapshotScope(scope steward.Scope) (string, bool) {
	if scope == "" {
		return "", true
	}
	s, ok := summaryLevel(scope)
	if s == "/" {
		return "", true
	}
	return s, ok && !isResourceGroupLevel(s)
}

// govKey is what one snapshot row counts: the findings and assignments of
// one snapshot level ("" for none), cloud and severity rank.
type govKey struct {
	Level    string
	Cloud    string
	Severity int
}

// govCounts are a day's counts of one key (steward.GovernanceDay defines
// each).
type govCounts struct {
	Unhealthy, Assigned, Unassigned, OnTime, Overdue, Completed, New int
}

func (c govCounts) zero() bool { return c == govCounts{} }

func (c *govCounts) add(o govCounts) {
	c.Unhealthy += o.Unhealthy
	c.Assigned += o.Assigned
	c.Unassigned += o.Unassigned
	c.OnTime += o.OnTime
	c.Overdue += o.Overdue
	c.Completed += o.Completed
	c.New += o.New
}

// govSelection narrows a computation from history; the zero value selects
// everything.
type govSelection struct {
	// Scope: resources inside it (any valid scope, not only levels).
	Scope    steward.Scope
	Cloud    steward.Cloud
	Severity steward.Severity
	// Owner (any letter case): only assignments of this owner count, and
	// the finding columns (unhealthy, unassigned, new) stay zero.
	Owner string
}

// GovernanceReport answers the governance report for f at now: the tables
// from the assignments as they are, the daily series from the snapshots
// where they cover the selection and from history otherwise. The caller
// has validated f (steward.GovernanceFilter's rules; the API does it).
func (db *DB) GovernanceReport(ctx context.Context, f steward.GovernanceFilter, now time.Time) (*steward.GovernanceReport, error) {
	if f.Limit == 0 {
		f.Limit = steward.DefaultReportLimit
	}
	if f.Scope != "" {
		if err := f.Scope.Validate(); err != nil {
			return nil, fmt.Errorf("governance report: %w", err)
		}
	}
	r := &steward.GovernanceReport{Filter: f, GeneratedAt: now.UTC()}
	if err := db.governanceTables(ctx, f, now, r); err != nil {
		return nil, fmt.Errorf("governance report: %w", err)
	}
	daily, source, err := db.GovernanceDaily(ctx, f, now)
	if err != nil {
		return nil, fmt.Errorf("governance report: daily series: %w", err)
	}
	r.Daily, r.DailySource = daily, source
	return r, nil
}

// GovernanceSnapshots says what one TakeGovernanceSnapshots call wrote.
type GovernanceSnapshots struct {
	// Finalized is how many ended days this call took (0 when they were
	// taken already, by an earlier call or another process); Backfilled
	// says they were computed from history when snapshots began or after a
	// gap rather than the day after.
	Finalized  int
	Backfilled bool
	// Provisional says today's counts were refreshed.
	Provisional bool
	// Rows is how many level rows were written (each day's rollups come
	// on top).
	Rows int
}
