package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// The governance report's tables (docs/reports.md): the totals and the rows
// by owner, scope level and severity, from the assignments as they are now.
// Assigned, OnTime and Overdue count the active assignments; Completed and
// the times to remediate count the assignments completed within the period.
//
// One query reads every assignment that counts (the active ones, then the
// ones completed in the period) with the few columns the tables need, and
// the rows are summed up in Go: percentiles need each duration anyway, and
// one pass over the rows fills all four tables instead of four GROUP BYs
// each joining assignment, assessment and resource again.

// otherScopeKey keys the scope row of resources under no snapshot level.
const otherScopeKey = "(other)"

// An active assignment's outcome in the tables' query: values no time to
// remediate (µs) can take. Not MinInt64 itself, which PostgreSQL reads as
// the negation of a numeric literal, making the column numeric.
const (
	outcomeOverdue int64 = math.MinInt64 + 1 + iota
	outcomeOnTime
)

// GovernanceTables is GovernanceReport without the daily series: the
// benchmark times the live part apart from the rest.
func (db *DB) GovernanceTables(ctx context.Context, f steward.GovernanceFilter, now time.Time) (*steward.GovernanceReport, error) {
	if f.Limit == 0 {
		f.Limit = steward.DefaultReportLimit
	}
	r := &steward.GovernanceReport{Filter: f, GeneratedAt: now.UTC()}
	if err := db.governanceTables(ctx, f, now, r); err != nil {
		return nil, fmt.Errorf("governance report: %w", err)
	}
	return r, nil
}

// govTally is one table row being summed: its counts and the durations
// (µs) of its completed assignments.
type govTally struct {
	row  steward.GovernanceRow
	took []int64
}

func (t *govTally) add(active, overdue bool, took int64) {
	if active {
		t.row.Assigned++
		if overdue {
			t.row.Overdue++
		}
		return
	}
	t.row.Completed++
	t.took = append(t.took, took)
}

// merge adds o's assignments to t's.
func (t *govTally) merge(o *govTally) {
	t.row.Assigned += o.row.Assigned
	t.row.Overdue += o.row.Overdue
	t.row.Completed += o.row.Completed
	t.took = append(t.took, o.took...)
}

// finish computes the row's derived columns.
func (t *govTally) finish() steward.GovernanceRow {
	r := t.row
	r.OnTime = r.Assigned - r.Overdue
	if r.Assigned > 0 {
		r.OverdueRatio = float64(r.Overdue) / float64(r.Assigned)
	}
	r.MeanDaysToRemediate, r.P90DaysToRemediate = remediationDays(t.took)
	return r
}

// remediationDays returns the mean and the nearest-rank 90th percentile
// (the ceil(0.9·n)-th smallest) of durations in µs, in days rounded to two
// decimals; nil for none. It sorts took.
func remediationDays(took []int64) (mean, p90 *float64) {
	if len(took) == 0 {
		return nil, nil
	}
	const microsPerDay = float64(dayLength / time.Microsecond)
	var sum float64
	for _, d := range took {
		sum += float64(d)
	}
	slices.Sort(took)
	rank := (9*len(took) + 9) / 10 // ceil(0.9·n), in integers
	m := roundDays(sum / float64(len(took)) / microsPerDay)
	p := roundDays(float64(took[rank-1]) / microsPerDay)
	return &m, &p
}

func roundDays(d float64) float64 { return math.Round(d*100) / 100 }

