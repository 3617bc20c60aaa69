package api_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/api/apitest"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/ingest"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/source/stewardjson"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// seedClock is the store's clock while a test writes history on chosen
// days; the API's own clock stays the real one, so "today" is today.
type seedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *seedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *seedClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// reportAPI is a real API over HTTP on db, with ingest and assignments
// (no ticket system); jobs are inserted by an insert-only River client and
// never worked.
type reportAPI struct {
	db    *store.DB
	url   string
	clock *seedClock
	// today is the UTC day the test began; day(k, h) is h o'clock k days
	// before it.
	today time.Time
	// contributor seeds; reader reads.
	contributor, reader *apiclient.Client
	readerToken         string
}

func newReportAPI(t *testing.T, db *store.DB) *reportAPI {
	t.Helper()
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	clock := &seedClock{t: now}
	// Set before anything runs: nothing reads the clock concurrently yet.
	db.Now = clock.Now
	logger := storetest.Logger(t)
	reg := prometheus.NewRegistry()
	queue := jobs.NewQueue()
	rc, err := river.NewClient(db.RiverDriver(), &river.Config{})
	require.NoError(t, err)
	queue.Bind(rc)
	noITSM := func(*steward.Integration, store.IntegrationSecrets) (itsm.Provider, error) {
		return nil, errors.New("no ITSM in this test")
	}
	a := api.New(api.Config{SpoolDir: t.TempDir()}, api.Deps{
		DB: db, Ingester: ingest.New(db, queue, logger, reg), Queue: queue,
		Tickets: ticketsync.New(ticketsync.Config{}, db, queue, noITSM, logger, reg),
		Auth:    auth.NewAuthenticator(db, logger),
	}, logger, reg)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	r := &reportAPI{db: db, url: srv.URL, clock: clock, today: today}
	r.contributor = r.client(t, authtest.Token(t, db, "seeder", steward.RoleContributor))
	r.readerToken = authtest.Token(t, db, "report-reader", steward.RoleReader)
	r.reader = r.client(t, r.readerToken)
	return r
}

func (r *reportAPI) client(t *testing.T, token string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(r.url, token)
	require.NoError(t, err)
	return c.WithHTTPClient(apitest.Client(t))
}

func (r *reportAPI) day(k, hour int) time.Time {
	return r.today.AddDate(0, 0, -k).Add(time.Duration(hour) * time.Hour)
}

func (r *reportAPI) date(k int) string { return r.day(k, 0).Format(steward.ReportDate) }

// observe posts observations through POST /api/v1/assessments at at.
func (r *reportAPI) observe(t *testing.T, at time.Time, obs ...steward.Observation) {
	t.Helper()
	r.clock.Set(at)
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, o := range obs {
		require.NoError(t, enc.Encode(stewardjson.FromObservation(o)))
	}
	_, err := r.contributor.PostAssessments(t.Context(), &body)
	require.NoError(t, err)
}

// assign creates a manual assignment at at, due at due.
func (r *reportAPI) assign(t *testing.T, at time.Time, rec, res, owner string, due time.Time) int64 {
	t.Helper()
	r.clock.Set(at)
	page, err := r.contributor.ListAssessments(t.Context(), url.Values{"recommendation": {rec}, "resource": {res}})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	as, err := r.contributor.CreateAssignment(t.Context(), apiclient.AssignmentRequest{
		AssessmentID: page.Items[0].ID, Owner: owner, DueDate: due.Format(time.RFC3339), Reason: "report test"})
	require.NoError(t, err)
	return as.ID
}

