package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/testlog"
)

// startSeededUI is startUI with history seeded before the server starts:
// the history is written at chosen past instants through the store's
// clock (db.Now), which must not change while the server's jobs run. The
// governance_snapshot job then runs at start over the seeded history, as
// it would on a server upgraded onto an estate with years of it.
func startSeededUI(t *testing.T, seed func(db *store.DB)) *uiBundle {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL, cfg.SecretKey, cfg.SpoolDir = storetest.ServerDatabase(t, t.TempDir())
	cfg.ShutdownTimeout = 10 * time.Second
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewJSONHandler(io.MultiWriter(logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(t.Context(), cfg, logger)
	require.NoError(t, err)
	seed(srv.DB)
	srv.DB.Now = time.Now
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Shutdown(context.Background())) })
	token := authtest.Token(t, srv.DB, "admin@example.com", steward.RoleOwner)
	client, err := apiclient.New(srv.URL(), token)
	require.NoError(t, err)
	return &uiBundle{srv: srv, url: srv.URL(), token: token, client: client, logs: logs}
}

// The seeded estate: 30 findings, finding i first reported Unhealthy at
// noon 60-2i days ago (60, 58, …, 2), on subscription prod, dev or shared
// (i mod 3), of recommendation recs[i mod 5]. All but every sixth (i mod 6
// = 5: 5, 11, 17, 23, 29) is assigned the next day to owners[i mod 4], due
// 14 days later for even i and 7 for odd. Ten are fixed (reported Healthy,
// which completes the assignment) 3+i days after assignment: i in 0, 1, 3,
// 4, 6, 7, 9, 10, 12, 13 (i < 15, i mod 3 ≠ 2).
var (
	govRecs = []struct {
		key string
		sev steward.Severity
	}{
		{"vm-disk-encryption", steward.SeverityHigh},
		{"nsg-open-management-ports", steward.SeverityHigh},
		{"storage-secure-transfer", steward.SeverityMedium},
		{"sql-auditing", steward.SeverityLow},
		{"keyvault-purge-protection", steward.SeverityMedium},
	}
	govSubs   = []string{"prod", "dev", "shared"}
	govOwners = []string{"alice@example.com", "bob@example.com", "carol@example.com",
		"dave.from.the.platform.engineering.team@example.com"}
)

func govAssigned(i int) bool { return i%6 != 5 }
func govFixed(i int) bool    { return i < 15 && i%3 != 2 && govAssigned(i) }

func govObservation(i int, status steward.AssessmentStatus) steward.Observation {
	sub := govSubs[i%3]
	res := fmt.Sprintf("/subscriptions/%s/resourceGroups/rg-%s/providers/Microsoft.Compute/virtualMachines/vm-%02d", sub, sub, i)
	rec := govRecs[i%5]
	return storetest.WithSeverity(storetest.Observation(rec.key, res, status), rec.sev)
}

// seedGovernance writes the estate's history, each event at noon of its
// day (every one at least a day ago, so "now" is after all of it).
func seedGovernance(t *testing.T, db *store.DB) {
	midnight := time.Now().UTC().Truncate(24 * time.Hour)
	noon := func(daysAgo int) time.Time { return midnight.AddDate(0, 0, -daysAgo).Add(12 * time.Hour) }
	type event struct {
		at time.Time
		do func()
	}
	var events []event
	for i := range 30 {
		seen := 60 - 2*i
		events = append(events, event{noon(seen), func() { storetest.Apply(t, db, noon(seen), govObservation(i, steward.StatusUnhealthy)) }})
		if !govAssigned(i) {
			continue
		}
		created := seen - 1
		dueDays := 7
		if i%2 == 0 {
			dueDays = 14
		}
		events = append(events, event{noon(created).Add(time.Minute), func() {
			o := govObservation(i, "")
			found, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{RecommendationKey: o.Recommendation.Key, ResourceID: o.Resource.ID})
			require.NoError(t, err)
			require.Len(t, found, 1)
			storetest.Assignment(t, db, found[0].ID, govOwners[i%4], noon(created-dueDays))
		}})
		if govFixed(i) {
			fixed := created - (3 + i)
			events = append(events, event{noon(fixed).Add(time.Minute), func() {
				res := storetest.Apply(t, db, noon(fixed).Add(time.Minute), govObservation(i, steward.StatusHealthy))
				require.Len(t, res.CompletedAssignments, 1, "finding %d's fix completes its assignment", i)
			}})
		}
	}
	// In time order, with the store's clock at each event.
	for len(events) > 0 {
		k := 0
		for j := range events {
			if events[j].at.Before(events[k].at) {
				k = j
			}
		}
		at := events[k].at
		db.Now = func() time.Time { return at }
		events[k].do()
		events = append(events[:k], events[k+1:]...)
	}
	// The overview's unhealthy table reads the summaries ingest's job
	// keeps; this history did not come through ingest.
	var keys []string
	for _, r := range govRecs {
		keys = append(keys, r.key)
	}
	require.NoError(t, db.RecomputeRecommendationSummaries(t.Context(), keys))
}

