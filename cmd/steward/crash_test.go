package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestHelperServe is not a test: TestKilledBetweenSendAndCommit runs this
// test binary again with STEWARD_HELPER_SERVE set, to get a real `steward
// serve` process it can kill -9.
func TestHelperServe(t *testing.T) {
	if os.Getenv("STEWARD_HELPER_SERVE") == "" {
		t.Skip("helper process for TestKilledBetweenSendAndCommit")
	}
	root := newRootCommand(os.Stdout, os.Stderr)
	root.SetArgs(strings.Fields(os.Getenv("STEWARD_HELPER_SERVE")))
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "helper serve:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestKilledBetweenSendAndCommit kills a real steward serve process with
// SIGKILL after ServiceNow committed a ticket but before Steward recorded
// it, starts another on the same database, and requires the ticket to be
// found (not created twice) within seconds on SQLite, where the new
// process owns the file and retries what it finds running at once, and
// within a minute on PostgreSQL, where the job leader waits for the dead
// process's heartbeat to go stale (30 s) before retrying its jobs.
func TestKilledBetweenSendAndCommit(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts and kills real server processes")
	}
	for _, b := range storetest.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			killedBetweenSendAndCommit(t, b)
		})
	}
}

func killedBetweenSendAndCommit(t *testing.T, b storetest.Backend) {
	emu := snowemu.New(snowemu.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = emu.Close() })
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)

	dir := t.TempDir()
	db := newDatabase(t, b, dir)
	addr := freeAddr(t)
	logs := &syncBuffer{}
	start := func() *exec.Cmd { return startServe(t, db, addr, "info", logs) }
	server := start()
	// The first token, made the way an operator would: on the database
	// file, while the server runs.
	var out, errOut bytes.Buffer
	tokens := newRootCommand(&out, &errOut)
	tokens.SetArgs([]string{"tokens", "create", "--db", db.url, "--name", "crash-test", "--role", "owner", "-o", "json"})
	require.NoError(t, tokens.ExecuteContext(t.Context()), errOut.String())
	var issued steward.IssuedToken
	require.NoError(t, json.Unmarshal(out.Bytes(), &issued))
	c, err := apiclient.New("http://"+addr, issued.Secret)
	require.NoError(t, err)
	ctx := t.Context()

	_, err = c.PostAssessments(ctx, strings.NewReader(`{"assessments":[{"resource":{"id":"/subscriptions/s1/vm1","cloud":"azure"},"recommendation":{"key":"k","display_name":"Disks should be encrypted","severity":"High"},"status":"Unhealthy"}]}`))
	require.NoError(t, err)
	page, err := c.ListAssessments(ctx, nil)
	require.NoError(t, err)
	str := func(s string) *string { return &s }
	_, err = c.CreateIntegration(ctx, apiclient.IntegrationRequest{Name: str("emu"), Scope: str("/"), InstanceURL: str(hs.URL),
		Local: ptrTo(true), AuthMode: str("basic"), Username: str("admin"), Password: str("admin")})
	require.NoError(t, err)

	// ServiceNow commits the record, then sends its answer very slowly.
	emu.SetFaults(snowemu.Faults{SlowBodyChunk: 4, SlowBodyDelay: time.Second, Methods: []string{"POST"}, PathPrefix: "/api/now/table/incident"})
	a, err := c.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: page.Items[0].ID, Type: "servicenow",
		TicketType: "incident", AssignedTo: "beth.anglin@example.com", RemediationTimeframeDays: 7})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return emu.Count("incident") == 1 }, 30*time.Second, 10*time.Millisecond)

	require.NoError(t, server.Process.Kill()) // SIGKILL: no shutdown, the job stays "running"
	_, _ = server.Process.Wait()
	emu.SetFaults(snowemu.Faults{})

	start()
	restarted := time.Now()
	var d *apiclient.AssignmentDetail
	require.Eventually(t, func() bool {
		d, err = c.GetAssignment(ctx, a.ID)
		return err == nil && d.Ticket.Status == steward.TicketCreated
	}, 90*time.Second, 100*time.Millisecond, "ticket not recovered after the crash: %s", logs)
	t.Logf("%s: ticket recovered %v after the restart", b, time.Since(restarted).Round(time.Millisecond))
	recs := emu.FindByCorrelationID("incident", d.Ticket.CorrelationID)
	require.Len(t, recs, 1, "exactly one record for the assignment")
	require.Equal(t, 1, emu.Count("incident"))
	require.Equal(t, recs[0]["number"], d.Ticket.Number)
	require.GreaterOrEqual(t, d.Ticket.Attempts, 2)
	require.Contains(t, logs.String(), "jobs left running by a stopped process are retried")
	if p := db.password(); p != "" {
		require.NotContains(t, logs.String(), p, "the database password in the logs")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func ptrTo[T any](v T) *T { return &v }