// get sends one GET as token (default: the reader) with an optional
// Accept header; answers are checked against the OpenAPI document.
func (r *reportAPI) get(t *testing.T, token, query, accept string) (*http.Response, []byte) {
	t.Helper()
	if token == "" {
		token = r.readerToken
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.url+"/api/v1/reports/governance?"+query, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := apitest.Client(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// refusal sends query and returns the status and the error's field.
func (r *reportAPI) refusal(t *testing.T, token, query string) (int, string, string) {
	t.Helper()
	resp, body := r.get(t, token, query, "")
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	return resp.StatusCode, e.Error.Field, e.Error.Message
}

// The seeded history (the store's clock set to each moment; k is days
// before today):
//
//	k=20 10:00  f1 r-high vm1 (s1), f2 r-high vm2 (s1), f3 r-low vm3 (s1, Low),
//	            f4 r-high vm4 (s2) Unhealthy; f5 r-low vm1 Healthy
//	k=20 11:00  A1 f1 → alice@example.com, due k=10 12:00
//	            A2 f2 → =1+1@example.com, due k=5 12:00
//	            A3 f3 → alice@example.com, due k=-10 12:00
//	            A4 f4 → +1@example.com, due k=15 12:00
//	k=16 11:00  f3 Healthy: A3 completed after exactly 4 days
//	k=12 10:00  f4 Healthy: A4 completed after 8 days less an hour (7.958333 days)
//	k=3  10:00  A2's due date moved to k=-30 12:00
//
// Every resource is Azure, in resource group rg of its subscription.
const (
	vm1 = "/subscriptions/s1/resourceGroups/rg/providers/x/vm1"
	vm2 = "/subscriptions/s1/resourceGroups/rg/providers/x/vm2"
	vm3 = "/subscriptions/s1/resourceGroups/rg/providers/x/vm3"
	vm4 = "/subscriptions/s2/resourceGroups/rg/providers/x/vm4"
)

const a4Days = (8*24 - 1) / 24.0 // A4: created k=20 11:00, completed k=12 10:00

func (r *reportAPI) seed(t *testing.T) {
	t.Helper()
	low := func(o steward.Observation) steward.Observation { return storetest.WithSeverity(o, steward.SeverityLow) }
	r.observe(t, r.day(20, 10),
		storetest.Observation("r-high", vm1, steward.StatusUnhealthy),
		storetest.Observation("r-high", vm2, steward.StatusUnhealthy),
		low(storetest.Observation("r-low", vm3, steward.StatusUnhealthy)),
		storetest.Observation("r-high", vm4, steward.StatusUnhealthy),
		low(storetest.Observation("r-low", vm1, steward.StatusHealthy)))
	r.assign(t, r.day(20, 11), "r-high", vm1, "alice@example.com", r.day(10, 12))
	a2 := r.assign(t, r.day(20, 11), "r-high", vm2, "=1+1@example.com", r.day(5, 12))
	r.assign(t, r.day(20, 11), "r-low", vm3, "alice@example.com", r.day(-10, 12))
	r.assign(t, r.day(20, 11), "r-high", vm4, "+1@example.com", r.day(15, 12))
	r.observe(t, r.day(16, 11), low(storetest.Observation("r-low", vm3, steward.StatusHealthy)))
	r.observe(t, r.day(12, 10), storetest.Observation("r-high", vm4, steward.StatusHealthy))
	r.clock.Set(r.day(3, 10))
	_, err := r.contributor.UpdateAssignment(t.Context(), a2, apiclient.AssignmentRequest{DueDate: r.day(-30, 12).Format(time.RFC3339), Reason: "extended"})
	require.NoError(t, err)
	r.clock.Set(time.Now().UTC())
	// The daily snapshots as the periodic job takes them: a backfill from
	// the first finding's day through yesterday, and today's counts.
	_, err = r.db.TakeGovernanceSnapshots(t.Context(), time.Now().UTC(), 0)
	require.NoError(t, err)
}

// days is an expected time to remediate as the report gives it: in days,
// rounded to two decimals.
func days(f float64) *float64 {
	f = math.Round(f*100) / 100
	return &f
}

// govRow builds an expected table row; mean and p90 nil when nothing was
// completed.
func govRow(key string, assigned, onTime, overdue, completed int, mean, p90 *float64) steward.GovernanceRow {
	ratio := 0.0
	if assigned > 0 {
		ratio = float64(overdue) / float64(assigned)
	}
	return steward.GovernanceRow{Key: key, Assigned: assigned, OnTime: onTime, Overdue: overdue, Completed: completed,
		OverdueRatio: ratio, MeanDaysToRemediate: mean, P90DaysToRemediate: p90}
}

// requireRows compares rows.
func requireRows(t *testing.T, want, got []steward.GovernanceRow, what string) {
	t.Helper()
	require.Len(t, got, len(want), "%s: %+v", what, got)
	for i := range want {
		w, g := want[i], got[i]
		for _, p := range []struct {
			name string
			w, g *float64
		}{{"mean", w.MeanDaysToRemediate, g.MeanDaysToRemediate}, {"p90", w.P90DaysToRemediate, g.P90DaysToRemediate}} {
			if p.w == nil {
				require.Nil(t, p.g, "%s row %s: %s days", what, w.Key, p.name)
				continue
			}
			require.NotNil(t, p.g, "%s row %s: %s days", what, w.Key, p.name)
			require.InDelta(t, *p.w, *p.g, 1e-6, "%s row %s: %s days", what, w.Key, p.name)
		}
		w.MeanDaysToRemediate, w.P90DaysToRemediate, g.MeanDaysToRemediate, g.P90DaysToRemediate = nil, nil, nil, nil
		require.InDelta(t, w.OverdueRatio, g.OverdueRatio, 1e-9, "%s row %s: overdue ratio", what, w.Key)
		w.OverdueRatio, g.OverdueRatio = 0, 0
		require.Equal(t, w, g, "%s row %d", what, i)
	}
}

// dayCounts is one expected day: unhealthy, assigned, unassigned, on time,
// overdue, completed, new.
type dayCounts [7]int

func (r *reportAPI) requireDaily(t *testing.T, want map[int]dayCounts, from, to int, got []steward.GovernanceDay) {
	t.Helper()
	require.Len(t, got, from-to+1)
	for i, k := 0, from; k >= to; i, k = i+1, k-1 {
		w := want[k]
		d := got[i]
		require.Equal(t, steward.GovernanceDay{Date: r.date(k), Unhealthy: w[0], Assigned: w[1], Unassigned: w[2], OnTime: w[3], Overdue: w[4],
			Completed: w[5], New: w[6], Provisional: k == 0}, d, "day k=%d", k)
	}
}

// span fills days from..to (k, from >= to) with c.
func span(m map[int]dayCounts, from, to int, c dayCounts) {
	for k := from; k >= to; k-- {
		m[k] = c
	}
}

// TestGovernanceReport seeds a known history through the API and checks
// the report's every number by hand, as JSON (checked against the OpenAPI
// document) and as CSV, on both stores.
func TestGovernanceReport(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		r := newReportAPI(t, db)
		r.seed(t)
		ctx := t.Context()
		period := apiclient.ReportQuery{Since: r.date(20), Until: r.date(1)}

		rep, err := r.reader.GovernanceReport(ctx, period)
		require.NoError(t, err)
		require.Equal(t, r.day(20, 0), rep.Filter.From.UTC())
		require.Equal(t, r.day(1, 0), rep.Filter.To.UTC())
		require.Equal(t, steward.DefaultReportLimit, rep.Filter.Limit)
		require.Empty(t, rep.Filter.Scope)

		// Now: A1 (alice, due k=10) overdue, A2 (=1+1, due k=-30) on time;
		// completed in the period: A3 (alice, 4 days), A4 (+1, a4Days).
		// Totals' p90 of two is the 2nd smallest (ceil(0.9*2) = 2).
		requireRows(t, []steward.GovernanceRow{govRow("", 2, 1, 1, 2, days((4+a4Days)/2), days(a4Days))}, []steward.GovernanceRow{rep.Totals}, "totals")
		// Most overdue first, then most assigned.
		requireRows(t, []steward.GovernanceRow{
			govRow("alice@example.com", 1, 0, 1, 1, days(4), days(4)),
			govRow("=1+1@example.com", 1, 1, 0, 0, nil, nil),
			govRow("+1@example.com", 0, 0, 0, 1, days(a4Days), days(a4Days)),
		}, rep.Owners, "owners")
		require.Equal(t, 3, rep.OwnersTotal)
		requireRows(t, []steward.GovernanceRow{
			govRow("/subscriptions/s1", 2, 1, 1, 1, days(4), days(4)),
			govRow("/subscriptions/s2", 0, 0, 0, 1, days(a4Days), days(a4Days)),
		}, rep.Scopes, "scopes")
		require.Equal(t, 2, rep.ScopesTotal)
		requireRows(t, []steward.GovernanceRow{
			govRow("High", 2, 1, 1, 1, days(a4Days), days(a4Days)),
			govRow("Low", 0, 0, 0, 1, days(4), days(4)),
		}, rep.Severities, "severities")

		// The daily series, every day sampled at its end.
		require.Equal(t, steward.DailyFromSnapshots, rep.DailySource)
		all := map[int]dayCounts{}
		span(all, 20, 20, dayCounts{4, 4, 0, 4, 0, 0, 4}) // four new, all assigned at 11:00
		span(all, 19, 17, dayCounts{4, 4, 0, 4, 0, 0, 0})
		span(all, 16, 16, dayCounts{3, 3, 0, 3, 0, 1, 0}) // f3 fixed, A3 completed
		span(all, 15, 13, dayCounts{3, 3, 0, 2, 1, 0, 0}) // A4 due k=15 12:00
		span(all, 12, 12, dayCounts{2, 2, 0, 2, 0, 1, 0}) // f4 fixed, A4 completed
		span(all, 11, 11, dayCounts{2, 2, 0, 2, 0, 0, 0})
		span(all, 10, 6, dayCounts{2, 2, 0, 1, 1, 0, 0}) // A1 due k=10 12:00
		span(all, 5, 4, dayCounts{2, 2, 0, 0, 2, 0, 0})  // A2 due k=5 12:00 as it was then
		span(all, 3, 1, dayCounts{2, 2, 0, 1, 1, 0, 0})  // A2's due date moved at k=3
		span(all, 0, 0, dayCounts{2, 2, 0, 1, 1, 0, 0})  // today, so far
		r.requireDaily(t, all, 20, 1, rep.Daily)

		// Subscription s1 from the snapshots equals its resource group
		// (the same findings) from history: f1, f2, f3.
		s1 := map[int]dayCounts{}
		span(s1, 20, 20, dayCounts{3, 3, 0, 3, 0, 0, 3})
		span(s1, 19, 17, dayCounts{3, 3, 0, 3, 0, 0, 0})
		span(s1, 16, 16, dayCounts{2, 2, 0, 2, 0, 1, 0})
		span(s1, 15, 11, dayCounts{2, 2, 0, 2, 0, 0, 0})
		span(s1, 10, 6, dayCounts{2, 2, 0, 1, 1, 0, 0})
		span(s1, 5, 4, dayCounts{2, 2, 0, 0, 2, 0, 0})
		span(s1, 3, 1, dayCounts{2, 2, 0, 1, 1, 0, 0})
		for scope, source := range map[string]string{"/subscriptions/s1": steward.DailyFromSnapshots, "/SUBSCRIPTIONS/s1/resourceGroups/rg": steward.DailyFromHistory} {
			q := period
			q.Scope = scope
			rep, err := r.reader.GovernanceReport(ctx, q)
			require.NoError(t, err)
			require.Equal(t, steward.Scope(strings.ToLower(scope)), rep.Filter.Scope, "the resolved scope, normalized")
			require.Equal(t, source, rep.DailySource, scope)
			r.requireDaily(t, s1, 20, 1, rep.Daily)
			requireRows(t, []steward.GovernanceRow{govRow("", 2, 1, 1, 1, days(4), days(4))}, []steward.GovernanceRow{rep.Totals}, scope+" totals")
			requireRows(t, []steward.GovernanceRow{
				govRow("alice@example.com", 1, 0, 1, 1, days(4), days(4)),
				govRow("=1+1@example.com", 1, 1, 0, 0, nil, nil),
			}, rep.Owners, scope+" owners")
		}

		// One owner, any letter case: only their assignments, from
		// history; the finding columns are zero.
		q := period
		q.Owner = "Alice@Example.com"
		rep, err = r.reader.GovernanceReport(ctx, q)
		require.NoError(t, err)
		require.Equal(t, steward.DailyFromHistory, rep.DailySource)
		requireRows(t, []steward.GovernanceRow{govRow("", 1, 0, 1, 1, days(4), days(4))}, []steward.GovernanceRow{rep.Totals}, "alice's totals")
		alice := map[int]dayCounts{}
		span(alice, 20, 17, dayCounts{0, 2, 0, 2, 0, 0, 0})
		span(alice, 16, 16, dayCounts{0, 1, 0, 1, 0, 1, 0})
		span(alice, 15, 11, dayCounts{0, 1, 0, 1, 0, 0, 0})
		span(alice, 10, 1, dayCounts{0, 1, 0, 0, 1, 0, 0})
		r.requireDaily(t, alice, 20, 1, rep.Daily)

		// Severity (any letter case): Low is f3 alone.
		q = period
		q.Severity = "low"
		rep, err = r.reader.GovernanceReport(ctx, q)
		require.NoError(t, err)
		require.Equal(t, steward.SeverityLow, rep.Filter.Severity)
		requireRows(t, []steward.GovernanceRow{govRow("", 0, 0, 0, 1, days(4), days(4))}, []steward.GovernanceRow{rep.Totals}, "Low totals")

		// The default period is the 90 days ending today, today included;
		// the series runs from the first finding's day to today's
		// provisional counts.
		rep, err = r.reader.GovernanceReport(ctx, apiclient.ReportQuery{})
		require.NoError(t, err)
		if rep.Filter.To.UTC() != r.today {
			t.Skip("the UTC day changed while the test ran")
		}
		require.Equal(t, r.day(89, 0), rep.Filter.From.UTC())
		require.Equal(t, 2, rep.Totals.Completed)
		r.requireDaily(t, all, 20, 0, rep.Daily)
		rep, err = r.reader.GovernanceReport(ctx, apiclient.ReportQuery{Since: "1d", Limit: 1})
		require.NoError(t, err)
		require.Equal(t, r.today, rep.Filter.From.UTC(), "1d is today")
		require.Equal(t, 1, rep.Filter.Limit)
		require.Len(t, rep.Owners, 1, "limit bounds the owners")
		require.Equal(t, 2, rep.OwnersTotal, "alice and =1+1 have active assignments; +1 completed none today")
		require.Len(t, rep.Scopes, 1, "and the scopes")
		require.Equal(t, 0, rep.Totals.Completed, "nothing was completed today")

		t.Run("csv", func(t *testing.T) { r.checkCSV(t, period) })
	})
}

// checkCSV reads every table as CSV and compares it with the JSON answer
// for the same query, cell by cell.
func (r *reportAPI) checkCSV(t *testing.T, period apiclient.ReportQuery) {
	rep, err := r.reader.GovernanceReport(t.Context(), period)
	require.NoError(t, err)
	query := "since=" + period.Since + "&until=" + period.Until
	for _, table := range []string{"owners", "scopes", "severities", "daily"} {
		resp, body := r.get(t, "", query+"&format=csv&table="+table, "")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
		require.Equal(t, "attachment; filename=governance-"+table+"-"+r.date(1)+".csv", resp.Header.Get("Content-Disposition"))
		require.False(t, bytes.HasPrefix(body, []byte("\xef\xbb\xbf")), "no byte order mark")
		require.True(t, bytes.HasSuffix(body, []byte("\r\n")))
		require.Equal(t, bytes.Count(body, []byte("\n")), bytes.Count(body, []byte("\r\n")), "every line ends in CRLF")
		records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		require.NoError(t, err)

		via, err := r.reader.GovernanceReportCSV(t.Context(), period, table)
		require.NoError(t, err)
		require.Equal(t, string(body), string(via), "the client reads the same CSV")

		if table == "daily" {
			require.Equal(t, []string{"date", "unhealthy", "assigned", "unassigned", "on_time", "overdue", "completed", "new", "provisional"}, records[0])
			require.Len(t, records, len(rep.Daily)+1)
			for i, d := range rep.Daily {
				require.Equal(t, []string{d.Date, itoa(int64(d.Unhealthy)), itoa(int64(d.Assigned)), itoa(int64(d.Unassigned)), itoa(int64(d.OnTime)),
					itoa(int64(d.Overdue)), itoa(int64(d.Completed)), itoa(int64(d.New)), strconv.FormatBool(d.Provisional)}, records[i+1])
			}
			continue
		}
		rows, key := rep.Owners, "owner"
		switch table {
		case "scopes":
			rows, key = rep.Scopes, "scope"
		case "severities":
			rows, key = rep.Severities, "severity"
		}
		require.Equal(t, []string{key, "assigned", "on_time", "overdue", "completed", "overdue_ratio", "mean_days_to_remediate", "p90_days_to_remediate"}, records[0])
		require.Len(t, records, len(rows)+1)
		for i, row := range rows {
			rec := records[i+1]
			wantKey := row.Key
			if strings.ContainsAny(wantKey[:1], "=+-@\t\r") {
				wantKey = "'" + wantKey // the formula guard
			}
			require.Equal(t, wantKey, rec[0])
			require.Equal(t, []string{itoa(int64(row.Assigned)), itoa(int64(row.OnTime)), itoa(int64(row.Overdue)), itoa(int64(row.Completed))}, rec[1:5])
			for j, want := range []*float64{&row.OverdueRatio, row.MeanDaysToRemediate, row.P90DaysToRemediate} {
				cell := rec[5+j]
				if want == nil {
					require.Empty(t, cell, "%s %s column %d: none completed", table, row.Key, 6+j)
					continue
				}
				require.Regexp(t, `^[0-9]+(\.[0-9]{1,4})?$`, cell, "plain, at most 4 decimals")
				got, err := strconv.ParseFloat(cell, 64)
				require.NoError(t, err)
				require.InDelta(t, *want, got, 0.00005, "%s %s column %d", table, row.Key, 6+j)
			}
		}
	}

	// By hand: the owners' CSV, with the formula guard on the owners a
	// spreadsheet would evaluate (=1+1 and +1).
	resp, body := r.get(t, "", query+"&format=CSV&table=owners", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "owner,assigned,on_time,overdue,completed,overdue_ratio,mean_days_to_remediate,p90_days_to_remediate\r\n"+
		"alice@example.com,1,0,1,1,1,4,4\r\n"+
		"'=1+1@example.com,1,1,0,0,0,,\r\n"+
		"'+1@example.com,0,0,0,1,0,7.96,7.96\r\n", string(body))

	// Accept: text/csv asks for CSV (the daily table) without format.
	resp, body = r.get(t, "", query, "application/json;q=0.5, text/csv")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(string(body), "date,unhealthy,"), "%s", body)
	resp, _ = r.get(t, "", query, "text/csv;q=0.5, application/json")
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "JSON preferred")
	resp, _ = r.get(t, "", query+"&format=json", "text/csv")
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "format wins over Accept")
}

