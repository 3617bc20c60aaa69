package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/sample"
	"github.com/stewardhq/steward/internal/snowemu"
)

// cli runs steward verbs in-process against one server with one token.
type cli struct {
	t      *testing.T
	server string
	token  string
}

// run returns stdout and the error as main would print it.
func (c cli) run(args ...string) (string, error) {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(&stdout, &stderr)
	cmd.SetArgs(append([]string{"--server", c.server, "--token", c.token}, args...))
	ctx, cancel := context.WithTimeout(c.t.Context(), 2*time.Minute) // a sync under -race on a loaded machine can take tens of seconds
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	if err != nil {
		err = fmtError{userMessage(err)}
	}
	return stdout.String(), err
}

func (c cli) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	require.NoError(c.t, err, "steward %s", strings.Join(args, " "))
	return out
}

// fmtError is an error as the user reads it (main prints userMessage).
type fmtError struct{ msg string }

func (e fmtError) Error() string { return e.msg }

// offline is a CLI whose server does not exist: a verb that sends a
// request fails with a connection error, so a test can tell that an error
// came before any request.
func offline(t *testing.T) cli {
	return cli{t: t, server: "http://127.0.0.1:1", token: "unused"}
}

// ticketEnv is a server with the bundled findings imported and an
// integration (ID 1) on a ServiceNow emulator.
type ticketEnv struct {
	cli
	emu *snowemu.Emulator
}

func newTicketEnv(t *testing.T) ticketEnv {
	t.Helper()
	emu := snowemu.New(snowemu.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = emu.Close() })
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	srv := startServer(t)
	c := cli{t: t, server: srv.URL(), token: authtest.Token(t, srv.DB, "secadmin", steward.RoleSecurityAdmin)}
	dir := t.TempDir()
	for _, f := range sample.Files() {
		path := filepath.Join(dir, f.Name)
		require.NoError(t, os.WriteFile(path, f.Data, 0o600))
		c.must("import", path)
	}
	c.must("integrations", "create", "--name", "emu", "--scope", "/", "--instance-url", hs.URL, "--local",
		"--auth-mode", "basic", "--username", "admin", "--password", "admin")
	return ticketEnv{cli: c, emu: emu}
}

// unhealthy returns the ID of an unhealthy assessment.
func (e ticketEnv) unhealthy(n int) int64 {
	var page struct {
		Items []struct {
			ID int64 `json:"id"`
		} `json:"items"`
	}
	require.NoError(e.t, json.Unmarshal([]byte(e.must("assessments", "list", "--status", "Unhealthy", "-o", "json")), &page))
	require.Greater(e.t, len(page.Items), n)
	return page.Items[n].ID
}

// ticket waits for the ticket of an assignment to leave pending.
func (e ticketEnv) ticket(assignment int64, want steward.TicketStatus) *steward.Ticket {
	var d struct {
		Ticket *steward.Ticket `json:"ticket"`
	}
	require.Eventually(e.t, func() bool {
		require.NoError(e.t, json.Unmarshal([]byte(e.must("assignments", "show", itoa(assignment), "-o", "json")), &d))
		return d.Ticket != nil && d.Ticket.Status == want
	}, 20*time.Second, 50*time.Millisecond)
	return d.Ticket
}

// TestImportDirectory: a directory is refused before any request, saying
// what to pass instead; the glob it suggests imports each file.
func TestImportDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range sample.Files() {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o600))
	}
	_, err := offline(t).run("import", dir)
	require.EqualError(t, err, dir+" is a directory; import takes files: pass a file, or its files with a shell glob, e.g. steward import "+dir+"/*.json")

	// One bad path among several fails before the first upload too.
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 3)
	_, err = offline(t).run("import", files[0], dir)
	require.ErrorContains(t, err, "is a directory")

	_, err = offline(t).run("import")
	require.EqualError(t, err, "import needs a findings file, e.g. steward import prowler-output.ocsf.json")

	srv := startServer(t)
	c := cli{t: t, server: srv.URL(), token: authtest.Token(t, srv.DB, "importer", steward.RoleContributor)}
	out := c.must(append([]string{"import"}, files...)...)
	require.Equal(t, 3, strings.Count(out, "succeeded"), out)
}

// TestImportSARIFVersionFirst: Trivy's SARIF starts with "version"; it
// must be called SARIF, not read as a Steward document of a bad version,
// and imported as such.
func TestImportSARIFVersionFirst(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := cli{t: t, server: srv.URL(), token: authtest.Token(t, srv.DB, "importer", steward.RoleContributor)}
	out := c.must("import", "../../testdata/sarif/trivy_alpine-310.sarif")
	require.Contains(t, out, "succeeded", out)
	require.Contains(t, out, "sarif", out)
	require.NotContains(t, out, "unsupported version")
}

