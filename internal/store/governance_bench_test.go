package store_test

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stretchr/testify/require"
)

// BenchmarkGovernanceReport answers the governance report (issue 17: under
// 200 ms) over 1,000,000 assessments (100 recommendations × 10,000
// resources in 300 Azure subscriptions, each resource in one of 7 resource
// groups, and 100 AWS accounts), ~100,000 active assignments and 200,000
// completed within the last two years, spread over 300 owners, and two
// years of daily snapshots (730 days × 400 levels × 4 severities, 1.17M
// rows). The assessments go through ingest as the other 1M benchmarks do;
// assignments and snapshots, which ingest does not make, are inserted
// directly. It runs on the store TestStore names (STEWARD_TEST_STORE).
//
//	go test -run '^$' -bench GovernanceReport -benchtime 10x ./internal/store/
//
// "tables" times the live part alone (GovernanceTables), "report" the whole
// GovernanceReport: tables and daily series (from the snapshots, or for an
// owner from history). Skipped with -short.
func BenchmarkGovernanceReport(b *testing.B) {
	if testing.Short() {
		b.Skip("builds 1,000,000 assessments and 2 years of snapshots")
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	today := now.Truncate(24 * time.Hour)
	db := storetest.MustOpen(b)
	db.Now = func() time.Time { return now }
	start := time.Now()
	d := newGovernanceBenchData()
	d.apply(b, db, 10_000, today.AddDate(0, 0, -800), func(int, int) int { return 0 })
	require.NoError(b, db.RecomputeRecommendationSummaries(b.Context(), nil))
	b.Logf("ingest 1M assessments and recompute their summaries: %v", time.Since(start))
	start = time.Now()
	active, completed := seedGovernanceAssignments(b, db, now)
	b.Logf("insert %d active and %d completed assignments: %v", active, completed, time.Since(start))
	start = time.Now()
	snapshots := seedGovernanceSnapshots(b, db, today, 730)
	b.Logf("insert %d snapshot rows over 730 days: %v", snapshots, time.Since(start))
	// PostgreSQL's autovacuum would have vacuumed and analyzed the bulk
	// inserts by now (vacuum marks their pages all-visible, which lets an
	// index-only scan skip the table); SQLite databases carry no
	// statistics (nothing runs ANALYZE).
	if db.Postgres() {
		_, err := db.Writer().ExecContext(b.Context(), `VACUUM ANALYZE`)
		require.NoError(b, err)
	}

	sub := steward.Scope("/subscriptions/00000003-0000-0000-0000-000000000000")
	cases := []struct {
		name string
		f    steward.GovernanceFilter
	}{
		{"everything_90d", steward.GovernanceFilter{From: today.AddDate(0, 0, -89), To: today}},
		{"everything_2y", steward.GovernanceFilter{From: today.AddDate(0, 0, -729), To: today}},
		{"subscription_90d", steward.GovernanceFilter{Scope: sub, From: today.AddDate(0, 0, -89), To: today}},
		{"owner_90d", steward.GovernanceFilter{Owner: "Owner-009@example.com", From: today.AddDate(0, 0, -89), To: today}},
	}
	parts := []struct {
		name string
		run  func(steward.GovernanceFilter) (*steward.GovernanceReport, error)
	}{
		{"tables", func(f steward.GovernanceFilter) (*steward.GovernanceReport, error) {
			return db.GovernanceTables(b.Context(), f, now)
		}},
		{"report", func(f steward.GovernanceFilter) (*steward.GovernanceReport, error) {
			return db.GovernanceReport(b.Context(), f, now)
		}},
	}
	for _, part := range parts {
		for _, tc := range cases {
			b.Run(part.name+"/"+tc.name, func(b *testing.B) {
				var lat []time.Duration
				for b.Loop() {
					start := time.Now()
					r, err := part.run(tc.f)
					lat = append(lat, time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					if r.Totals.Assigned == 0 || r.Totals.Completed == 0 {
						b.Fatalf("empty report: %+v", r.Totals)
					}
					if part.name == "report" && !slices.ContainsFunc(r.Daily, func(d steward.GovernanceDay) bool { return d.Assigned > 0 }) {
						b.Fatalf("empty daily series (%s): %d days", r.DailySource, len(r.Daily))
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
			})
		}
	}
	// What the snapshot job costs when today's provisional counts are
	// refreshed (at most once a minute while the history changes): one
	// pass over the whole history, and today's rows rewritten.
	b.Run("snapshot_refresh", func(b *testing.B) {
		var lat []time.Duration
		at := now
		for b.Loop() {
			at = at.Add(time.Second)
			start := time.Now()
			res, err := db.TakeGovernanceSnapshots(b.Context(), at, 0)
			lat = append(lat, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			if !res.Provisional || res.Rows == 0 {
				b.Fatalf("today's counts not refreshed: %+v", res)
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	})
}

// newGovernanceBenchData is newBenchData's 100 recommendations over 10,000
// resources spread round-robin over 400 snapshot levels: 300 Azure
// subscriptions (7 resource groups each) and 100 AWS accounts.
func newGovernanceBenchData() *benchData {
	d := newBenchData(100, 0)
	for i := range 10_000 {
		level := i % 400
		r := steward.Resource{Name: fmt.Sprintf("vm-%06d", i), Region: "westeurope", Tags: map[string]string{"env": "prod"}}
		if level < 300 {
			r.ID = fmt.Sprintf("/subscriptions/%08d-0000-0000-0000-000000000000/resourceGroups/rg-%02d/providers/Microsoft.Compute/virtualMachines/vm-%06d",
				level, i%7, i)
			r.Type, r.Cloud = "microsoft.compute/virtualmachines", steward.CloudAzure
		} else {
			r.ID = fmt.Sprintf("/aws/accounts/%012d/regions/eu-west-1/ec2/instance/i-%06d", level, i)
			r.Type, r.Cloud = "aws.ec2.instance", steward.CloudAWS
		}
		d.resources = append(d.resources, r)
	}
	return d
}

// benchInsert inserts n rows into table, many a statement, in one
// transaction; row appends the values of row i to args.
func benchInsert(b *testing.B, db *store.DB, table string, columns []string, n int, row func(i int, args []any) []any) {
	b.Helper()
	const batch = 500
	tx, err := db.Writer().BeginTx(b.Context(), nil)
	require.NoError(b, err)
	defer func() { _ = tx.Rollback() }()
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(columns)), ", ") + ")"
	args := make([]any, 0, batch*len(columns))
	for start := 0; start < n; start += batch {
		rows := min(batch, n-start)
		q := "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
		args = args[:0]
		for i := start; i < start+rows; i++ {
			args = row(i, args)
		}
		_, err := tx.ExecContext(b.Context(), db.Bind(q), args...)
		require.NoError(b, err)
	}
	require.NoError(b, tx.Commit())
}

// seedGovernanceAssignments inserts an active assignment on every third
// unhealthy assessment (~100,000) and 200,000 completed ones that ended
// within the last 730 days, 1 to 60 days after they were made, over 300
// owners (written in two letter cases).
func seedGovernanceAssignments(b *testing.B, db *store.DB, now time.Time) (active, completed int) {
	b.Helper()
	// An assessment, with the identity an assignment copies (store
	// createAssignment).
	type assessment struct{ id, rec, res int64 }
	var unhealthy, all []assessment
	rows, err := db.Writer().QueryContext(b.Context(), `SELECT id, recommendation_id, resource_id, status FROM assessment ORDER BY id`)
	require.NoError(b, err)
	for rows.Next() {
		var a assessment
		var status string
		require.NoError(b, rows.Scan(&a.id, &a.rec, &a.res, &status))
		all = append(all, a)
		if status == string(steward.StatusUnhealthy) {
			unhealthy = append(unhealthy, a)
		}
	}
	require.NoError(b, rows.Err())
	require.NoError(b, rows.Close())

	owner := func(i int) (string, string) {
		o := fmt.Sprintf("owner-%03d@example.com", i%300)
		if i/300%2 == 0 {
			return strings.ToUpper(o[:1]) + o[1:], o
		}
		return o, o
	}
	const day = int64(24 * time.Hour / time.Microsecond)
	nowUS := now.UnixMicro()
	cols := []string{"assessment_id", "recommendation_id", "resource_id", "type", "state", "owner", "owner_norm", "due_date", "created_at", "created_by", "updated_at", "ended_at", "end_reason"}
	active = (len(unhealthy) + 2) / 3
	completed = 200_000
	benchInsert(b, db, "assignment", cols, active+completed, func(i int, args []any) []any {
		if i < active {
			i *= 3
			o, norm := owner(i)
			created := nowUS - int64(i%120)*day - int64(i%86400)*1_000_000
			due := created + int64(30+i%30)*day // about a third overdue
			a := unhealthy[i]
			return append(args, a.id, a.rec, a.res, "manual", "active", o, norm, due, created, "bench", created, nil, "")
		}
		i -= active
		o, norm := owner(i * 7)
		ended := nowUS - int64(i%730)*day - int64(i%86400)*1_000_000
		created := ended - int64(1+i%60)*day - int64(i%3600)*1_000_000
		a := all[(i*7919)%len(all)]
		return append(args, a.id, a.rec, a.res, "manual", "completed", o, norm, created+30*day, created, "bench", ended, ended, "fixed")
	})
	return active, completed
}

// seedGovernanceSnapshots inserts days days of final snapshots ending
// yesterday: a row per snapshot level (the 400 levels of the resources),
// its cloud and each severity, every count non-zero, and the day's rollups.
// It returns how many level rows it wrote.
func seedGovernanceSnapshots(b *testing.B, db *store.DB, today time.Time, days int) int {
	b.Helper()
	type level struct {
		scope string
		cloud steward.Cloud
	}
	var levels []level
	for i := range 400 {
		if i < 300 {
			levels = append(levels, level{fmt.Sprintf("/subscriptions/%08d-0000-0000-0000-000000000000", i), steward.CloudAzure})
		} else {
			levels = append(levels, level{fmt.Sprintf("/aws/accounts/%012d", i), steward.CloudAWS})
		}
	}
	// The levels' summary_scope IDs, made as the snapshot job would make
	// them (a recompute made only the resources' deepest levels).
	ids := make(map[string]int64)
	for _, l := range levels {
		var id int64
		err := db.Writer().QueryRowContext(b.Context(), db.Bind(`SELECT id FROM summary_scope WHERE scope = ?`), l.scope).Scan(&id)
		if err == sql.ErrNoRows {
			err = db.Writer().QueryRowContext(b.Context(), db.Bind(`INSERT INTO summary_scope (scope) VALUES (?) RETURNING id`), l.scope).Scan(&id)
		}
		require.NoError(b, err)
		ids[l.scope] = id
	}
	first := today.Unix()/86400 - int64(days)
	benchInsert(b, db, "governance_day", []string{"day", "final", "source", "taken_at"}, days, func(i int, args []any) []any {
		d := first + int64(i)
		return append(args, d, 1, "daily", (d+1)*86400*1_000_000)
	})
	perDay := len(levels) * 4
	benchInsert(b, db, "governance_snapshot", []string{"day", "scope_id", "cloud", "severity_rank",
		"unhealthy", "assigned", "unassigned", "on_time", "overdue", "completed", "new_unhealthy"}, days*perDay,
		func(i int, args []any) []any {
			d, li, rank := first+int64(i/perDay), i%perDay/4, 1+i%4
			l := levels[li]
			n := int(d+int64(li)+int64(rank))%50 + 20
			return append(args, d, ids[l.scope], string(l.cloud), rank, n, n/2, n-n/2, n/2-n/6, n/6, 1+n%3, 1+n%4)
		})
	// Each day's rollups (store/governance.go): its totals per cloud and
	// severity under scope_id -1, and each root level's under -1 - its
	// summary_scope ID, summed from the level rows as the snapshot job
	// sums them.
	rollup := func(scopeID int64, under string) {
		cond, args := "s.scope_id >= 0", []any{scopeID}
		if under != "" {
			cond = "s.scope_id IN (SELECT id FROM summary_scope WHERE scope >= ? AND scope < ?)"
			args = append(args, under+"/", under+"0")
		}
		sum := func(col string) string { return "SUM(s." + col + ")" }
		_, err := db.Writer().ExecContext(b.Context(), db.Bind(`INSERT INTO governance_snapshot (day, scope_id, cloud, severity_rank,
			unhealthy, assigned, unassigned, on_time, overdue, completed, new_unhealthy)
			SELECT s.day, ?, s.cloud, s.severity_rank, `+sum("unhealthy")+`, `+sum("assigned")+`, `+sum("unassigned")+`, `+
			sum("on_time")+`, `+sum("overdue")+`, `+sum("completed")+`, `+sum("new_unhealthy")+`
			FROM governance_snapshot s WHERE `+cond+` GROUP BY s.day, s.cloud, s.severity_rank`), args...)
		require.NoError(b, err)
	}
	rollup(-1, "")
	for _, root := range []string{"/subscriptions", "/aws", "/aws/accounts"} {
		var id int64
		err := db.Writer().QueryRowContext(b.Context(), db.Bind(`INSERT INTO summary_scope (scope) VALUES (?) RETURNING id`), root).Scan(&id)
		require.NoError(b, err)
		rollup(-1-id, root)
	}
	return days * perDay
}
