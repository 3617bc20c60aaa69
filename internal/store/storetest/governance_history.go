package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stretchr/testify/require"
)

// The governance report's daily counts (docs/reports.md) over a known
// history of five findings and four assignments across six days, D0 to D5,
// with the snapshot job run at D6 08:00 (today). Every expectation below is
// worked out by hand from the history below (govHistory), sampling each day at its
// last microsecond.

// govD0 is day D0's midnight (UTC); govDay(k, h) is hour h of day Dk.
var govD0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func govDay(k int, hour int) time.Time {
	return govD0.AddDate(0, 0, k).Add(time.Duration(hour) * time.Hour)
}

// The findings (recommendation, resource):
//
//	F1 r1 (High) /subscriptions/s1/resourcegroups/rg1/…/vma  azure  level /subscriptions/s1
//	F2 r2 (Low)  /subscriptions/s1/providers/x/vmb            azure  level /subscriptions/s1
//	F3 r1 (High) /subscriptions/s2/resourcegroups/rg2/vmc     azure  level /subscriptions/s2
//	F4 r1 (High) /aws/accounts/111/ec2/x                      aws    level /aws/accounts/111
//	F5 r2 (Low)  /other/thing                                 other  no level
const (
	govResA = "/subscriptions/s1/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vma"
	govResB = "/subscriptions/s1/providers/x/vmb"
	govResC = "/subscriptions/s2/resourcegroups/rg2/vmc"
	govResX = "/aws/accounts/111/ec2/x"
	govResO = "/other/thing"
)

func govObs(f string, status steward.AssessmentStatus) steward.Observation {
	switch f {
	case "F1":
		return Observation("r1", govResA, status)
	case "F2":
		return WithSeverity(Observation("r2", govResB, status), steward.SeverityLow)
	case "F3":
		return Observation("r1", govResC, status)
	case "F4":
		return WithCloud(Observation("r1", govResX, status), steward.CloudAWS)
	case "F5":
		return WithCloud(WithSeverity(Observation("r2", govResO, status), steward.SeverityLow), steward.CloudOther)
	}
	panic("unknown finding " + f)
}

// govHistory seeds the history of one day (0 to 5) at a time; the clock
// (db.Now) follows each event, since assignments take their times from it.
//
//	D0 10:00 F1, F2, F4, F5 created Unhealthy, F3 created Healthy
//	D0 12:00 F1 assigned to alice, due D2 12:00; F4 to bob, due D1 00:00
//	D1 10:00 F3 turns Unhealthy, F2 Healthy
//	D1 12:00 F3 assigned to Alice (capital A), due D5 12:00
//	D2 10:00 F1 turns Healthy (its assignment is completed), F2 Unhealthy
//	D2 12:00 F4's due date moves to D4 12:00
//	D3 10:00 F5 turns Healthy, and at 11:00 Unhealthy again
//	D3 12:00 F2 assigned to bob, due D3 18:00
//	D4 12:00 F3's assignment completed (by hand; F3 stays Unhealthy)
//	D5 10:00 F1 turns Unhealthy again
//	D5 12:00 F4's assignment removed
type govHistory struct {
	t   *testing.T
	db  *store.DB
	ids map[string]int64 // finding → assessment ID
	asg map[string]int64 // finding → its assignment's ID
}

func newGovHistory(t *testing.T, db *store.DB) *govHistory {
	return &govHistory{t: t, db: db, ids: map[string]int64{}, asg: map[string]int64{}}
}

func (g *govHistory) at(ts time.Time) { g.db.Now = func() time.Time { return ts } }

func (g *govHistory) observe(ts time.Time, fs map[string]steward.AssessmentStatus) {
	g.at(ts)
	var obs []steward.Observation
	for f, s := range fs {
		obs = append(obs, govObs(f, s))
	}
	Apply(g.t, g.db, ts, obs...)
	for f := range fs {
		if g.ids[f] != 0 {
			continue
		}
		o := govObs(f, "")
		got, _, err := g.db.FindAssessments(g.t.Context(), store.AssessmentFilter{RecommendationKey: o.Recommendation.Key, ResourceID: o.Resource.ID})
		require.NoError(g.t, err)
		require.Len(g.t, got, 1)
		g.ids[f] = got[0].ID
	}
}