// governanceTables fills r.Totals, r.Owners, r.OwnersTotal, r.Scopes,
// r.ScopesTotal and r.Severities for f at now.
//
// Owner rows are keyed by the owner as written on the most recent (highest
// ID) of the owner's assignments that the report counts, so that
// "Alice@example.com" and "alice@example.com" are one row, named the way it
// was last written. Scope rows are keyed by the resource's snapshot level
// (snapshotLevel): resource_summary_scope already maps a resource to its
// deepest summary level, whose own snapshot level is the resource's, so a
// mapped resource costs an integer per row; the few not mapped yet (the
// summaries' recompute after ingest maps them) are looked up afterwards.
func (db *DB) governanceTables(ctx context.Context, f steward.GovernanceFilter, now time.Time, r *steward.GovernanceReport) error {
	limit := f.Limit
	if limit <= 0 {
		limit = steward.DefaultReportLimit
	}
	var where []string
	var args []any
	// What drives the query. Reading the assignments in assessment order
	// keeps the lookups of their assessments and resource mappings (ingest
	// writes a resource's assessments together) on neighbouring pages:
	// over a million assessments that took a fifth of the time of reading
	// them in due-date or end order, whose lookups land anywhere. The
	// resource itself, a wide row, is read only to filter by it. A scope
	// below the roots starts from its resources instead (a norm_id range,
	// then their assessments from assessment_resource): SQLite keeps a
	// CROSS JOIN's order as written; PostgreSQL plans it as any join.
	from := `assignment g JOIN assessment a ON a.id = g.assessment_id`
	withResource, fromResources := f.Cloud != "", false
	if f.Scope != "" {
		cond, cargs, err := scopeRange("res.norm_id", f.Scope)
		if err != nil {
			return err
		}
		if cond != "" {
			where = append(where, cond)
			args = append(args, cargs...)
			withResource = true
			if !rootScope(f.Scope) {
				fromResources = true
				from = `resource res CROSS JOIN assessment a CROSS JOIN assignment g`
				where = append(where, "a.resource_id = res.id", "g.assessment_id = a.id")
			}
		}
	}
	if withResource && !fromResources {
		from += ` JOIN resource res ON res.id = a.resource_id`
	}
	if f.Severity != "" {
		where = append(where, "a.severity_rank = ?")
		args = append(args, f.Severity.Rank())
	}
	if f.Cloud != "" {
		where = append(where, "res.cloud = ?")
		args = append(args, string(f.Cloud))
	}
	if f.Owner != "" {
		where = append(where, "g.owner_norm = ?")
		args = append(args, strings.ToLower(f.Owner))
	}
	cond := ""
	if len(where) > 0 {
		cond = " AND " + strings.Join(where, " AND ")
	}
	// The active assignments, then those completed in the period. On
	// SQLite the unary + keeps the planner from reading the completed ones
	// through assignment_ended, in end order (see above): it reads them
	// all in assessment order and skips those ended outside the period.
	// PostgreSQL hash-joins a large selection anyway, and + would hide
	// the period's selectivity from its estimates (a nested loop over
	// 120,000 rows it took for 400).
	//
	// For one owner assignment_owner finds the few rows to read; on SQLite
	// + keeps a covering index in assessment order (the one proposed for
	// these tables) from winning over it with a read of every row of the
	// state (75 ms instead of 11 over 300,000 assignments).
	state, endedAt := "g.state", "+g.ended_at"
	if db.Postgres() {
		endedAt = "g.ended_at"
	} else if f.Owner != "" {
		state = "+g.state"
	}
	// Five columns a row, since every column read costs (the pure-Go
	// SQLite takes its mutex for each): the assignment, its owner, its
	// outcome (an active one's overdue or on time, as outcomeOverdue or
	// outcomeOnTime, a completed one's time to remediate in µs), its
	// severity rank, and where its resource is (its summary_scope ID, 0
	// for none, or minus its ID when not mapped yet).
	sel := func(outcome string) string {
		return `SELECT g.id, g.owner_norm, ` + outcome + `, a.severity_rank,
			CASE WHEN m.resource_id IS NULL THEN -a.resource_id ELSE COALESCE(m.scope_id, 0) END
		FROM ` + from + `
		LEFT JOIN resource_summary_scope m ON m.resource_id = a.resource_id`
	}
	q := sel(`CASE WHEN g.due_date < ? THEN `+fmt.Sprint(outcomeOverdue)+` ELSE `+fmt.Sprint(outcomeOnTime)+` END`) +
		` WHERE ` + state + ` = ?` + cond + ` UNION ALL ` +
		sel(`g.ended_at - g.created_at`) + ` WHERE ` + state + ` = ? AND ` + endedAt + ` >= ? AND ` + endedAt + ` < ?` + cond
	qargs := make([]any, 0, 2*len(args)+5)
	// Times are stored as µs since the epoch (timeArg).
	qargs = append(qargs, db.timeArg(now), string(steward.AssignmentActive))
	qargs = append(qargs, args...)
	qargs = append(qargs, string(steward.AssignmentCompleted), db.timeArg(dayOf(f.From).start()), db.timeArg(dayOf(f.To).end()))
	qargs = append(qargs, args...)

	levels, err := db.snapshotLevelsByID(ctx)
	if err != nil {
		return err
	}

	type ownerTally struct {
		govTally
		id int64 // the most recent assignment, whose owner names the row
	}
	var total govTally
	owners := make(map[string]*ownerTally)
	scopes := make(map[string]*govTally)
	var severities [5]govTally            // by rank, 1 (Low) to 4 (Critical)
	unmapped := make(map[int64]*govTally) // by resource ID

	rows, err := db.read.QueryContext(ctx, db.bind(q), qargs...)
	if err != nil {
		return fmt.Errorf("read assignments: %w", err)
	}
	defer rows.Close()
	var (
		id, outcome, place int64
		rank               int
		ownerNorm          sql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&id, &ownerNorm, &outcome, &rank, &place); err != nil {
			return fmt.Errorf("read assignments: %w", err)
		}
		active := outcome == outcomeOverdue || outcome == outcomeOnTime
		overdue := outcome == outcomeOverdue
		took := outcome

		total.add(active, overdue, took)

		o := owners[string(ownerNorm)]
		if o == nil {
			o = &ownerTally{}
			owners[string(ownerNorm)] = o
		}
		o.id = max(o.id, id)
		o.add(active, overdue, took)

		var s *govTally
		if place < 0 {
			if s = unmapped[-place]; s == nil {
				s = &govTally{}
				unmapped[-place] = s
			}
		} else {
			level := levels[place] // "" for 0: under no level
			if s = scopes[level]; s == nil {
				s = &govTally{}
				scopes[level] = s
			}
		}
		s.add(active, overdue, took)

		if rank >= 1 && rank < len(severities) {
			severities[rank].add(active, overdue, took)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read assignments: %w", err)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read assignments: %w", err)
	}

	if err := db.readIn(ctx, `SELECT id, norm_id FROM resource WHERE id IN (%s)`, slices.Collect(maps.Keys(unmapped)), func(rows *sql.Rows) error {
		var id int64
		var normID string
		if err := rows.Scan(&id, &normID); err != nil {
			return err
		}
		level := snapshotLevel(normID)
		if scopes[level] == nil {
			scopes[level] = &govTally{}
		}
		scopes[level].merge(unmapped[id])
		return nil
	}); err != nil {
		return fmt.Errorf("read resources: %w", err)
	}
	ids := make([]int64, 0, len(owners))
	for _, o := range owners {
		ids = append(ids, o.id)
	}
	names := make(map[int64]string, len(ids))
	if err := db.readIn(ctx, `SELECT id, owner FROM assignment WHERE id IN (%s)`, ids, func(rows *sql.Rows) error {
		var id int64
		var owner string
		if err := rows.Scan(&id, &owner); err != nil {
			return err
		}
		names[id] = owner
		return nil
	}); err != nil {
		return fmt.Errorf("read owners: %w", err)
	}
	r.Totals = total.finish()
	r.Owners, r.OwnersTotal = nil, len(owners)
	for _, o := range owners {
		row := o.finish()
		row.Key = names[o.id]
		r.Owners = append(r.Owners, row)
	}
	r.Scopes, r.ScopesTotal = nil, len(scopes)
	for level, s := range scopes {
		row := s.finish()
		row.Key = cmp.Or(level, otherScopeKey)
		r.Scopes = append(r.Scopes, row)
	}
	r.Owners = topRows(r.Owners, limit)
	r.Scopes = topRows(r.Scopes, limit)
	r.Severities = []steward.GovernanceRow{}
	for _, sev := range slices.Backward(steward.Severities) {
		t := &severities[sev.Rank()]
		if t.row.Assigned == 0 && t.row.Completed == 0 {
			continue
		}
		row := t.finish()
		row.Key = string(sev)
		r.Severities = append(r.Severities, row)
	}
	return nil
}