// TestMissingArgumentsSayWhich: a verb run without its ID says which ID
// it needs, before any request.
func TestMissingArgumentsSayWhich(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"assign"}, "assign needs the assessment ID (see 'steward recommendations show KEY')"},
		{[]string{"assignments", "show"}, "assignments show needs the assignment ID (see 'steward assignments list')"},
		{[]string{"assignments", "update"}, "assignments update needs the assignment ID"},
		{[]string{"assignments", "remove"}, "assignments remove needs the assignment ID"},
		{[]string{"recommendations", "show"}, "recommendations show needs the recommendation key"},
		{[]string{"integrations", "sync"}, "integrations sync needs the integration ID"},
		{[]string{"assign", "1", "2"}, "assign takes one argument, the assessment ID (see 'steward recommendations show KEY'); got 2: 1 2"},
		{[]string{"integrations", "status", "1", "2"}, "integrations status takes at most one integration ID; got 2: 1 2"},
		{[]string{"version", "x"}, "version takes no arguments"},
	} {
		_, err := offline(t).run(tc.args...)
		require.ErrorContains(t, err, tc.want, "steward %s", strings.Join(tc.args, " "))
	}
}

// TestErrorsNameFlags: an error about what the user typed names the flag
// to use, not only the API field behind it.
func TestErrorsNameFlags(t *testing.T) {
	t.Parallel()
	e := newTicketEnv(t)
	id := itoa(e.unhealthy(0))
	_, err := e.run("assign", id, "--owner", "alice@example.com")
	require.ErrorContains(t, err, "(CLI: --days or --due)")
	_, err = e.run("assign", id, "--owner", "alice@example.com", "--days", "7", "--due", "2030-01-01")
	require.ErrorContains(t, err, "not both (CLI: --days or --due)")
	_, err = e.run("assign", id, "--owner", "alice@example.com", "--days", "7", "--eta", "2030-01-01")
	require.ErrorContains(t, err, "(CLI: --justification)")

	hs := httptest.NewServer(snowemu.New(snowemu.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(hs.Close)
	_, err = e.run("integrations", "create", "--name", "emu2", "--scope", "/aws", "--instance-url", hs.URL,
		"--auth-mode", "basic", "--username", "admin", "--password", "admin")
	require.ErrorContains(t, err, "set local: true (CLI: --local) if this is the emulator")
}

// TestAuditDetailsReadable: audit details print as key=value text, not
// URL-encoded; a change reads from→to.
func TestAuditDetailsReadable(t *testing.T) {
	t.Parallel()
	e := newTicketEnv(t)
	var page struct {
		Items []steward.AuditEvent `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.must("audit", "--action", "integration.created", "-o", "json")), &page))
	require.Len(t, page.Items, 1)
	got := keyValues(page.Items[0].Details)
	require.Contains(t, got, "instance_url=http://127.0.0.1:")
	require.NotContains(t, got, "%3A")
	table := e.must("audit", "--action", "integration.created")
	require.Contains(t, table, "instance_url=http://127.0.0.1:", "the table prints the same readable text")
	require.NotContains(t, table, "%3A")

	require.Equal(t, `assignee=""→beth.anglin@example.com mod_count=1000000 note="two words" state=New→Resolved tables=incident,problem via=poll x.a=1 x.b=true`,
		keyValues(map[string]any{
			"via": "poll", "mod_count": float64(1e6), "note": "two words", "tables": []any{"incident", "problem"},
			"state":    map[string]any{"from": "New", "to": "Resolved"},
			"assignee": map[string]any{"from": "", "to": "beth.anglin@example.com"},
			"x":        map[string]any{"b": true, "a": float64(1)},
		}))
	require.Equal(t, "-", keyValues(nil))
}

// TestSyncWaitReportsPoll: when the poll of 'integrations sync --wait'
// ends an assignment, the report says so, not only the reconcile's counts.
func TestSyncWaitReportsPoll(t *testing.T) {
	t.Parallel()
	e := newTicketEnv(t)
	out := e.must("assign", itoa(e.unhealthy(0)), "--ticket", "incident", "--owner", "beth.anglin@example.com", "--days", "7", "-o", "json")
	var a steward.Assignment
	require.NoError(t, json.Unmarshal([]byte(out), &a))
	tk := e.ticket(a.ID, steward.TicketCreated)

	_, err := e.emu.SetState("incident", tk.SysID, snowemu.StateChange{State: "Resolved", User: "beth.anglin"})
	require.NoError(t, err)
	out = e.must("integrations", "sync", "1", "--wait")
	require.Regexp(t, `Poll applied:\s+1 change\n`, out)
	require.Contains(t, out, tk.Number+" (assignment "+itoa(a.ID)+"): assignment=completed state=New→Resolved")
	require.Contains(t, out, "Checked:")

	var rep struct {
		PollApplied   []steward.AuditEvent `json:"poll_applied"`
		LastReconcile struct {
			Checked int `json:"checked"`
		} `json:"last_reconcile"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.must("integrations", "sync", "1", "--wait", "-o", "json")), &rep))
	require.Empty(t, rep.PollApplied, "nothing changed since the last sync")
	require.Regexp(t, `Poll applied:\s+no changes\n`, e.must("integrations", "sync", "1", "--wait"))
}