func (g *govHistory) assign(ts time.Time, f, owner string, due time.Time) {
	g.at(ts)
	g.asg[f] = Assignment(g.t, g.db, g.ids[f], owner, due).ID
}

func (g *govHistory) tx(ts time.Time, fn func(tx *store.Tx) error) {
	g.at(ts)
	require.NoError(g.t, g.db.WithTx(g.t.Context(), fn))
}

func (g *govHistory) seedDay(k int) {
	ctx := g.t.Context()
	switch k {
	case 0:
		g.observe(govDay(0, 10), map[string]steward.AssessmentStatus{"F1": steward.StatusUnhealthy, "F2": steward.StatusUnhealthy,
			"F3": steward.StatusHealthy, "F4": steward.StatusUnhealthy, "F5": steward.StatusUnhealthy})
		g.assign(govDay(0, 12), "F1", "alice@example.com", govDay(2, 12))
		g.assign(govDay(0, 12), "F4", "bob@example.com", govDay(1, 0))
	case 1:
		g.observe(govDay(1, 10), map[string]steward.AssessmentStatus{"F3": steward.StatusUnhealthy, "F2": steward.StatusHealthy})
		g.assign(govDay(1, 12), "F3", "Alice@example.com", govDay(5, 12))
	case 2:
		g.observe(govDay(2, 10), map[string]steward.AssessmentStatus{"F1": steward.StatusHealthy, "F2": steward.StatusUnhealthy})
		g.tx(govDay(2, 12), func(tx *store.Tx) error {
			due := govDay(4, 12)
			_, err := tx.UpdateAssignment(ctx, g.asg["F4"], store.AssignmentUpdate{DueDate: &due}, "bob@example.com", "later")
			return err
		})
	case 3:
		g.observe(govDay(3, 10), map[string]steward.AssessmentStatus{"F5": steward.StatusHealthy})
		g.observe(govDay(3, 11), map[string]steward.AssessmentStatus{"F5": steward.StatusUnhealthy})
		g.assign(govDay(3, 12), "F2", "bob@example.com", govDay(3, 18))
	case 4:
		g.tx(govDay(4, 12), func(tx *store.Tx) error {
			_, err := tx.EndAssignment(ctx, g.asg["F3"], steward.AssignmentCompleted, "alice@example.com", "fixed")
			return err
		})
	case 5:
		g.observe(govDay(5, 10), map[string]steward.AssessmentStatus{"F1": steward.StatusUnhealthy})
		g.tx(govDay(5, 12), func(tx *store.Tx) error {
			_, err := tx.EndAssignment(ctx, g.asg["F4"], steward.AssignmentRemoved, "bob@example.com", "not ours")
			return err
		})
	}
}

// gd is a day's expected counts: unhealthy, assigned, unassigned, on time,
// overdue, completed, new.
func gd(k int, c ...int) steward.GovernanceDay {
	return steward.GovernanceDay{Date: govDay(k, 0).Format(steward.ReportDate), Unhealthy: c[0], Assigned: c[1], Unassigned: c[2],
		OnTime: c[3], Overdue: c[4], Completed: c[5], New: c[6]}
}