// TestGovernanceReportScopedToken: a token limited to a subscription gets
// the report of its subscription, may narrow it, and is refused any scope
// outside it (403 naming scope).
func TestGovernanceReportScopedToken(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		r := newReportAPI(t, db)
		r.seed(t)
		token := authtest.ScopedToken(t, db, "s1-reader", steward.RoleReader, "/subscriptions/S1")
		c := r.client(t, token)
		period := apiclient.ReportQuery{Since: r.date(20), Until: r.date(1)}

		rep, err := c.GovernanceReport(t.Context(), period)
		require.NoError(t, err)
		require.Equal(t, steward.Scope("/subscriptions/s1"), rep.Filter.Scope, "the token's scope")
		// s1 holds A1 (overdue), A2 (on time) and A3 (completed); A4 and
		// +1@example.com are s2's.
		requireRows(t, []steward.GovernanceRow{govRow("", 2, 1, 1, 1, days(4), days(4))}, []steward.GovernanceRow{rep.Totals}, "totals")
		requireRows(t, []steward.GovernanceRow{
			govRow("alice@example.com", 1, 0, 1, 1, days(4), days(4)),
			govRow("=1+1@example.com", 1, 1, 0, 0, nil, nil),
		}, rep.Owners, "owners")
		requireRows(t, []steward.GovernanceRow{govRow("/subscriptions/s1", 2, 1, 1, 1, days(4), days(4))}, rep.Scopes, "scopes")
		require.Equal(t, 3, rep.Daily[0].Unhealthy, "f1, f2, f3 on the first day")

		csvBody, err := c.GovernanceReportCSV(t.Context(), period, "scopes")
		require.NoError(t, err)
		require.NotContains(t, string(csvBody), "/subscriptions/s2")

		q := period
		q.Scope = "/subscriptions/s1/resourceGroups/rg"
		rep, err = c.GovernanceReport(t.Context(), q)
		require.NoError(t, err)
		require.Equal(t, steward.Scope("/subscriptions/s1/resourcegroups/rg"), rep.Filter.Scope)
		require.Equal(t, 2, rep.Totals.Assigned)

		for _, scope := range []string{"/subscriptions/s2", "/", "/subscriptions"} {
			status, field, msg := r.refusal(t, token, "scope="+url.QueryEscape(scope))
			require.Equal(t, http.StatusForbidden, status, scope)
			require.Equal(t, "scope", field, scope)
			require.Contains(t, msg, "not inside this token's scope")
		}
		_, err = c.GovernanceReportCSV(t.Context(), apiclient.ReportQuery{Scope: "/subscriptions/s2"}, "owners")
		var apiErr *apiclient.Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusForbidden, apiErr.Status)
		require.Equal(t, "scope", apiErr.Field)
	})
}

