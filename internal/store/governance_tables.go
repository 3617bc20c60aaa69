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

	"golang.org/x/sync/errgroup"

	"github.com/stewardhq/steward"
)

// The governance report's tables (docs/reports.md): the totals and the rows
// by owner, scope level and severity, from the assignments as they are now.
// Assigned, OnTime and Overdue count the active assignments; Completed and
// the times to remediate count the assignments completed within the period.
//
// An assignment carries its assessment's recommendation_id and resource_id
// (migration 0019), so its severity (recommendation) and scope level
// (resource_summary_scope) come from two small tables, and every column
// the tables read from it is in assignment_report: no lookup of the
// assessment (a million rows) per counted assignment. The active ones are
// only counted, so SQL sums them, by owner and by level and severity; only
// the completed ones, whose percentiles need every duration, come to Go
// one by one.

// otherScopeKey keys the scope row of resources under no snapshot level.
const otherScopeKey = "(other)"

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

// addActive counts n active assignments, overdue of them overdue.
func (t *govTally) addActive(n, overdue int) {
	t.row.Assigned += n
	t.row.Overdue += overdue
}

// addCompleted counts a completed assignment that took took µs.
func (t *govTally) addCompleted(took int64) {
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
	var sum float64
	for _, d := range took {
		sum += float64(d)
	}
	slices.Sort(took)
	rank := (9*len(took) + 9) / 10 // ceil(0.9·n), in integers
	m := roundDays(sum / float64(len(took)) / float64(microsPerDay))
	p := roundDays(float64(took[rank-1]) / float64(microsPerDay))
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
	// What every query reads from, and its filters. The assignments drive
	// it (assignment_report holds all they need), except for a scope below
	// the roots, which starts from its resources (a norm_id range), then
	// their assessments (assessment_resource) and their assignments
	// (assignment_assessment). SQLite keeps a CROSS JOIN's order as
	// written, so the small tables are looked up per assignment rather
	// than driving the join; PostgreSQL plans it as any join.
	from := `assignment g`
	var where []string
	var args []any
	withResource, fromResources := false, false
	if f.Scope != "" {
		cond, cargs, err := scopeRange("res.norm_id", f.Scope)
		if err != nil {
			return err
		}
		if cond != "" {
			withResource = true
			if rootScope(f.Scope) {
				from += ` CROSS JOIN resource res`
				where = append(where, "res.id = g.resource_id")
			} else {
				fromResources = true
				from = `resource res CROSS JOIN assessment a CROSS JOIN assignment g`
				where = append(where, "a.resource_id = res.id", "g.assessment_id = a.id")
			}
			where = append(where, cond)
			args = append(args, cargs...)
		}
	}
	if f.Cloud != "" {
		if !withResource {
			from += ` CROSS JOIN resource res`
			where = append(where, "res.id = g.resource_id")
		}
		where = append(where, "res.cloud = ?")
		args = append(args, string(f.Cloud))
	}
	if f.Owner != "" {
		where = append(where, "g.owner_norm = ?")
		args = append(args, strings.ToLower(f.Owner))
	}
	// One severity: the recommendations of that rank (a small table).
	where, args = slices.Clip(where), slices.Clip(args)
	if f.Severity != "" {
		where = append(where, "g.recommendation_id IN (SELECT id FROM recommendation WHERE severity_rank = ?)")
		args = append(args, f.Severity.Rank())
	}
	and := func(where []string) string {
		if len(where) == 0 {
			return ""
		}
		return " AND " + strings.Join(where, " AND ")
	}
	// An active assignment has no end (ended_at NULL): saying so lets
	// SQLite read assignment_report's active part in owner order. For one
	// owner assignment_owner finds the few rows to read, and for a scope
	// below the roots assignment_assessment finds its assessments'; on
	// SQLite + keeps assignment_report from winning over them with a read
	// of every row of the state (for each assessment of the scope).
	state := "g.state"
	if (f.Owner != "" || fromResources) && !db.Postgres() {
		state = "+g.state"
	}
	active := ` WHERE ` + state + ` = ? AND g.ended_at IS NULL`
	// Times are stored as µs since the epoch (timeArg).
	activeArgs := append([]any{db.timeArg(now), string(steward.AssignmentActive)}, args...)
	const overdue = `SUM(CASE WHEN g.due_date < ? THEN 1 ELSE 0 END)`

	// Three reads at once, each on a connection of the read pool: the
	// active assignments summed by owner, and by scope level and severity
	// (two passes over them, since SQLite has no GROUPING SETS), and the
	// completed ones one by one. On SQLite they cost CPU, not I/O (the
	// pure-Go SQLite takes ~0.5 µs per index entry and about as much per
	// column read), so with two cores they take not much more than the
	// longest of them.
	type ownerCount struct {
		norm    string
		n, late int
		id      int64 // the most recent
	}
	type placeCount struct {
		place, rank int64
		n, late     int
	}
	// A completed assignment's resource, for its scope row once the
	// resources' places are known.
	type resourceTook struct{ resource, took int64 }
	var (
		ownerCounts []ownerCount
		placeCounts []placeCount
		levels      map[int64]string
		completed   []resourceTook
	)
	type ownerTally struct {
		govTally
		id int64 // the most recent assignment, whose owner names the row
	}
	var total govTally
	owners := make(map[string]*ownerTally)
	// The scope rows by place (summary_scope ID, or minus the resource's
	// ID when not mapped), merged by snapshot level at the end: an integer
	// key per row instead of a level's name.
	places := make(map[int64]*govTally)
	var severities [5]govTally // by rank, 1 (Low) to 4 (Critical)
	var noSeverity govTally    // ranks outside 1 to 4: in the totals only
	ownerOf := func(norm []byte) *ownerTally {
		o := owners[string(norm)]
		if o == nil {
			o = &ownerTally{}
			owners[string(norm)] = o
		}
		return o
	}
	placeOf := func(place int64) *govTally {
		s := places[place]
		if s == nil {
			s = &govTally{}
			places[place] = s
		}
		return s
	}
	severityOf := func(rank int64) *govTally {
		if rank >= 1 && rank < int64(len(severities)) {
			return &severities[rank]
		}
		return &noSeverity
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := db.eachRead(gctx, `SELECT g.owner_norm, COUNT(*), `+overdue+`, MAX(g.id) FROM `+from+
			active+and(where)+` GROUP BY g.owner_norm`, activeArgs, func(rows *sql.Rows) error {
			var c ownerCount
			if err := rows.Scan(&c.norm, &c.n, &c.late, &c.id); err != nil {
				return err
			}
			ownerCounts = append(ownerCounts, c)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read active assignments by owner: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		// Few groups, the small tables joined in SQL: on PostgreSQL
		// (hash joins) one pass cost less than a pass by resource and one
		// by recommendation mapped in Go (120 against 174 ms for the
		// benchmark's 90 days), on SQLite about the same.
		err := db.eachRead(gctx, `SELECT CASE WHEN m.resource_id IS NULL THEN -g.resource_id ELSE COALESCE(m.scope_id, 0) END,
			r.severity_rank, COUNT(*), `+overdue+`
			FROM `+from+` CROSS JOIN recommendation r LEFT JOIN resource_summary_scope m ON m.resource_id = g.resource_id`+
			active+` AND r.id = g.recommendation_id`+and(where)+` GROUP BY 1, 2`, activeArgs, func(rows *sql.Rows) error {
			var c placeCount
			if err := rows.Scan(&c.place, &c.rank, &c.n, &c.late); err != nil {
				return err
			}
			placeCounts = append(placeCounts, c)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read active assignments by scope: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		var err error
		if levels, err = db.snapshotLevelsByID(gctx); err != nil {
			return err
		}
		// Each row's recommendation is mapped to its severity here, and
		// its resource to its place afterwards (for the resources the
		// period holds only), rather than joined: with SQLite a join
		// costs ~0.8 µs a row (all four columns 0.5 s for 200,000 rows
		// instead of 0.3 s for five unjoined), a map lookup a few ns.
		ranks, err := db.severityRanks(gctx)
		if err != nil {
			return err
		}
		// The assignments completed in the period, one by one: the
		// percentiles need every duration.
		cargs := append([]any{string(steward.AssignmentCompleted), db.timeArg(dayOf(f.From).start()), db.timeArg(dayOf(f.To).end())}, args...)
		err = db.eachRead(gctx, `SELECT g.id, g.owner_norm, g.resource_id, g.recommendation_id, g.ended_at - g.created_at
			FROM `+from+` WHERE `+state+` = ? AND g.ended_at >= ? AND g.ended_at < ?`+and(where), cargs, func(rows *sql.Rows) error {
			var id, resource, rec, took int64
			var norm sql.RawBytes
			if err := rows.Scan(&id, &norm, &resource, &rec, &took); err != nil {
				return err
			}
			total.addCompleted(took)
			o := ownerOf(norm)
			o.addCompleted(took)
			o.id = max(o.id, id)
			completed = append(completed, resourceTook{resource, took})
			severityOf(ranks[rec]).addCompleted(took)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read completed assignments: %w", err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	for _, c := range ownerCounts {
		o := ownerOf([]byte(c.norm))
		o.addActive(c.n, c.late)
		o.id = max(o.id, c.id)
	}
	for _, c := range placeCounts {
		total.addActive(c.n, c.late)
		placeOf(c.place).addActive(c.n, c.late)
		severityOf(c.rank).addActive(c.n, c.late)
	}
	if len(completed) > 0 {
		resources := make(map[int64]bool)
		for _, c := range completed {
			resources[c.resource] = true
		}
		mapped := make(map[int64]int64, len(resources))
		err := readIn(ctx, db, `SELECT resource_id, COALESCE(scope_id, 0) FROM resource_summary_scope WHERE resource_id IN (%s)`,
			slices.Collect(maps.Keys(resources)), func(rows *sql.Rows) error {
				var resource, scope int64
				if err := rows.Scan(&resource, &scope); err != nil {
					return err
				}
				mapped[resource] = scope
				return nil
			})
		if err != nil {
			return fmt.Errorf("read resource levels: %w", err)
		}
		for _, c := range completed {
			place, ok := mapped[c.resource]
			if !ok {
				place = -c.resource // not mapped yet: looked up below
			}
			placeOf(place).addCompleted(c.took)
		}
	}

	scopes := make(map[string]*govTally)
	addScope := func(level string, t *govTally) {
		if scopes[level] == nil {
			scopes[level] = &govTally{}
		}
		scopes[level].merge(t)
	}
	var unmapped []int64 // resource IDs
	for place, t := range places {
		if place < 0 {
			unmapped = append(unmapped, -place)
			continue
		}
		addScope(levels[place], t) // "" for 0: under no level
	}
	if err := readIn(ctx, db, `SELECT id, norm_id FROM resource WHERE id IN (%s)`, unmapped, func(rows *sql.Rows) error {
		var id int64
		var normID string
		if err := rows.Scan(&id, &normID); err != nil {
			return err
		}
		addScope(snapshotLevel(normID), places[-id])
		return nil
	}); err != nil {
		return fmt.Errorf("read resources: %w", err)
	}
	ids := make([]int64, 0, len(owners))
	for _, o := range owners {
		ids = append(ids, o.id)
	}
	names := make(map[int64]string, len(ids))
	if err := readIn(ctx, db, `SELECT id, owner FROM assignment WHERE id IN (%s)`, ids, func(rows *sql.Rows) error {
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

// eachRead runs query (with ? placeholders) on the read pool and calls
// scan for each row.
func (db *DB) eachRead(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := db.read.QueryContext(ctx, db.bind(query), args...)
	if err != nil {
		return err
	}
	return scanRows(rows, scan)
}

// readIn runs query, whose %s takes a list of placeholders, for keys, a
// few hundred at a time, on the read pool (queryIn is the same in a
// transaction).
func readIn[K any](ctx context.Context, db *DB, query string, keys []K, scan func(*sql.Rows) error) error {
	for start := 0; start < len(keys); start += inBatch {
		batch := keys[start:min(start+inBatch, len(keys))]
		args := make([]any, len(batch))
		for i, k := range batch {
			args[i] = k
		}
		if err := db.eachRead(ctx, fmt.Sprintf(query, placeholders(len(batch))), args, scan); err != nil {
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

// severityRanks reads each recommendation's severity rank.
func (db *DB) severityRanks(ctx context.Context) (map[int64]int64, error) {
	ranks := make(map[int64]int64)
	err := db.eachRead(ctx, `SELECT id, severity_rank FROM recommendation`, nil, func(rows *sql.Rows) error {
		var id, rank int64
		if err := rows.Scan(&id, &rank); err != nil {
			return err
		}
		ranks[id] = rank
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read severities: %w", err)
	}
	return ranks, nil
}

// snapshotLevelsByID maps each summary_scope ID to the snapshot level of
// the resources it holds ("" for none).
func (db *DB) snapshotLevelsByID(ctx context.Context) (map[int64]string, error) {
	levels := make(map[int64]string)
	err := db.eachRead(ctx, `SELECT id, scope FROM summary_scope`, nil, func(rows *sql.Rows) error {
		var id int64
		var scope string
		if err := rows.Scan(&id, &scope); err != nil {
			return err
		}
		levels[id] = snapshotLevel(scope)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read summary scopes: %w", err)
	}
	return levels, nil
}