// govExpect are the hand-worked series of D0 to D5 by selection. Each
// finding's state at each day's end:
//
//	    D0          D1          D2                D3          D4                  D5
//	F1  U ontime    U ontime    healthy, C        healthy     healthy             U new, unassigned
//	F2  U new       healthy     U new             U overdue   U overdue           U overdue
//	F3  healthy     U new ontime U ontime         U ontime    U unassigned, C     U unassigned
//	F4  U new ontime U overdue  U ontime (moved)  U ontime    U overdue           U unassigned (removed)
//	F5  U new       U           U                 U new       U                   U
//
// (F1's due D2 12:00 is after D1's end; F4's D1 00:00 is before D1's end,
// and after D0's last microsecond; F2's D3 18:00 before D3's end.)
var govExpect = map[string][]steward.GovernanceDay{
	// All five.
	"everything": {gd(0, 4, 2, 2, 2, 0, 0, 4), gd(1, 4, 3, 1, 2, 1, 0, 1), gd(2, 4, 2, 2, 2, 0, 1, 1),
		gd(3, 4, 3, 1, 2, 1, 0, 1), gd(4, 4, 2, 2, 0, 2, 1, 0), gd(5, 5, 1, 4, 0, 1, 0, 1)},
	// F1 and F2.
	"/subscriptions/s1": {gd(0, 2, 1, 1, 1, 0, 0, 2), gd(1, 1, 1, 0, 1, 0, 0, 0), gd(2, 1, 0, 1, 0, 0, 1, 1),
		gd(3, 1, 1, 0, 0, 1, 0, 0), gd(4, 1, 1, 0, 0, 1, 0, 0), gd(5, 2, 1, 1, 0, 1, 0, 1)},
	// F3 (on D0 it exists, healthy: an all-zero day).
	"/subscriptions/s2": {gd(0, 0, 0, 0, 0, 0, 0, 0), gd(1, 1, 1, 0, 1, 0, 0, 1), gd(2, 1, 1, 0, 1, 0, 0, 0),
		gd(3, 1, 1, 0, 1, 0, 0, 0), gd(4, 1, 0, 1, 0, 0, 1, 0), gd(5, 1, 0, 1, 0, 0, 0, 0)},
	// F1, F2 and F3.
	"/subscriptions": {gd(0, 2, 1, 1, 1, 0, 0, 2), gd(1, 2, 2, 0, 2, 0, 0, 1), gd(2, 2, 1, 1, 1, 0, 1, 1),
		gd(3, 2, 2, 0, 1, 1, 0, 0), gd(4, 2, 1, 1, 0, 1, 1, 0), gd(5, 3, 1, 2, 0, 1, 0, 1)},
	// F4.
	"/aws/accounts/111": {gd(0, 1, 1, 0, 1, 0, 0, 1), gd(1, 1, 1, 0, 0, 1, 0, 0), gd(2, 1, 1, 0, 1, 0, 0, 0),
		gd(3, 1, 1, 0, 1, 0, 0, 0), gd(4, 1, 1, 0, 0, 1, 0, 0), gd(5, 1, 0, 1, 0, 0, 0, 0)},
	// F4 again, through the /aws root's rollup.
	"/aws": {gd(0, 1, 1, 0, 1, 0, 0, 1), gd(1, 1, 1, 0, 0, 1, 0, 0), gd(2, 1, 1, 0, 1, 0, 0, 0),
		gd(3, 1, 1, 0, 1, 0, 0, 0), gd(4, 1, 1, 0, 0, 1, 0, 0), gd(5, 1, 0, 1, 0, 0, 0, 0)},
	// F1, F3, F4.
	"severity:High": {gd(0, 2, 2, 0, 2, 0, 0, 2), gd(1, 3, 3, 0, 2, 1, 0, 1), gd(2, 2, 2, 0, 2, 0, 1, 0),
		gd(3, 2, 2, 0, 2, 0, 0, 0), gd(4, 2, 1, 1, 0, 1, 1, 0), gd(5, 3, 0, 3, 0, 0, 0, 1)},
	// F2, F5.
	"severity:Low": {gd(0, 2, 0, 2, 0, 0, 0, 2), gd(1, 1, 0, 1, 0, 0, 0, 0), gd(2, 2, 0, 2, 0, 0, 0, 1),
		gd(3, 2, 1, 1, 0, 1, 0, 1), gd(4, 2, 1, 1, 0, 1, 0, 0), gd(5, 2, 1, 1, 0, 1, 0, 0)},
	// F5.
	"cloud:other": {gd(0, 1, 0, 1, 0, 0, 0, 1), gd(1, 1, 0, 1, 0, 0, 0, 0), gd(2, 1, 0, 1, 0, 0, 0, 0),
		gd(3, 1, 0, 1, 0, 0, 0, 1), gd(4, 1, 0, 1, 0, 0, 0, 0), gd(5, 1, 0, 1, 0, 0, 0, 0)},
	// F1, F2 and F3 again, as a cloud.
	"cloud:azure": {gd(0, 2, 1, 1, 1, 0, 0, 2), gd(1, 2, 2, 0, 2, 0, 0, 1), gd(2, 2, 1, 1, 1, 0, 1, 1),
		gd(3, 2, 2, 0, 1, 1, 0, 0), gd(4, 2, 1, 1, 0, 1, 1, 0), gd(5, 3, 1, 2, 0, 1, 0, 1)},
	// Scope /subscriptions/s2 and severity Low: nothing, every day.
	"/subscriptions/s2+Low": {gd(0, 0, 0, 0, 0, 0, 0, 0), gd(1, 0, 0, 0, 0, 0, 0, 0), gd(2, 0, 0, 0, 0, 0, 0, 0),
		gd(3, 0, 0, 0, 0, 0, 0, 0), gd(4, 0, 0, 0, 0, 0, 0, 0), gd(5, 0, 0, 0, 0, 0, 0, 0)},
}

