package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/source/stewardjson"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestReportCommand runs `steward report` against a real server (the store
// STEWARD_TEST_STORE names) seeded through the API, in its three outputs.
//
// The seed, all today: f1 and f2 (High, subscription s1) and f3 (Low,
// subscription s2) Unhealthy; f1 → alice, due yesterday (overdue); f2 →
// -bob, due in 30 days (on time); f3 → carol, then f3 is fixed, completing
// carol's assignment at once (0 days to remediate).
func TestReportCommand(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	ctx := t.Context()
	seeder, err := apiclient.New(srv.URL(), authtest.Token(t, srv.DB, "seeder", steward.RoleContributor))
	require.NoError(t, err)
	reader := authtest.Token(t, srv.DB, "report-reader", steward.RoleReader)

	obs := func(rec, res string, sev steward.Severity, status steward.AssessmentStatus) {
		t.Helper()
		var body bytes.Buffer
		require.NoError(t, json.NewEncoder(&body).Encode(stewardjson.FromObservation(
			storetest.WithSeverity(storetest.Observation(rec, res, status), sev))))
		_, err := seeder.PostAssessments(ctx, &body)
		require.NoError(t, err)
	}
	assign := func(rec, res, owner string, due time.Time) {
		t.Helper()
		page, err := seeder.ListAssessments(ctx, url.Values{"recommendation": {rec}, "resource": {res}})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		_, err = seeder.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: page.Items[0].ID, Owner: owner,
			DueDate: due.Format(time.RFC3339), Reason: "report test"})
		require.NoError(t, err)
	}
	const (
		vm1 = "/subscriptions/s1/resourceGroups/rg/providers/x/vm1"
		vm2 = "/subscriptions/s1/resourceGroups/rg/providers/x/vm2"
		vm3 = "/subscriptions/s2/resourceGroups/rg/providers/x/vm3"
	)
	obs("r-high", vm1, steward.SeverityHigh, steward.StatusUnhealthy)
	obs("r-high", vm2, steward.SeverityHigh, steward.StatusUnhealthy)
	obs("r-low", vm3, steward.SeverityLow, steward.StatusUnhealthy)
	now := time.Now().UTC()
	assign("r-high", vm1, "alice@example.com", now.Add(-24*time.Hour))
	assign("r-high", vm2, "-bob@example.com", now.Add(30*24*time.Hour))
	assign("r-low", vm3, "carol@example.com", now.Add(10*24*time.Hour))
	obs("r-low", vm3, steward.SeverityLow, steward.StatusHealthy)
	// Today's provisional counts as the periodic job refreshes them.
	_, err = srv.DB.TakeGovernanceSnapshots(ctx, time.Now().UTC(), 0)
	require.NoError(t, err)

	run := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		cmd := newRootCommand(&stdout, &stderr)
		cmd.SetArgs(append([]string{"--server", srv.URL(), "--token", reader}, args...))
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		err := cmd.ExecuteContext(ctx)
		return stdout.String(), err
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		require.NoError(t, err, "steward %s", strings.Join(args, " "))
		return out
	}

	// -o json is the API's report.
	var rep steward.GovernanceReport
	require.NoError(t, json.Unmarshal([]byte(mustRun("report", "-o", "json")), &rep))
	require.Equal(t, 2, rep.Totals.Assigned)
	require.Equal(t, 1, rep.Totals.OnTime)
	require.Equal(t, 1, rep.Totals.Overdue)
	require.Equal(t, 1, rep.Totals.Completed)
	require.Equal(t, 0.5, rep.Totals.OverdueRatio)
	require.Len(t, rep.Owners, 3)
	require.Equal(t, "alice@example.com", rep.Owners[0].Key, "most overdue first")
	require.Equal(t, "-bob@example.com", rep.Owners[1].Key)
	require.Equal(t, "carol@example.com", rep.Owners[2].Key)
	require.NotEmpty(t, rep.Daily)

	// The table: totals, the three tables with percentages, one-decimal
	// days and "—" for none, and the daily series' last days.
	table := mustRun("report")
	lines := strings.Split(table, "\n")
	require.Contains(t, lines[0], "Governance report for all scopes, "+rep.Filter.From.Format(time.DateOnly)+" to "+rep.Filter.To.Format(time.DateOnly)+" (90 days)")
	require.Contains(t, table, "Assigned now:             2 (1 on time, 1 overdue: 50.0%)\n")
	require.Contains(t, table, "Completed in the period:  1\n")
	require.Contains(t, table, "Days to remediate:        mean 0.0, p90 0.0\n")
	fields := func(prefix string) []string {
		t.Helper()
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return strings.Fields(l)
			}
		}
		t.Fatalf("no line starts with %q in:\n%s", prefix, table)
		return nil
	}
	require.Equal(t, []string{"OWNER", "ASSIGNED", "ON", "TIME", "OVERDUE", "OVERDUE", "%", "COMPLETED", "MEAN", "DAYS", "P90", "DAYS"}, fields("OWNER"))
	require.Equal(t, []string{"alice@example.com", "1", "0", "1", "100.0%", "0", "—", "—"}, fields("alice@"))
	require.Equal(t, []string{"-bob@example.com", "1", "1", "0", "0.0%", "0", "—", "—"}, fields("-bob@"))
	require.Equal(t, []string{"carol@example.com", "0", "0", "0", "—", "1", "0.0", "0.0"}, fields("carol@"))
	require.Equal(t, []string{"/subscriptions/s1", "2", "1", "1", "50.0%", "0", "—", "—"}, fields("/subscriptions/s1"))
	require.Equal(t, []string{"/subscriptions/s2", "0", "0", "0", "—", "1", "0.0", "0.0"}, fields("/subscriptions/s2"))
	require.Equal(t, []string{"High", "2", "1", "1", "50.0%", "0", "—", "—"}, fields("High"))
	require.Equal(t, []string{"Low", "0", "0", "0", "—", "1", "0.0", "0.0"}, fields("Low"))
	// Columns are aligned: every owner row's second column starts where
	// the header's does.
	col := strings.Index(lines[indexOf(lines, "OWNER")], "ASSIGNED")
	require.Equal(t, "1", lines[indexOf(lines, "alice@")][col:col+1])
	require.Equal(t, "0", lines[indexOf(lines, "carol@")][col:col+1])
	n := len(rep.Daily)
	require.Contains(t, table, "Daily, the last "+itoa(int64(min(n, reportDailyShown)))+" of "+itoa(int64(n))+" day")
	require.Contains(t, table, "(from the daily snapshots;")
	// Today, so far: f1, f2 unhealthy and assigned (one overdue), f3 new
	// and fixed, carol's completed; all three became unhealthy today.
	today := time.Now().UTC().Format(time.DateOnly)
	if rep.Filter.To.Format(time.DateOnly) == today {
		require.Equal(t, []string{today, "*", "2", "2", "0", "1", "1", "1", "3"}, fields(today))
		require.Contains(t, table, "* today, so far")
	}

	// An owner's report comes from history and says so.
	owner := mustRun("report", "--owner", "ALICE@example.com", "--since", "7d")
	require.Contains(t, owner, "Only owner ALICE@example.com")
	require.Contains(t, owner, "(7 days)")
	require.Contains(t, owner, "(from status and assignment history;")
	require.Contains(t, owner, "unhealthy, unassigned and new stay 0")

	// -o csv: the owners table by default, formula guard and all.
	records, err := csv.NewReader(strings.NewReader(mustRun("report", "-o", "csv"))).ReadAll()
	require.NoError(t, err)
	require.Equal(t, [][]string{
		{"owner", "assigned", "on_time", "overdue", "completed", "overdue_ratio", "mean_days_to_remediate", "p90_days_to_remediate"},
		{"alice@example.com", "1", "0", "1", "0", "1", "", ""},
		{"'-bob@example.com", "1", "1", "0", "0", "0", "", ""},
		{"carol@example.com", "0", "0", "0", "1", "0", "0", "0"},
	}, records)
	daily := mustRun("report", "-o", "csv", "--table", "daily", "--scope", "/subscriptions/s1")
	require.True(t, strings.HasPrefix(daily, "date,unhealthy,assigned,unassigned,on_time,overdue,completed,new,provisional\r\n"), daily)

	// Mistakes are refused, naming what is wrong.
	_, err = run("report", "--table", "owners")
	require.ErrorContains(t, err, "--table chooses the table -o csv prints")
	_, err = run("report", "-o", "yaml")
	require.ErrorContains(t, err, `output "yaml" is not table, json or csv`)
	_, err = run("report", "--since", "last-week")
	require.ErrorContains(t, err, `since "last-week"`)
	var apiErr *apiclient.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "since", apiErr.Field)
	_, err = run("report", "-o", "csv", "--table", "tickets")
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "table", apiErr.Field)
}

// indexOf is the index of the first line starting with prefix.
func indexOf(lines []string, prefix string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}
