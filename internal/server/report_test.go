package server_test

import (
	"context"
	"io"
	"maps"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// governanceDays reads the governance_day rows: day number → final.
func governanceDays(t *testing.T, db *store.DB) map[int64]bool {
	t.Helper()
	rows, err := db.Writer().QueryContext(t.Context(), `SELECT day, final FROM governance_day`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var day, final int64
		require.NoError(t, rows.Scan(&day, &final))
		out[day] = final == 1
	}
	require.NoError(t, rows.Err())
	return out
}

func dayNumber(t time.Time) int64 { return t.UTC().Unix() / 86400 }

// snapshotDaysTaken scrapes the governance snapshot days one server took.
func snapshotDaysTaken(t *testing.T, srv *server.Server, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	total := 0
	for _, m := range regexp.MustCompile(`(?m)^steward_governance_snapshot_days_total\{source="[a-z]+"\} (\d+)$`).FindAllStringSubmatch(string(raw), -1) {
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		total += n
	}
	return total
}

// TestGovernanceSnapshotsAcrossMidnight: the governance_snapshot job runs
// at start (today's provisional counts, on an empty estate), and after
// midnight takes the day that ended — and, this being the first ended
// day, backfills the days before it from the history seeded meanwhile —
// once, with today's provisional counts begun; the report then answers
// those days from the snapshots. A direct run afterwards takes nothing.
func TestGovernanceSnapshotsAcrossMidnight(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st storeKind) {
		ctx := t.Context()
		start := time.Now().UTC()
		clock := newMailClock(start)
		b, _ := startInbound(t, st.configure(t), nil, server.WithReportClock(clock.now, time.Hour),
			server.WithProcessTiming(5*time.Second, 30*time.Second, 10*time.Second, 200*time.Millisecond))
		db := b.srv.DB
		today := dayNumber(start)
		require.Eventually(t, func() bool { _, ok := governanceDays(t, db)[today]; return ok }, 30*time.Second, 50*time.Millisecond,
			"the job runs at start and writes today's provisional counts")
		require.False(t, governanceDays(t, db)[today], "today is provisional")

		// Two days ago three High findings were first reported Unhealthy;
		// today one of them is assigned, due yesterday: overdue.
		twoDaysAgo := start.Add(-48 * time.Hour)
		storetest.Apply(t, db, twoDaysAgo,
			storetest.WithSeverity(storetest.Observation("rec-a", "/subscriptions/s1/vm1", steward.StatusUnhealthy), steward.SeverityHigh),
			storetest.WithSeverity(storetest.Observation("rec-a", "/subscriptions/s1/vm2", steward.StatusUnhealthy), steward.SeverityHigh),
			storetest.WithSeverity(storetest.Observation("rec-a", "/subscriptions/s2/vm3", steward.StatusUnhealthy), steward.SeverityHigh))
		found, _, err := db.FindAssessments(ctx, store.AssessmentFilter{RecommendationKey: "rec-a", ResourceID: "/subscriptions/s1/vm1"})
		require.NoError(t, err)
		require.Len(t, found, 1)
		storetest.Assignment(t, db, found[0].ID, "alice@example.com", start.Add(-24*time.Hour))

		clock.set(time.Unix((today+1)*86400, 0).Add(time.Minute))
		// The ended days are committed first, then tomorrow's provisional
		// counts in a transaction of their own.
		want := map[int64]bool{today - 2: true, today - 1: true, today: true, today + 1: false}
		require.Eventually(t, func() bool { return maps.Equal(want, governanceDays(t, db)) }, 30*time.Second, 50*time.Millisecond,
			"after midnight the job takes the day that ended, backfilled from the first finding's day; tomorrow provisional")

		rep, err := b.client.GovernanceReport(ctx, apiclient.ReportQuery{Since: "7d"})
		require.NoError(t, err)
		require.Equal(t, steward.DailyFromSnapshots, rep.DailySource)
		byDate := map[string]steward.GovernanceDay{}
		for _, d := range rep.Daily {
			byDate[d.Date] = d
		}
		date := func(day int64) string { return time.Unix(day*86400, 0).UTC().Format(steward.ReportDate) }
		require.Len(t, byDate, 3, "the days with snapshots within the period: %v", rep.Daily)
		assert.Equal(t, steward.GovernanceDay{Date: date(today - 2), Unhealthy: 3, Unassigned: 3, New: 3}, byDate[date(today-2)])
		assert.Equal(t, steward.GovernanceDay{Date: date(today - 1), Unhealthy: 3, Unassigned: 3}, byDate[date(today-1)])
		assert.Equal(t, steward.GovernanceDay{Date: date(today), Unhealthy: 3, Assigned: 1, Unassigned: 2, Overdue: 1}, byDate[date(today)])

		res, err := b.srv.Reports.Take(ctx)
		require.NoError(t, err)
		require.Zero(t, res.Finalized, "every ended day is taken already")
		require.Equal(t, 3, snapshotDaysTaken(t, b.srv, b.token), "three days taken, each once")
	})
}

// TestGovernanceSnapshotsOnceAcrossProcesses: three servers on one
// PostgreSQL database, each ticking and each also asked to take the
// snapshots at the same instant after midnight, take each ended day once
// between them.
func TestGovernanceSnapshotsOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	start := time.Now().UTC()
	clock := newMailClock(start)
	var servers []*server.Server
	for range 3 {
		servers = append(servers, c.start(t, server.WithReportClock(clock.now, time.Hour),
			server.WithProcessTiming(time.Second, 30*time.Second, 10*time.Second, 100*time.Millisecond)))
	}
	db := servers[0].DB
	token := authtest.Token(t, db, "tester@example.com", steward.RoleOwner)
	for i := range 20 {
		storetest.Apply(t, db, start.Add(-time.Duration(i)*24*time.Hour),
			storetest.Observation("rec-"+strconv.Itoa(i), "/subscriptions/s1/vm"+strconv.Itoa(i), steward.StatusUnhealthy))
	}
	today := dayNumber(start)
	clock.set(time.Unix((today+1)*86400, 0).Add(time.Second))
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			_, err := s.Reports.Take(context.WithoutCancel(t.Context()))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	days := governanceDays(t, db)
	for d := today - 19; d <= today; d++ {
		require.True(t, days[d], "day %d taken", d)
	}
	time.Sleep(time.Second) // ten more ticks on the leader
	taken := 0
	for _, s := range servers {
		taken += snapshotDaysTaken(t, s, token)
	}
	require.Equal(t, 20, taken, "20 ended days, each taken by one process once")
}