// govFilters are the snapshot selections of govExpect.
var govFilters = map[string]steward.GovernanceFilter{
	"everything":            {},
	"/subscriptions/s1":     {Scope: "/subscriptions/s1"},
	"/subscriptions/s2":     {Scope: "/Subscriptions/S2/"},
	"/subscriptions":        {Scope: "/subscriptions"},
	"/aws/accounts/111":     {Scope: "/aws/accounts/111"},
	"/aws":                  {Scope: "/aws"},
	"severity:High":         {Severity: steward.SeverityHigh},
	"severity:Low":          {Severity: steward.SeverityLow},
	"cloud:other":           {Cloud: steward.CloudOther},
	"cloud:azure":           {Cloud: steward.CloudAzure},
	"/subscriptions/s2+Low": {Scope: "/subscriptions/s2", Severity: steward.SeverityLow},
}

// govPeriod is D0 to D5 (to D6 with today).
func govPeriod(f steward.GovernanceFilter, withToday bool) steward.GovernanceFilter {
	f.From, f.To = govDay(0, 0), govDay(5, 0)
	if withToday {
		f.To = govDay(6, 0)
	}
	return f
}

// govNow is when the test's snapshot job runs: D6 08:00.
var govNow = govDay(6, 8)

func daily(t *testing.T, db *store.DB, f steward.GovernanceFilter, now time.Time) ([]steward.GovernanceDay, string) {
	t.Helper()
	days, source, err := db.GovernanceDaily(t.Context(), f, now)
	require.NoError(t, err)
	return days, source
}

// snapshotDay reads a day's governance_day row.
func snapshotDay(t *testing.T, db *store.DB, k int) (final int, source string) {
	t.Helper()
	require.NoError(t, db.Writer().QueryRowContext(t.Context(), db.Bind(`SELECT final, source FROM governance_day WHERE day = ?`),
		govDay(k, 0).Unix()/86400).Scan(&final, &source))
	return final, source
}