// TestFailedTicketMessages: a ticket ServiceNow refused shows its status
// and ServiceNow's reason, and how to retry.
func TestFailedTicketMessages(t *testing.T) {
	t.Parallel()
	e := newTicketEnv(t)
	out := e.must("assign", itoa(e.unhealthy(0)), "--ticket", "problem", "--owner", "nobody@example.com", "--days", "7", "-o", "json")
	var a steward.Assignment
	require.NoError(t, json.Unmarshal([]byte(out), &a))
	tk := e.ticket(a.ID, steward.TicketFailed)
	require.NotEmpty(t, tk.Error)

	show := e.must("assignments", "show", itoa(a.ID))
	require.NotContains(t, show, "Ticket: - -")
	require.Contains(t, show, "Ticket: not created yet in problem: failed after 1 attempt\n")
	require.Contains(t, show, "  reason: "+tk.Error+"\n")
	require.Contains(t, show, "nobody@example.com", "the reason names what to fix")
	require.Contains(t, show, "retry once that is fixed: steward tickets retry "+itoa(a.ID))

	// The ticket list keeps the reason out of its STATUS column and prints
	// it whole under the table.
	var page apiclient.Page[apiclient.TicketView]
	require.NoError(t, json.Unmarshal([]byte(e.must("tickets", "list", "--status", "failed", "-o", "json")), &page))
	require.Len(t, page.Items, 1)
	var reasons bytes.Buffer
	ticketReasons(&reasons, page.Items)
	require.Equal(t, "\nReasons:\n  assignment "+itoa(a.ID)+" (failed): "+tk.Error+"\n", reasons.String())
	reasons.Reset()
	page.Items[0].Status, page.Items[0].Error = steward.TicketCreated, ""
	ticketReasons(&reasons, page.Items)
	require.Empty(t, reasons.String(), "nothing to say about a created ticket")
}

// TestVersionFromBuildInfo: the version names the commit, its date and a
// modified tree, never Go's "(devel)".
func TestVersionFromBuildInfo(t *testing.T) {
	t.Parallel()
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123abcd4567ef0123abcd4567ef0123abcd4567"},
		{Key: "vcs.time", Value: "2026-11-28T16:07:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	devel := &debug.BuildInfo{Main: debug.Module{Path: "github.com/stewardhq/steward", Version: "(devel)"}, Settings: vcs}
	require.Equal(t, "dev 0123abcd4567 (2026-11-28, modified)", versionString("", devel))
	require.Equal(t, "v1.2.0 0123abcd4567 (2026-11-28, modified)", versionString("v1.2.0", devel))
	clean := &debug.BuildInfo{Main: devel.Main, Settings: vcs[:3]}
	require.Equal(t, "dev 0123abcd4567 (2026-11-28)", versionString("", clean))
	tagged := &debug.BuildInfo{Main: debug.Module{Path: "github.com/stewardhq/steward", Version: "v1.3.0"}}
	require.Equal(t, "v1.3.0", versionString("", tagged))
	require.Equal(t, "dev", versionString("", nil))

	out := offline(t).must("version")
	require.True(t, strings.HasPrefix(out, "steward "), out)
	require.NotContains(t, out, "(devel)")
}

// TestStatusFlagHelp: recommendations' --status help lists assessment
// statuses only; tickets' lists ticket statuses.
func TestStatusFlagHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args      []string
		want, not string
	}{
		{[]string{"recommendations", "list"}, "Healthy, Unhealthy or NotApplicable", "pending"},
		{[]string{"assessments", "list"}, "Healthy, Unhealthy or NotApplicable", "pending"},
		{[]string{"tickets", "list"}, "pending, created, retrying or failed", "Unhealthy"},
	} {
		cmd := newRootCommand(io.Discard, io.Discard)
		sub, _, err := cmd.Find(tc.args)
		require.NoError(t, err)
		usage := sub.Flags().Lookup("status").Usage
		require.Contains(t, usage, tc.want, tc.args)
		require.NotContains(t, usage, tc.not, tc.args)
	}
}