// TestGovernanceReportRefusals: every bad parameter is refused with 400
// naming it, before anything is read.
func TestGovernanceReportRefusals(t *testing.T) {
	t.Parallel()
	r := newReportAPI(t, storetest.MustOpen(t))
	date := func(k int) string { return r.date(k) }
	tooLong := r.today.AddDate(0, 0, -steward.MaxReportDays).Format(steward.ReportDate) // one day more than allowed
	for _, c := range []struct{ query, field string }{
		{"since=yesterday", "since"},
		{"since=0d", "since"},
		{"since=-3d", "since"},
		{"since=" + strconv.Itoa(steward.MaxReportDays+1) + "d", "since"},
		{"since=2026-02-30", "since"},
		{"since=" + date(1) + "&until=" + date(2), "since"},
		{"since=" + tooLong, "since"},
		{"until=" + date(-1), "until"},
		{"until=soon", "until"},
		{"until=" + date(0) + "T00:00:00Z", "until"},
		{"severity=urgent", "severity"},
		{"severity=High&severity=Low", "severity"},
		{"cloud=mars", "cloud"},
		{"limit=0", "limit"},
		{"limit=ten", "limit"},
		{"limit=" + strconv.Itoa(steward.MaxReportLimit+1), "limit"},
		{"format=xml", "format"},
		{"format=csv&table=tickets", "table"},
		{"table=owners", "table"},
		{"format=json&table=daily", "table"},
		{"scope=/subscriptions/s1%09x", "scope"},
		{"owner=a%0Ab@example.com", "owner"},
		{"color=red", "color"},
		{"cursor=abc", "cursor"},
	} {
		status, field, msg := r.refusal(t, "", c.query)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", c.query, msg)
		require.Equal(t, c.field, field, "%s: %s", c.query, msg)
		require.NotEmpty(t, msg)
	}
	// The longest period allowed and a since in days with a capital D are
	// not refused for their parameters (the store may still be missing).
	for _, q := range []string{"since=" + strconv.Itoa(steward.MaxReportDays) + "d", "since=7D"} {
		resp, body := r.get(t, "", q, "")
		require.NotEqual(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", q, body)
	}
}
