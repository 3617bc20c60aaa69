package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stretchr/testify/require"
)

// testGovernanceTables checks the governance report's totals and tables
// (store.DB.GovernanceReport; docs/reports.md) over an estate seeded with a
// known history, every expected number worked out by hand below.
func testGovernanceTables(t *testing.T) {
	t.Parallel()
	ForEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		date := func(month time.Month, d, h, m, s int) time.Time {
			return time.Date(2025, month, d, h, m, s, 0, time.UTC)
		}
		at := func(ts time.Time) { db.Now = func() time.Time { return ts } }
		now := date(4, 10, 12, 0, 0)

		// The findings: resource, recommendation (its severity), cloud.
		const (
			vm1   = "/subscriptions/s1/resourceGroups/rg1/providers/p/vm1" // in a resource group: counted at /subscriptions/s1
			vm2   = "/subscriptions/s1/providers/p/vm2"
			vm3   = "/subscriptions/s2/providers/p/vm3"
			i4    = "/aws/accounts/111122223333/i-4"
			other = "/tenants/t1/thing5" // under no snapshot level: "(other)"
		)
		type finding struct {
			rec   string
			sev   steward.Severity
			res   string
			cloud steward.Cloud
		}
		findings := map[string]finding{
			"fA": {"rec-high", steward.SeverityHigh, vm1, steward.CloudAzure},
			"fB": {"rec-crit", steward.SeverityCritical, vm2, steward.CloudAzure},
			"fC": {"rec-high", steward.SeverityHigh, vm3, steward.CloudAzure},
			"fD": {"rec-low", steward.SeverityLow, i4, steward.CloudAWS},
			"fE": {"rec-high", steward.SeverityHigh, other, steward.CloudOther},
			"fF": {"rec-crit", steward.SeverityCritical, vm1, steward.CloudAzure},
			"fG": {"rec-low", steward.SeverityLow, vm3, steward.CloudAzure},
			"fH": {"rec-crit", steward.SeverityCritical, i4, steward.CloudAWS},
			"fI": {"rec-crit", steward.SeverityCritical, other, steward.CloudOther},
			"fJ": {"rec-high", steward.SeverityHigh, vm2, steward.CloudAzure},
			"fK": {"rec-low", steward.SeverityLow, vm2, steward.CloudAzure},
			"fL": {"rec-crit", steward.SeverityCritical, vm3, steward.CloudAzure},
		}
		for k := 1; k <= 10; k++ {
			findings[fmt.Sprintf("e%d", k)] = finding{"rec-low", steward.SeverityLow, fmt.Sprintf("/subscriptions/s2/providers/p/e%d", k), steward.CloudAzure}
		}
		var obs []steward.Observation
		for _, f := range findings {
			obs = append(obs, WithCloud(WithSeverity(Observation(f.rec, f.res, steward.StatusUnhealthy), f.sev), f.cloud))
		}
		Apply(t, db, date(2, 1, 0, 0, 0), obs...)
		id := func(name string) int64 {
			f := findings[name]
			got, _, err := db.FindAssessments(ctx, store.AssessmentFilter{RecommendationKey: f.rec, ResourceID: f.res})
			require.NoError(t, err)
			require.Len(t, got, 1)
			return got[0].ID
		}

		assign := func(created time.Time, finding, owner string, due time.Time) int64 {
			at(created)
			return Assignment(t, db, id(finding), owner, due).ID
		}
		end := func(ended time.Time, assignment int64, state steward.AssignmentState) {
			at(ended)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.EndAssignment(ctx, assignment, state, "tester@example.com", "test")
				return err
			}))
		}
		update := func(when time.Time, assignment int64, upd store.AssignmentUpdate) {
			at(when)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.UpdateAssignment(ctx, assignment, upd, "tester@example.com", "test")
				return err
			}))
		}

		// The history, in the order of the assignments' IDs. The period is
		// March 2025; now is 10 April, 12:00.
		due := date(4, 30, 0, 0, 0)
		// C1: completed on the period's first instant, 9 days.
		end(date(3, 1, 0, 0, 0), assign(date(2, 20, 0, 0, 0), "fF", "alice@example.com", due), steward.AssignmentCompleted)
		// C2: completed one second before the period: not counted.
		end(date(2, 28, 23, 59, 59), assign(date(2, 25, 0, 0, 0), "fG", "bob@example.com", due), steward.AssignmentCompleted)
		// C5: 0.5 days.
		end(date(3, 4, 0, 0, 0), assign(date(3, 3, 12, 0, 0), "fJ", "alice@example.com", due), steward.AssignmentCompleted)
		// C6: 7.25 days.
		end(date(3, 8, 6, 0, 0), assign(date(3, 1, 0, 0, 0), "fL", "alice@example.com", due), steward.AssignmentCompleted)
		// A1: active, overdue since 1 April.
		assign(date(3, 2, 0, 0, 0), "fA", "alice@example.com", date(4, 1, 0, 0, 0))
		// R1: removed, which counts nowhere: dave has no row.
		end(date(3, 15, 0, 0, 0), assign(date(3, 5, 0, 0, 0), "fK", "dave@example.com", due), steward.AssignmentRemoved)
		// A3: made for carol, handed to bob: bob's now, overdue.
		a3 := assign(date(3, 10, 0, 0, 0), "fC", "carol@example.com", date(4, 5, 0, 0, 0))
		bob := "bob@example.com"
		update(date(3, 12, 0, 0, 0), a3, store.AssignmentUpdate{Owner: &bob})
		// A4: due 1 April (overdue now) until moved to 1 May: on time.
		a4 := assign(date(3, 10, 0, 0, 0), "fD", "bob@example.com", date(4, 1, 0, 0, 0))
		moved := date(5, 1, 0, 0, 0)
		update(date(3, 20, 0, 0, 0), a4, store.AssignmentUpdate{DueDate: &moved})
		// C3: completed on the period's last day, 21.75 days.
		end(date(3, 31, 18, 0, 0), assign(date(3, 10, 0, 0, 0), "fH", "bob@example.com", due), steward.AssignmentCompleted)
		// C4: completed on the first instant after the period: not counted.
		end(date(4, 1, 0, 0, 0), assign(date(3, 25, 0, 0, 0), "fI", "Carol@example.com", due), steward.AssignmentCompleted)
		// E1..E10: erin's, k days each, completed 20 March.
		for k := 1; k <= 10; k++ {
			end(date(3, 20, 0, 0, 0), assign(date(3, 20-k, 0, 0, 0), fmt.Sprintf("e%d", k), "erin@example.com", due), steward.AssignmentCompleted)
		}
		// A2: alice's latest, written in another case: her rows' key.
		assign(date(3, 28, 0, 0, 0), "fB", "Alice@Example.com", date(4, 20, 0, 0, 0))
		// A5: overdue since 9 April.
		assign(date(4, 1, 0, 0, 0), "fE", "Carol@example.com", date(4, 9, 0, 0, 0))
		at(now)

		days := func(v float64) *float64 { return &v }
		row := func(key string, assigned, overdue, completed int, mean, p90 *float64) steward.GovernanceRow {
			r := steward.GovernanceRow{Key: key, Assigned: assigned, OnTime: assigned - overdue, Overdue: overdue, Completed: completed,
				MeanDaysToRemediate: mean, P90DaysToRemediate: p90}
			if assigned > 0 {
				r.OverdueRatio = float64(overdue) / float64(assigned)
			}
			return r
		}
		march := steward.GovernanceFilter{From: date(3, 1, 0, 0, 0), To: date(3, 31, 0, 0, 0)}
		report := func(f steward.GovernanceFilter) *steward.GovernanceReport {
			t.Helper()
			r, err := db.GovernanceReport(ctx, f, now)
			require.NoError(t, err)
			return r
		}

		// Active now: A1 (alice, High, s1, overdue), A2 (Alice, Critical,
		// s1, on time), A3 (bob, High, s2, overdue), A4 (bob, Low, aws, on
		// time), A5 (Carol, High, other, overdue). Completed in March, in
		// days: C1 9 (alice, Critical, s1), C5 0.5 (alice, High, s1), C6
		// 7.25 (alice, Critical, s2), C3 21.75 (bob, Critical, aws), E1..E10
		// 1..10 (erin, Low, s2).
		checkMarch := func(t *testing.T) {
			r := report(march)
			// 14 completed: 0.5 1 2 3 4 5 6 7 7.25 8 9 9 10 21.75, sum 93.5,
			// mean 6.678…; p90 the ceil(12.6) = 13th: 10.
			require.Equal(t, row("", 5, 3, 14, days(6.68), days(10)), r.Totals)
			// alice: 9, 0.5, 7.25: mean 16.75/3 = 5.583…, p90 the 3rd: 9.
			// erin: 1..10: mean 5.5, p90 the ceil(9) = 9th: 9 (not 10, the
			// element at index 0.9·n, nor 9.1, interpolated).
			// Alice and bob tie on overdue and assigned: by key, and
			// "A" < "b".
			require.Equal(t, []steward.GovernanceRow{
				row("Alice@Example.com", 2, 1, 3, days(5.58), days(9)),
				row("bob@example.com", 2, 1, 1, days(21.75), days(21.75)),
				row("Carol@example.com", 1, 1, 0, nil, nil),
				row("erin@example.com", 0, 0, 10, days(5.5), days(9)),
			}, r.Owners)
			require.Equal(t, 4, r.OwnersTotal)
			// s1: 9, 0.5. s2: 7.25 and 1..10: sum 62.25, mean 5.659…,
			// p90 the ceil(9.9) = 10th: 9. (other) and s2 tie: "(" < "/".
			require.Equal(t, []steward.GovernanceRow{
				row("/subscriptions/s1", 2, 1, 2, days(4.75), days(9)),
				row("(other)", 1, 1, 0, nil, nil),
				row("/subscriptions/s2", 1, 1, 11, days(5.66), days(9)),
				row("/aws/accounts/111122223333", 1, 0, 1, days(21.75), days(21.75)),
			}, r.Scopes)
			require.Equal(t, 4, r.ScopesTotal)
			// Critical: 9, 7.25, 21.75: mean 12.666…, p90 21.75. No Medium.
			require.Equal(t, []steward.GovernanceRow{
				row("Critical", 1, 0, 3, days(12.67), days(21.75)),
				row("High", 3, 3, 1, days(0.5), days(0.5)),
				row("Low", 1, 0, 10, days(5.5), days(9)),
			}, r.Severities)
			require.Equal(t, march.From, r.Filter.From)
			require.Equal(t, steward.DefaultReportLimit, r.Filter.Limit)
			require.Equal(t, now, r.GeneratedAt)
		}

		t.Run("Unmapped", func(t *testing.T) {
			// Before a summaries recompute no resource is mapped to its
			// level: the levels come from the resources' IDs.
			var n int
			require.NoError(t, db.Writer().QueryRowContext(ctx, `SELECT COUNT(*) FROM resource_summary_scope`).Scan(&n))
			require.Zero(t, n)
			checkMarch(t)
		})

		t.Run("PeriodBoundaries", func(t *testing.T) {
			// 28 February alone: C2, 3 days 23:59:59 (3.99998… days).
			r := report(steward.GovernanceFilter{From: date(2, 28, 0, 0, 0), To: date(2, 28, 0, 0, 0)})
			require.Equal(t, row("", 5, 3, 1, days(4), days(4)), r.Totals)
			// 1 April alone: C4, 7 days (Carol, Critical, other).
			r = report(steward.GovernanceFilter{From: date(4, 1, 0, 0, 0), To: date(4, 1, 0, 0, 0)})
			require.Equal(t, row("", 5, 3, 1, days(7), days(7)), r.Totals)
			require.Equal(t, row("(other)", 1, 1, 1, days(7), days(7)), byKey(t, r.Scopes, "(other)"))
			require.Equal(t, row("Critical", 1, 0, 1, days(7), days(7)), byKey(t, r.Severities, "Critical"))
			// 31 March alone: C3.
			r = report(steward.GovernanceFilter{From: date(3, 31, 0, 0, 0), To: date(3, 31, 0, 0, 0)})
			require.Equal(t, row("", 5, 3, 1, days(21.75), days(21.75)), r.Totals)
			// January: nothing completed; the active ones count all the same.
			r = report(steward.GovernanceFilter{From: date(1, 1, 0, 0, 0), To: date(1, 31, 0, 0, 0)})
			require.Equal(t, row("", 5, 3, 0, nil, nil), r.Totals)
			require.Equal(t, []steward.GovernanceRow{
				row("Critical", 1, 0, 0, nil, nil),
				row("High", 3, 3, 0, nil, nil),
				row("Low", 1, 0, 0, nil, nil),
			}, r.Severities)
			// Owners with nothing active nor completed in the period drop out:
			// erin.
			require.Equal(t, 3, r.OwnersTotal)
		})

		t.Run("Limit", func(t *testing.T) {
			f := march
			f.Limit = 2
			r := report(f)
			require.Equal(t, []string{"Alice@Example.com", "bob@example.com"}, keys(r.Owners))
			require.Equal(t, 4, r.OwnersTotal)
			require.Equal(t, []string{"/subscriptions/s1", "(other)"}, keys(r.Scopes))
			require.Equal(t, 4, r.ScopesTotal)
			require.Equal(t, 14, r.Totals.Completed)
			require.Len(t, r.Severities, 3)
		})

		t.Run("Filters", func(t *testing.T) {
			f := march
			// A scope at a level: A1, A2, C1, C5.
			f.Scope = "/subscriptions/s1"
			r := report(f)
			require.Equal(t, row("", 2, 1, 2, days(4.75), days(9)), r.Totals)
			require.Equal(t, []steward.GovernanceRow{row("Alice@Example.com", 2, 1, 2, days(4.75), days(9))}, r.Owners)
			require.Equal(t, []steward.GovernanceRow{row("/subscriptions/s1", 2, 1, 2, days(4.75), days(9))}, r.Scopes)
			require.Equal(t, []steward.GovernanceRow{
				row("Critical", 1, 0, 1, days(9), days(9)),
				row("High", 1, 1, 1, days(0.5), days(0.5)),
			}, r.Severities)

			// Below a level, in another letter case: vm1's A1 and C1, both
			// written "alice@example.com", counted at their subscription.
			f.Scope = "/Subscriptions/S1/resourceGroups/RG1"
			r = report(f)
			require.Equal(t, row("", 1, 1, 1, days(9), days(9)), r.Totals)
			require.Equal(t, []steward.GovernanceRow{row("alice@example.com", 1, 1, 1, days(9), days(9))}, r.Owners)
			require.Equal(t, []steward.GovernanceRow{row("/subscriptions/s1", 1, 1, 1, days(9), days(9))}, r.Scopes)

			// A root above the levels (read from the assignments, not the
			// resources): A1, A2, A3; C1 9, C5 0.5, C6 7.25, E1..E10 1..10:
			// 13 completed, sum 71.75, mean 5.519…, p90 the ceil(11.7) =
			// 12th: 9.
			f.Scope = "/subscriptions"
			r = report(f)
			require.Equal(t, row("", 3, 2, 13, days(5.52), days(9)), r.Totals)
			require.Equal(t, []string{"/subscriptions/s1", "/subscriptions/s2"}, keys(r.Scopes))
			f.Scope = "/aws"
			r = report(f)
			require.Equal(t, row("", 1, 0, 1, days(21.75), days(21.75)), r.Totals)

			// A cloud: A4 and C3.
			f.Scope, f.Cloud = "", steward.CloudAWS
			r = report(f)
			require.Equal(t, row("", 1, 0, 1, days(21.75), days(21.75)), r.Totals)
			require.Equal(t, []steward.GovernanceRow{row("bob@example.com", 1, 0, 1, days(21.75), days(21.75))}, r.Owners)
			require.Equal(t, []steward.GovernanceRow{row("/aws/accounts/111122223333", 1, 0, 1, days(21.75), days(21.75))}, r.Scopes)
			require.Equal(t, []steward.GovernanceRow{
				row("Critical", 0, 0, 1, days(21.75), days(21.75)),
				row("Low", 1, 0, 0, nil, nil),
			}, r.Severities)

			// A severity: A1, A3, A5 and C5; alice's counted rows (A1, C5)
			// are both written in lower case. Three ties on overdue and
			// assigned: by key, byte by byte ("C" < "a" < "b").
			f.Cloud, f.Severity = "", steward.SeverityHigh
			r = report(f)
			require.Equal(t, row("", 3, 3, 1, days(0.5), days(0.5)), r.Totals)
			require.Equal(t, []steward.GovernanceRow{
				row("Carol@example.com", 1, 1, 0, nil, nil),
				row("alice@example.com", 1, 1, 1, days(0.5), days(0.5)),
				row("bob@example.com", 1, 1, 0, nil, nil),
			}, r.Owners)
			require.Equal(t, []steward.GovernanceRow{row("High", 3, 3, 1, days(0.5), days(0.5))}, r.Severities)

			// An owner, in any letter case: A1, A2, C1, C5, C6.
			f.Severity, f.Owner = "", "ALICE@example.COM"
			r = report(f)
			require.Equal(t, row("", 2, 1, 3, days(5.58), days(9)), r.Totals)
			require.Equal(t, []steward.GovernanceRow{row("Alice@Example.com", 2, 1, 3, days(5.58), days(9))}, r.Owners)
			require.Equal(t, []steward.GovernanceRow{
				row("/subscriptions/s1", 2, 1, 2, days(4.75), days(9)),
				row("/subscriptions/s2", 0, 0, 1, days(7.25), days(7.25)),
			}, r.Scopes)

			// An owner whose only assignment was removed: empty tables.
			f.Owner = "dave@example.com"
			r = report(f)
			require.Equal(t, row("", 0, 0, 0, nil, nil), r.Totals)
			require.Empty(t, r.Owners)
			require.NotNil(t, r.Owners)
			require.Empty(t, r.Scopes)
			require.Empty(t, r.Severities)
			require.Zero(t, r.OwnersTotal)
			require.Zero(t, r.ScopesTotal)

			// Filters combine: s2 and High is A3 alone.
			f.Owner, f.Scope, f.Severity = "", "/subscriptions/s2", steward.SeverityHigh
			r = report(f)
			require.Equal(t, row("", 1, 1, 0, nil, nil), r.Totals)
			require.Equal(t, []string{"bob@example.com"}, keys(r.Owners))
		})

		t.Run("Mapped", func(t *testing.T) {
			// After a recompute every resource is mapped to its deepest
			// summary level (vm1 to its resource group, the (other)
			// resource to none): the same report.
			require.NoError(t, db.RecomputeRecommendationSummaries(ctx, nil))
			var n int
			require.NoError(t, db.Writer().QueryRowContext(ctx, `SELECT COUNT(*) FROM resource_summary_scope`).Scan(&n))
			require.Equal(t, 5+10, n)
			checkMarch(t)
		})
	})
	t.Run("Backfill", testGovernanceBackfill)
}