// rootScope reports whether scope is a root above the summary levels
// people filter by (/subscriptions, /aws, /aws/accounts, /gcp, …): a scope
// that typically holds most of the estate.
func rootScope(scope steward.Scope) bool {
	s, ok := summaryLevel(scope)
	return ok && isRootLevel(s)
}

// readIn runs query, whose %s takes a list of placeholders, for ids, a few
// hundred at a time, on the read pool.
func (db *DB) readIn(ctx context.Context, query string, ids []int64, scan func(*sql.Rows) error) error {
	for start := 0; start < len(ids); start += inBatch {
		batch := ids[start:min(start+inBatch, len(ids))]
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		rows, err := db.read.QueryContext(ctx, db.bind(fmt.Sprintf(query, placeholders(len(batch)))), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// topRows sorts rows most overdue first, then most assigned, then by key,
// and keeps the first limit. An empty table is an empty slice, not nil, so
// that JSON says [].
func topRows(rows []steward.GovernanceRow, limit int) []steward.GovernanceRow {
	slices.SortFunc(rows, func(a, b steward.GovernanceRow) int {
		if c := cmp.Compare(b.Overdue, a.Overdue); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Assigned, a.Assigned); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	if rows == nil {
		return []steward.GovernanceRow{}
	}
	return slices.Clip(rows[:min(len(rows), limit)])
}

// snapshotLevelsByID maps each summary_scope ID to the snapshot level of
// the resources it holds ("" for none).
func (db *DB) snapshotLevelsByID(ctx context.Context) (map[int64]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, scope FROM summary_scope`)
	if err != nil {
		return nil, fmt.Errorf("read summary scopes: %w", err)
	}
	defer rows.Close()
	levels := make(map[int64]string)
	for rows.Next() {
		var id int64
		var scope string
		if err := rows.Scan(&id, &scope); err != nil {
			return nil, fmt.Errorf("read summary scopes: %w", err)
		}
		levels[id] = snapshotLevel(scope)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read summary scopes: %w", err)
	}
	return levels, nil
}