// tableOf reads a chart's data table in the browser: a row's cells joined
// by "|".
func tableOf(t *testing.T, ctx context.Context, id string) []string {
	t.Helper()
	var rows []string
	run(t, ctx, chromedp.Evaluate(fmt.Sprintf(`[...document.querySelectorAll("#%s-data tbody tr")].map(tr => [...tr.children].map(c => c.textContent.trim()).join("|"))`, id), &rows))
	return rows
}

// requirePresent fails unless the current page has every selector.
func requirePresent(t *testing.T, ctx context.Context, sels ...string) {
	t.Helper()
	for _, sel := range sels {
		var ok bool
		run(t, ctx, chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q) !== null`, sel), &ok))
		if !ok {
			var section string
			run(t, ctx, chromedp.Evaluate(`document.querySelector("main").innerText`, &section))
			t.Fatalf("the page has no %s; it reads:\n%s", sel, section)
		}
	}
}

func daysText(d *float64) string {
	if d == nil {
		return "none"
	}
	return strconv.FormatFloat(*d, 'f', -1, 64)
}

// The API's answer, written as the charts' tables write it.
func apiTrend(rep *steward.GovernanceReport, owner bool) []string {
	var out []string
	for _, d := range rep.Daily {
		if owner {
			out = append(out, fmt.Sprintf("%s|%d|%d", d.Date, d.Assigned, d.Overdue))
		} else {
			out = append(out, fmt.Sprintf("%s|%d|%d|%d", d.Date, d.Unhealthy, d.Assigned, d.Overdue))
		}
	}
	return out
}

func apiOwners(rep *steward.GovernanceReport) []string {
	var out []string
	for _, r := range rep.Owners {
		if r.Assigned > 0 && len(out) < 10 {
			out = append(out, fmt.Sprintf("%s|%d|%d|%d", r.Key, r.Overdue, r.OnTime, r.Assigned))
		}
	}
	return out
}

func apiSeverities(rep *steward.GovernanceReport) []string {
	var out []string
	for _, r := range rep.Severities {
		out = append(out, fmt.Sprintf("%s|%d|%s|%s", r.Key, r.Completed, daysText(r.MeanDaysToRemediate), daysText(r.P90DaysToRemediate)))
	}
	return out
}

// TestGovernanceChartsInBrowser: over the seeded estate, once the
// governance_snapshot job has run at start, the overview draws the trend,
// the owner chart and time to remediate; their data tables hold what GET
// /api/v1/reports/governance answers the same user, which is what the
// seeded history gives by hand. A scope-limited sign-in sees its scope's
// report; an owner sees "Your work" first, an identity owning nothing
// does not.
func TestGovernanceChartsInBrowser(t *testing.T) {
	b := startSeededUI(t, func(db *store.DB) { seedGovernance(t, db) })
	ctx := t.Context()
	query := apiclient.ReportQuery{Since: "90d", Limit: 10}
	today := time.Now().UTC().Format(steward.ReportDate)
	seen := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -60).Format(steward.ReportDate)

	// The job ran at start: it took the ended days back to the first
	// finding's, 60 days ago, from history, and today's provisional counts.
	var rep *steward.GovernanceReport
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var err error
		rep, err = b.client.GovernanceReport(ctx, query)
		require.NoError(t, err)
		if n := len(rep.Daily); n > 0 && rep.Daily[0].Date == seen && rep.Daily[n-1].Date == today {
			break
		}
		require.True(t, time.Now().Before(deadline), "no snapshots from %s to today within a minute: %+v", seen, rep.Daily)
	}
	require.Equal(t, steward.DailyFromSnapshots, rep.DailySource)
	require.Len(t, rep.Daily, 61)

	// By hand from the plan (seedGovernance): active and not fixed are
	// i = 2, 8, 14, 15, 16, 18–22, 24–28 (15); of them due within the next
	// days (assigned 59-2i days ago, due 14 or 7 days later, so still
	// ahead): 24 (due in 3 days), 26, 27, 28: 11 overdue. Unhealthy: 30 less
	// the 10 fixed.
	last := rep.Daily[len(rep.Daily)-1]
	require.Equal(t, []int{20, 15, 11}, []int{last.Unhealthy, last.Assigned, last.Overdue}, "today: %+v", last)
	// Owners, most overdue first (then most active): carol has 2, 14, 18,
	// 22 overdue and 26 on time; alice 8, 16, 20 overdue, 24, 28 on time;
	// dave 15, 19 overdue, 27 on time; bob 21, 25 overdue.
	require.Equal(t, []string{
		"carol@example.com|4|1|5",
		"alice@example.com|3|2|5",
		govOwners[3] + "|2|1|3",
		"bob@example.com|2|0|2",
	}, apiOwners(rep))
	// Fixed after 3+i days: High (recs 0, 1) i = 0, 1, 6, 10: 3, 4, 9, 13
	// days, mean 7.25, p90 the 4th of 4 (ceil 3.6): 13. Medium (2, 4)
	// i = 4, 7, 9, 12: 7, 10, 12, 15, mean 11, p90 15. Low (3) i = 3, 13:
	// 6, 16, mean 11, p90 the 2nd (ceil 1.8): 16.
	require.Equal(t, []string{"High|4|7.25|13", "Medium|4|11|15", "Low|2|11|16"}, apiSeverities(rep))

	bc := newBrowser(t)
	signIn(t, bc, b, b.token)
	// The page is rendered whole: wait for it, then read (a missing chart
	// fails at once rather than at the browser's deadline).
	run(t, bc, chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(`#governance`, chromedp.ByID))
	requirePresent(t, bc, `#trend svg[role="img"]`, `#owners svg[role="img"]`, `#severities svg[role="img"]`)
	require.Equal(t, apiTrend(rep, false), tableOf(t, bc, "trend"))
	require.Equal(t, apiOwners(rep), tableOf(t, bc, "owners"))
	require.Equal(t, apiSeverities(rep), tableOf(t, bc, "severities"))
	var n struct{ Lines, Bars, Hits int }
	run(t, bc, chromedp.Evaluate(`({
		Lines: document.querySelectorAll("#trend svg[role=img] polyline").length,
		Bars: document.querySelectorAll("#owners svg[role=img] rect.bar-overdue, #owners svg[role=img] rect.bar-ontime").length,
		Hits: document.querySelectorAll("#owners .chart-hits a[href^='/assignments?']").length})`, &n))
	// Three series, each one run of 61 days; 4 owners with overdue, 3 of
	// them with some on time; each bar part links to its list.
	require.Equal(t, struct{ Lines, Bars, Hits int }{3, 7, 7}, n)
	var absent int
	run(t, bc, chromedp.Evaluate(`document.querySelectorAll("#governance-error, #trend-empty, #your-work").length`, &absent))
	require.Zero(t, absent, "no error, no empty trend, and no 'Your work': admin@example.com owns nothing")
	checkA11y(t, bc, "overview with governance charts")
	screenshot(t, bc, "governance-overview")

	// A bar goes to the owner's overdue assignments.
	var href string
	run(t, bc, chromedp.AttributeValue(`#owners .chart-hits a`, "href", &href, nil, chromedp.ByQuery))
	require.Equal(t, "/assignments?overdue=true&owner=carol%40example.com", href)
	run(t, bc, chromedp.Navigate(b.url+href), chromedp.WaitVisible(`#assignments`, chromedp.ByID))
	var listed int
	run(t, bc, chromedp.Evaluate(`document.querySelectorAll("#assignments > tbody > tr").length`, &listed))
	require.Equal(t, 4, listed, "carol's 4 overdue assignments at %s", href)

	// On a phone the charts shrink to the screen.
	var overflow bool
	run(t, bc, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(b.url+"/"),
		chromedp.WaitVisible(`#governance`, chromedp.ByID),
		chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth`, &overflow))
	require.False(t, overflow, "the overview's charts are wider than a phone's screen")
	run(t, bc, chromedp.EmulateViewport(1280, 900))

	// Alice, signed in under her own address, sees her work first: 5
	// open (8, 16, 20, 24, 28), 3 overdue, 3 completed (0, 4, 12), and her
	// trend, as the API answers her.
	aliceToken := b.tokenFor(t, "alice@example.com", steward.RoleReader)
	alice, err := apiclient.New(b.url, aliceToken)
	require.NoError(t, err)
	mineRep, err := alice.GovernanceReport(ctx, apiclient.ReportQuery{Owner: "alice@example.com", Since: "90d", Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []int{5, 3, 3}, []int{mineRep.Totals.Assigned, mineRep.Totals.Overdue, mineRep.Totals.Completed})
	ac := newBrowser(t)
	signIn(t, ac, b, aliceToken)
	run(t, ac, chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(`#governance`, chromedp.ByID))
	requirePresent(t, ac, `#your-work`, `#my-trend svg[role="img"]`)
	var first string
	run(t, ac, chromedp.Evaluate(`document.querySelector("main h1").nextElementSibling.id`, &first))
	require.Equal(t, "your-work", first, "'Your work' comes first")
	require.Equal(t, "5", textOf(t, ac, "#my-active-count"))
	require.Equal(t, "3", textOf(t, ac, "#my-overdue-count"))
	require.Equal(t, "3", textOf(t, ac, "#my-completed-count"))
	require.Equal(t, apiTrend(mineRep, true), tableOf(t, ac, "my-trend"))
	require.NotEmpty(t, mineRep.Daily)
	lastMine := mineRep.Daily[len(mineRep.Daily)-1]
	require.Equal(t, []int{5, 3}, []int{lastMine.Assigned, lastMine.Overdue})
	checkA11y(t, ac, "overview with 'Your work'")
	screenshot(t, ac, "governance-owner")

	// A reader limited to subscription prod (i mod 3 = 0) gets prod's
	// report: its active ones are 15, 18, 21, 24, 27 (overdue but 24 and
	// 27), and the tables say so as the API does.
	prodToken := authtest.ScopedToken(t, b.srv.DB, "prod-viewer", steward.RoleReader, "/subscriptions/prod")
	prod, err := apiclient.New(b.url, prodToken)
	require.NoError(t, err)
	prodRep, err := prod.GovernanceReport(ctx, query)
	require.NoError(t, err)
	require.Equal(t, []int{5, 3}, []int{prodRep.Totals.Assigned, prodRep.Totals.Overdue})
	pc := newBrowser(t)
	signIn(t, pc, b, prodToken)
	run(t, pc, chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(`#governance`, chromedp.ByID))
	requirePresent(t, pc, `#trend svg[role="img"]`, `#owners svg[role="img"]`)
	require.Equal(t, apiTrend(prodRep, false), tableOf(t, pc, "trend"))
	require.Equal(t, apiOwners(prodRep), tableOf(t, pc, "owners"))
	require.NotEqual(t, apiOwners(rep), apiOwners(prodRep))
	require.Equal(t, apiSeverities(prodRep), tableOf(t, pc, "severities"))
}

// TestGovernanceChartsEmpty: before anything is assigned the overview
// says there is nothing to chart rather than drawing empty axes.
func TestGovernanceChartsEmpty(t *testing.T) {
	b := startUI(t)
	ctx := newBrowser(t)
	signIn(t, ctx, b, b.token)
	run(t, ctx, chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(`#governance`, chromedp.ByID))
	// Read at once rather than waited for: the page is rendered whole.
	var got struct{ Section, Owners, Severities string }
	var charts int
	run(t, ctx, chromedp.Evaluate(`({
		Section: document.querySelector("#governance").textContent,
		Owners: document.querySelector("#owners-empty")?.textContent ?? "",
		Severities: document.querySelector("#severities-empty")?.textContent ?? ""})`, &got),
		chromedp.Evaluate(`document.querySelectorAll("#owners, #severities, #your-work, #governance-error").length`, &charts))
	require.Contains(t, got.Owners, "No active assignments", "the section: %s", got.Section)
	require.Contains(t, got.Severities, "No assignment was completed")
	require.Zero(t, charts, "no chart, no error: %s", got.Section)
	require.Contains(t, got.Section, "Trend")
}

// TestGovernanceOwnerViewOIDC: a person signed in through OpenID Connect
// (named "oidc:<email>") sees "Your work" for the assignments owned by
// that address: here the one of two assigned to alice, due in 30 days
// (open 1, overdue 0); bob's does not count.
func TestGovernanceOwnerViewOIDC(t *testing.T) {
	idp := newTestIdP(t)
	b := startOIDCUI(t, idp)
	postFindings(t, b.client,
		finding("vm-encryption", "High", "/subscriptions/s1/resourceGroups/a/providers/Microsoft.Compute/virtualMachines/vm1", "azure", "Unhealthy"),
		finding("vm-encryption", "High", "/subscriptions/s1/resourceGroups/a/providers/Microsoft.Compute/virtualMachines/vm2", "azure", "Unhealthy"))
	list, err := b.client.ListAssessments(t.Context(), url.Values{"status": {"Unhealthy"}})
	require.NoError(t, err)
	require.Len(t, list.Items, 2)
	for i, owner := range []string{"alice@example.com", "bob@example.com"} {
		_, err := b.client.CreateAssignment(t.Context(), apiclient.AssignmentRequest{AssessmentID: list.Items[i].ID, Owner: owner, RemediationTimeframeDays: 30})
		require.NoError(t, err)
	}

	idp.setUser(map[string]any{"email": "Alice@Example.com", "email_verified": true, "groups": []string{"engineering"}})
	c, status, body, _ := oidcSignIn(t, b, "/")
	require.Equal(t, http.StatusOK, status, body)
	_, body, _ = getHTML(t, c, b.url+"/")
	require.Contains(t, body, `<span class="who">oidc:alice@example.com`)
	require.Contains(t, body, `id="your-work"`)
	require.Regexp(t, `id="my-active-count">1<`, body)
	require.Regexp(t, `id="my-overdue-count">0<`, body)
	require.Contains(t, body, `href="/assignments?owner=alice%40example.com"`)
}