func snapshotRows(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	// Level rows only: the rollups (negative scope_id) are read through
	// GovernanceDaily for everything and the root levels.
	require.NoError(t, db.Writer().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM governance_snapshot WHERE scope_id >= 0`).Scan(&n))
	return n
}

func testGovernanceHistory(t *testing.T) {
	t.Parallel()

	t.Run("BackfillCounts", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			g := newGovHistory(t, db)
			for k := range 6 {
				g.seedDay(k)
			}
			got, err := db.TakeGovernanceSnapshots(t.Context(), govNow, time.Hour)
			require.NoError(t, err)
			// D0 to D5 final, D6 provisional. Non-zero rows (level, cloud,
			// severity): s1 has F1 (High) and F2 (Low) as two keys, so
			// per day D0..D5 the keys with counts are
			// D0: s1/High, s1/Low, aws, other = 4 (s2 is all zero)
			// D1: s1/High, s2, aws, other = 4 (F2 healthy, nothing of it)
			// D2: s1/High (C), s1/Low, s2, aws, other = 5
			// D3..D5: s1/Low, s2, aws, other, and s1/High only on D5 = 4, 4, 5
			// D6 (as D5 without events): s1/High, s1/Low, s2, aws, other = 5.
			require.Equal(t, store.GovernanceSnapshots{Finalized: 6, Backfilled: true, Provisional: true, Rows: 4 + 4 + 5 + 4 + 4 + 5 + 5}, got)
			require.Equal(t, 31, snapshotRows(t, db))
			for k := range 6 {
				final, source := snapshotDay(t, db, k)
				require.Equal(t, 1, final)
				require.Equal(t, "backfill", source)
			}
			final, _ := snapshotDay(t, db, 6)
			require.Equal(t, 0, final)

			for name, f := range govFilters {
				days, source := daily(t, db, govPeriod(f, false), govNow)
				require.Equal(t, steward.DailyFromSnapshots, source, name)
				require.Equal(t, govExpect[name], days, name)
			}

			// Today's row: D5's state sampled at D6 08:00, nothing
			// completed or new yet, provisional.
			days, _ := daily(t, db, govPeriod(steward.GovernanceFilter{}, true), govNow)
			require.Len(t, days, 7)
			today := gd(6, 5, 1, 4, 0, 1, 0, 0)
			today.Provisional = true
			require.Equal(t, today, days[6])

			// Run twice on one day: nothing more.
			again, err := db.TakeGovernanceSnapshots(t.Context(), govNow.Add(30*time.Minute), time.Hour)
			require.NoError(t, err)
			require.Equal(t, store.GovernanceSnapshots{}, again)
			require.Equal(t, 31, snapshotRows(t, db))
		})
	})

	t.Run("HistorySelections", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			g := newGovHistory(t, db)
			for k := range 6 {
				g.seedDay(k)
			}
			// No snapshots taken: the history answers what the
			// snapshots cannot, for every day of the period.
			cases := []struct {
				name string
				f    steward.GovernanceFilter
				want []steward.GovernanceDay
			}{
				// F1 alone.
				{"ResourceGroup", steward.GovernanceFilter{Scope: "/subscriptions/s1/resourcegroups/rg1"}, []steward.GovernanceDay{
					gd(0, 1, 1, 0, 1, 0, 0, 1), gd(1, 1, 1, 0, 1, 0, 0, 0), gd(2, 0, 0, 0, 0, 0, 1, 0),
					gd(3, 0, 0, 0, 0, 0, 0, 0), gd(4, 0, 0, 0, 0, 0, 0, 0), gd(5, 1, 0, 1, 0, 0, 0, 1)}},
				// F2 alone (a scope deeper than a subscription, not a
				// resource group).
				{"DeeperScope", steward.GovernanceFilter{Scope: "/subscriptions/s1/providers"}, []steward.GovernanceDay{
					gd(0, 1, 0, 1, 0, 0, 0, 1), gd(1, 0, 0, 0, 0, 0, 0, 0), gd(2, 1, 0, 1, 0, 0, 0, 1),
					gd(3, 1, 1, 0, 0, 1, 0, 0), gd(4, 1, 1, 0, 0, 1, 0, 0), gd(5, 1, 1, 0, 0, 1, 0, 0)}},
				// alice's F1 (D0 12:00 to its completion D2 10:00) and F3
				// (D1 12:00 to D4 12:00, owner written "Alice@…"): only
				// the assignment columns count.
				{"Owner", steward.GovernanceFilter{Owner: "ALICE@example.com"}, []steward.GovernanceDay{
					gd(0, 0, 1, 0, 1, 0, 0, 0), gd(1, 0, 2, 0, 2, 0, 0, 0), gd(2, 0, 1, 0, 1, 0, 1, 0),
					gd(3, 0, 1, 0, 1, 0, 0, 0), gd(4, 0, 0, 0, 0, 0, 1, 0), gd(5, 0, 0, 0, 0, 0, 0, 0)}},
				// bob's F4 (D0 12:00 to its removal D5 12:00) and F2
				// (from D3 12:00), High only: F4.
				{"OwnerAndSeverity", steward.GovernanceFilter{Owner: "bob@example.com", Severity: steward.SeverityHigh}, []steward.GovernanceDay{
					gd(0, 0, 1, 0, 1, 0, 0, 0), gd(1, 0, 1, 0, 0, 1, 0, 0), gd(2, 0, 1, 0, 1, 0, 0, 0),
					gd(3, 0, 1, 0, 1, 0, 0, 0), gd(4, 0, 1, 0, 0, 1, 0, 0), gd(5, 0, 0, 0, 0, 0, 0, 0)}},
				{"OwnerInScope", steward.GovernanceFilter{Owner: "bob@example.com", Scope: "/subscriptions/s1"}, []steward.GovernanceDay{
					gd(0, 0, 0, 0, 0, 0, 0, 0), gd(1, 0, 0, 0, 0, 0, 0, 0), gd(2, 0, 0, 0, 0, 0, 0, 0),
					gd(3, 0, 1, 0, 0, 1, 0, 0), gd(4, 0, 1, 0, 0, 1, 0, 0), gd(5, 0, 1, 0, 0, 1, 0, 0)}},
			}
			for _, c := range cases {
				days, source := daily(t, db, govPeriod(c.f, false), govNow)
				require.Equal(t, steward.DailyFromHistory, source, c.name)
				require.Equal(t, c.want, days, c.name)
			}

			// Today from history: sampled at now, provisional; a period
			// reaching past today stops at today.
			f := govPeriod(steward.GovernanceFilter{Owner: "bob@example.com"}, true)
			f.To = govDay(9, 0)
			days, _ := daily(t, db, f, govNow)
			require.Len(t, days, 7)
			today := gd(6, 0, 1, 0, 0, 1, 0, 0)
			today.Provisional = true
			require.Equal(t, today, days[6])

			// An earlier now sees the history as it was then: at D3 11:30
			// F2 is unhealthy and not assigned yet; at D3 11:00 bob's F4
			// is on time (due D4 12:00) and F2 not his yet.
			f = govPeriod(steward.GovernanceFilter{Scope: "/subscriptions/s1/providers"}, false)
			days, _ = daily(t, db, f, govDay(3, 11).Add(30*time.Minute))
			require.Len(t, days, 4)
			d3 := gd(3, 1, 0, 1, 0, 0, 0, 0)
			d3.Provisional = true
			require.Equal(t, d3, days[3])
			days, _ = daily(t, db, govPeriod(steward.GovernanceFilter{Owner: "bob@example.com"}, false), govDay(3, 11))
			require.Len(t, days, 4)
			d3 = gd(3, 0, 1, 0, 1, 0, 0, 0)
			d3.Provisional = true
			require.Equal(t, d3, days[3])

			// Overdue is after the due date: at D3 18:00 itself bob's F2
			// (due then) is on time, a microsecond later overdue.
			bob := govPeriod(steward.GovernanceFilter{Owner: "bob@example.com"}, false)
			days, _ = daily(t, db, bob, govDay(3, 18))
			d3 = gd(3, 0, 2, 0, 2, 0, 0, 0)
			d3.Provisional = true
			require.Equal(t, d3, days[3])
			days, _ = daily(t, db, bob, govDay(3, 18).Add(time.Microsecond))
			d3 = gd(3, 0, 2, 0, 1, 1, 0, 0)
			d3.Provisional = true
			require.Equal(t, d3, days[3])
		})
	})

	t.Run("DailyEqualsBackfill", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			// One database takes a snapshot each evening as the history
			// happens; another, seeded the same, backfills at once.
			g := newGovHistory(t, db)
			for k := range 6 {
				g.seedDay(k)
				got, err := db.TakeGovernanceSnapshots(t.Context(), govDay(k, 23), time.Hour)
				require.NoError(t, err)
				require.True(t, got.Provisional)
				// The first evening has no ended day; the second
				// finalizes D0 (still a first run: no final day yet);
				// then one day each.
				require.Equal(t, min(k, 1), got.Finalized, "day %d", k)
				require.Equal(t, k == 1, got.Backfilled, "day %d", k)
			}
			got, err := db.TakeGovernanceSnapshots(t.Context(), govNow, time.Hour)
			require.NoError(t, err)
			require.Equal(t, 1, got.Finalized)
			require.False(t, got.Backfilled)
			_, source := snapshotDay(t, db, 5)
			require.Equal(t, "daily", source)

			backend := SQLite
			if db.Postgres() {
				backend = Postgres
			}
			other := MustOpenBackend(t, backend)
			og := newGovHistory(t, other)
			for k := range 6 {
				og.seedDay(k)
			}
			_, err = other.TakeGovernanceSnapshots(t.Context(), govNow, time.Hour)
			require.NoError(t, err)

			for name, f := range govFilters {
				want, _ := daily(t, db, govPeriod(f, true), govNow)
				backfilled, _ := daily(t, other, govPeriod(f, true), govNow)
				require.Equal(t, want, backfilled, name)
				require.Equal(t, govExpect[name], want[:6], name)
			}
			require.Equal(t, snapshotRows(t, db), snapshotRows(t, other))
			require.Equal(t, govRows(t, db), govRows(t, other))
		})
	})

	t.Run("ProvisionalRefreshAndGap", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			g := newGovHistory(t, db)
			for k := range 6 {
				g.seedDay(k)
			}
			_, err := db.TakeGovernanceSnapshots(t.Context(), govNow, time.Hour)
			require.NoError(t, err)

			today := func(now time.Time) steward.GovernanceDay {
				days, _ := daily(t, db, govPeriod(steward.GovernanceFilter{}, true), now)
				require.Len(t, days, 7)
				return days[6]
			}
			before := gd(6, 5, 1, 4, 0, 1, 0, 0)
			before.Provisional = true

			// 59 minutes after it was taken, nothing having changed: not
			// refreshed.
			got, err := db.TakeGovernanceSnapshots(t.Context(), govNow.Add(59*time.Minute), time.Hour)
			require.NoError(t, err)
			require.Equal(t, store.GovernanceSnapshots{}, got)
			require.Equal(t, before, today(govNow.Add(59*time.Minute)))

			// D6 08:40 F2 turns Healthy: bob's assignment is completed.
			// The history changed and the counts are over a minute old:
			// refreshed, F2 neither unhealthy nor assigned, its
			// assignment completed today. Rows: s1/High (F1), s1/Low
			// (completed), s2, aws, other.
			g.observe(govDay(6, 8).Add(40*time.Minute), map[string]steward.AssessmentStatus{"F2": steward.StatusHealthy})
			got, err = db.TakeGovernanceSnapshots(t.Context(), govNow.Add(59*time.Minute), time.Hour)
			require.NoError(t, err)
			require.Equal(t, store.GovernanceSnapshots{Provisional: true, Rows: 5}, got)
			after := gd(6, 4, 0, 4, 0, 0, 1, 0)
			after.Provisional = true
			require.Equal(t, after, today(govNow.Add(59*time.Minute)))

			// Two minutes later, nothing changed since: not refreshed.
			got, err = db.TakeGovernanceSnapshots(t.Context(), govNow.Add(61*time.Minute), time.Hour)
			require.NoError(t, err)
			require.Equal(t, store.GovernanceSnapshots{}, got)

			// The next day D6 becomes final, taken the day after: daily.
			got, err = db.TakeGovernanceSnapshots(t.Context(), govDay(7, 1), time.Hour)
			require.NoError(t, err)
			require.Equal(t, 1, got.Finalized)
			require.False(t, got.Backfilled)
			final, source := snapshotDay(t, db, 6)
			require.Equal(t, 1, final)
			require.Equal(t, "daily", source)
			after.Provisional = false
			days, _ := daily(t, db, govPeriod(steward.GovernanceFilter{}, true), govDay(7, 1))
			require.Equal(t, after, days[6])

			// Not run on D8, D9, D10: on D11 the days D7 to D10 are
			// backfilled, each D6's state with nothing new or completed.
			got, err = db.TakeGovernanceSnapshots(t.Context(), govDay(11, 1), time.Hour)
			require.NoError(t, err)
			require.Equal(t, 4, got.Finalized)
			require.True(t, got.Backfilled)
			require.True(t, got.Provisional)
			f := steward.GovernanceFilter{From: govDay(7, 0), To: govDay(11, 0)}
			days, _ = daily(t, db, f, govDay(11, 1))
			require.Len(t, days, 5)
			for i, d := range days {
				want := gd(7+i, 4, 0, 4, 0, 0, 0, 0)
				want.Provisional = i == 4
				require.Equal(t, want, d)
				if i < 4 {
					final, source := snapshotDay(t, db, 7+i)
					require.Equal(t, 1, final)
					require.Equal(t, "backfill", source)
				}
			}
		})
	})

	t.Run("Race", func(t *testing.T) {
		t.Parallel()
		ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
			g := newGovHistory(t, a)
			for k := range 6 {
				g.seedDay(k)
			}
			var wg sync.WaitGroup
			results := make([]store.GovernanceSnapshots, 2)
			errs := make([]error, 2)
			for i, db := range []*store.DB{a, b} {
				wg.Go(func() {
					results[i], errs[i] = db.TakeGovernanceSnapshots(t.Context(), govNow, time.Hour)
				})
			}
			wg.Wait()
			require.NoError(t, errs[0])
			require.NoError(t, errs[1])
			// Each day final once, today refreshed once, rows not
			// doubled.
			require.Equal(t, 6, results[0].Finalized+results[1].Finalized)
			require.True(t, results[0].Provisional != results[1].Provisional)
			require.Equal(t, 31, results[0].Rows+results[1].Rows)
			require.Equal(t, 31, snapshotRows(t, a))
			for name, f := range govFilters {
				days, _ := daily(t, b, govPeriod(f, false), govNow)
				require.Equal(t, govExpect[name], days, name)
			}
		})
	})
}

// govRows lists every snapshot row with its level, for comparing two
// databases (whose summary_scope IDs may differ).
func govRows(t *testing.T, db *store.DB) []string {
	t.Helper()
	// scope_id -1 is the day's totals, below it the rollups of root levels
	// (-1 - the level's ID).
	rows, err := db.Writer().QueryContext(t.Context(), `SELECT d.day, d.final,
		CASE WHEN s.scope_id = -1 THEN 'total' WHEN s.scope_id < -1 THEN 'rollup' ELSE 'level' END AS kind,
		COALESCE(ss.scope, ''), s.cloud, s.severity_rank,
		s.unhealthy, s.assigned, s.unassigned, s.on_time, s.overdue, s.completed, s.new_unhealthy
		FROM governance_snapshot s JOIN governance_day d ON d.day = s.day
		LEFT JOIN summary_scope ss ON ss.id = CASE WHEN s.scope_id < -1 THEN -1 - s.scope_id ELSE s.scope_id END
		ORDER BY d.day, 3, 4, s.cloud, s.severity_rank`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v [13]any
		ptrs := make([]any, len(v))
		for i := range v {
			ptrs[i] = &v[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		out = append(out, fmt.Sprint(v))
	}
	require.NoError(t, rows.Err())
	return out
}