// testGovernanceBackfill: assignments that exist when migration 0019 runs
// get their assessment's recommendation and resource, the copies the
// report's tables read (store/governance_tables.go).
func testGovernanceBackfill(t *testing.T) {
	t.Parallel()
	ForEachBackendURL(t, func(t *testing.T, _ Backend, url string) {
		ctx := t.Context()
		db := MustOpenURL(t, url)
		due := t0.Add(30 * 24 * time.Hour)
		Apply(t, db, t0,
			Observation("rec-1", "/subscriptions/s1/providers/p/vm1", steward.StatusUnhealthy),
			Observation("rec-2", "/subscriptions/s1/providers/p/vm1", steward.StatusUnhealthy),
			Observation("rec-1", "/subscriptions/s2/providers/p/vm2", steward.StatusUnhealthy))
		got, _, err := db.FindAssessments(ctx, store.AssessmentFilter{})
		require.NoError(t, err)
		require.Len(t, got, 3)
		completed := Assignment(t, db, got[0].ID, "alice@example.com", due)
		require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
			_, err := tx.EndAssignment(ctx, completed.ID, steward.AssignmentCompleted, "tester@example.com", "test")
			return err
		}))
		Assignment(t, db, got[1].ID, "bob@example.com", due)
		Assignment(t, db, got[2].ID, "bob@example.com", due)

		// What the assessments say, and what createAssignment copied.
		const (
			want = `SELECT g.id, a.recommendation_id, a.resource_id FROM assignment g
				JOIN assessment a ON a.id = g.assessment_id ORDER BY g.id`
			copied = `SELECT id, recommendation_id, resource_id FROM assignment ORDER BY id`
		)
		read := func(db *store.DB, q string) [][3]int64 {
			rows, err := db.Writer().QueryContext(ctx, q)
			require.NoError(t, err)
			defer rows.Close()
			var out [][3]int64
			for rows.Next() {
				var r [3]int64
				require.NoError(t, rows.Scan(&r[0], &r[1], &r[2]))
				out = append(out, r)
			}
			require.NoError(t, rows.Err())
			return out
		}
		expected := read(db, want)
		require.Len(t, expected, 3)
		// Two resources and two recommendations: a copy of the wrong
		// column or of the wrong assessment would differ.
		recs, resources := map[int64]bool{}, map[int64]bool{}
		for _, r := range expected {
			recs[r[1]], resources[r[2]] = true, true
		}
		require.Len(t, recs, 2)
		require.Len(t, resources, 2)
		require.Equal(t, expected, read(db, copied))

		// Back to before 0019 (its tables, index and columns gone), then
		// migrate again.
		for _, q := range []string{
			`DROP TABLE governance_snapshot`,
			`DROP TABLE governance_day`,
			`DROP INDEX assignment_report`,
			`ALTER TABLE assignment DROP COLUMN recommendation_id`,
			`ALTER TABLE assignment DROP COLUMN resource_id`,
			`DELETE FROM schema_migrations WHERE version = 19`,
		} {
			_, err := db.Writer().ExecContext(ctx, q)
			require.NoError(t, err, q)
		}
		require.NoError(t, db.Close())
		db = MustOpenURL(t, url)
		require.Equal(t, expected, read(db, copied))
	})
}

func byKey(t *testing.T, rows []steward.GovernanceRow, key string) steward.GovernanceRow {
	t.Helper()
	for _, r := range rows {
		if r.Key == key {
			return r
		}
	}
	t.Fatalf("no row %q in %v", key, keys(rows))
	return steward.GovernanceRow{}
}

func keys(rows []steward.GovernanceRow) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Key)
	}
	return out
}
