//go:build storm

// The storm of issue 11 takes about 7.5 minutes on 2 cores per store, too
// long for every CI run: it runs on demand, like a benchmark,
//
//	go test -tags storm -count=1 -run TestRuleStormSurvivesSIGKILL -v ./cmd/steward/
//
// on SQLite, and on PostgreSQL too when STEWARD_TEST_POSTGRES_URL is set
// (STEWARD_STORM_SIZE=3000 makes a short run); its figures are in
// docs/benchmarks.md.

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// stormSize is the number of assessments TestRuleStormSurvivesSIGKILL
// turns Unhealthy at once: the storm issue 11 asks for.
const stormSize = 50_000

const (
	stormCap = 300 // the rule's ticket.daily_cap
	stormRPS = 20  // the integration's requests_per_second
)

// TestRuleStormSurvivesSIGKILL imports a storm of newly Unhealthy
// assessments that a ServiceNow rule with a daily cap matches, kills the
// real `steward serve` process with SIGKILL while the tickets are being
// sent, starts it again on the same database, and requires, once things
// settle: one assignment per assessment, each made by the rule; exactly cap
// records in the emulator, one per correlation ID and each the ticket of
// one assignment; every other ticket deferred to the next UTC day or later;
// nothing failed; and the emulator never saw more requests than the
// integration's rate limit allows.
//
// It runs on SQLite and on PostgreSQL (with STEWARD_TEST_POSTGRES_URL),
// one after the other; STEWARD_STORM_SIZE makes a smaller storm.
func TestRuleStormSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills real server processes")
	}
	for _, b := range storetest.Backends {
		t.Run(string(b), func(t *testing.T) { ruleStormSurvivesSIGKILL(t, b) })
	}
}

func ruleStormSurvivesSIGKILL(t *testing.T, b storetest.Backend) {
	n := stormSize
	if v := os.Getenv("STEWARD_STORM_SIZE"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err, "STEWARD_STORM_SIZE")
	}
	emu := snowemu.New(snowemu.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = emu.Close() })
	seen := &requestClock{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.tick(r.Method + " " + r.URL.Path)
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)

	dir := t.TempDir()
	db := newDatabase(t, b, dir)
	addr := freeAddr(t)
	logs := &syncBuffer{}
	start := func() *exec.Cmd { return startServe(t, db, addr, "warn", logs) }
	server := start()

	var out, errOut bytes.Buffer
	tokens := newRootCommand(&out, &errOut)
	tokens.SetArgs([]string{"tokens", "create", "--db", db.url, "--name", "storm-test", "--role", "owner", "-o", "json"})
	require.NoError(t, tokens.ExecuteContext(t.Context()), errOut.String())
	var issued steward.IssuedToken
	require.NoError(t, json.Unmarshal(out.Bytes(), &issued))
	c, err := apiclient.New("http://"+addr, issued.Secret)
	require.NoError(t, err)
	ctx := t.Context()

	str := func(s string) *string { return &s }
	_, err = c.CreateIntegration(ctx, apiclient.IntegrationRequest{Name: str("emu"), Scope: str("/"), InstanceURL: str(hs.URL),
		Local: ptrTo(true), AuthMode: str("basic"), Username: str("admin"), Password: str("admin"),
		RequestsPerSecond: ptrTo(float64(stormRPS))})
	require.NoError(t, err)

	rules := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rules, []byte(fmt.Sprintf(`rules:
  - name: storm
    priority: 10
    scope: /subscriptions/storm
    when:
      - {severity: [High, Critical]}
    owner: {email: beth.anglin@example.com}
    due_in_days: 14
    ticket: {integration: emu, type: incident, daily_cap: %d}
`, stormCap)), 0o600))
	out.Reset()
	errOut.Reset()
	apply := newRootCommand(&out, &errOut)
	apply.SetArgs([]string{"--server", "http://" + addr, "--token", issued.Secret, "rules", "apply", "-f", rules, "--yes"})
	require.NoError(t, apply.ExecuteContext(ctx), errOut.String())
	require.Contains(t, out.String(), "Applied: 1 created")

	// The storm: n assessments of 1,000 resources, none seen before, all
	// Unhealthy, in one Steward JSON Lines file.
	file := filepath.Join(dir, "storm.jsonl")
	writeStorm(t, file, n)
	f, err := os.Open(file)
	require.NoError(t, err)
	st, err := f.Stat()
	require.NoError(t, err)
	began := time.Now()
	imp, err := c.UploadImport(ctx, f, st.Size(), "storm.jsonl", "steward")
	f.Close()
	require.NoError(t, err)

	// Kill while tickets are being sent: some in ServiceNow, not all.
	require.Eventually(t, func() bool { return emu.Count("incident") >= stormCap/3 }, 5*time.Minute, 5*time.Millisecond,
		"no tickets sent: %s", logs)
	killedAt := time.Now()
	require.NoError(t, server.Process.Kill()) // SIGKILL: no shutdown, jobs stay "running"
	_, _ = server.Process.Wait()
	atKill := emu.Count("incident")
	t.Logf("storm of %d: SIGKILL %v after the upload, with %d of %d tickets in the emulator", n, killedAt.Sub(began).Round(time.Millisecond), atKill, stormCap)
	require.Less(t, atKill, stormCap, "the storm was over before the kill; nothing was tested")

	start()
	restarted := time.Now()
	var capReached, importDone time.Duration
	require.Eventually(t, func() bool {
		if capReached == 0 && emu.Count("incident") == stormCap {
			capReached = time.Since(restarted)
			t.Logf("cap reached %v after restart", capReached)
		}
		got, err := c.GetImport(ctx, imp.ID)
		if err != nil || got.State != "succeeded" {
			return false
		}
		if importDone == 0 {
			importDone = time.Since(restarted)
			t.Logf("import done %v after restart: %+v", importDone, got.Result.RuleAssignments)
		}
		for _, s := range []string{"pending", "retrying"} {
			p, err := c.ListTickets(ctx, url.Values{"status": {s}, "limit": {"1"}})
			if err != nil || len(p.Items) > 0 {
				return false
			}
		}
		return true
	}, 5*time.Minute, 200*time.Millisecond, "storm did not settle after the restart: %s", logs)
	settled := time.Since(restarted)
	got, err := c.GetImport(ctx, imp.ID)
	require.NoError(t, err)
	require.Empty(t, got.Error)

	// Every assessment has exactly one assignment, made by the rule.
	assignments := map[int64]steward.Assignment{}
	perAssessment := map[int64]int{}
	q := url.Values{"state": {"all"}, "limit": {"500"}}
	for {
		p, err := c.ListAssignments(ctx, q)
		require.NoError(t, err)
		for _, a := range p.Items {
			require.NotZero(t, a.RuleID, "assignment %d was not made by the rule", a.ID)
			assignments[a.ID] = a
			perAssessment[a.AssessmentID]++
		}
		if p.NextCursor == "" {
			break
		}
		q.Set("cursor", p.NextCursor)
	}
	require.Len(t, assignments, n, "one assignment per assessment")
	require.Len(t, perAssessment, n, "every assessment assigned")

	// Exactly cap tickets sent, once each; the rest deferred; none failed.
	tomorrow := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	byCorrelation := map[string]steward.TicketView{}
	status := map[steward.TicketStatus]int{}
	q = url.Values{"limit": {"500"}}
	for {
		p, err := c.ListTickets(ctx, q)
		require.NoError(t, err)
		for _, tk := range p.Items {
			_, dup := byCorrelation[tk.CorrelationID]
			require.False(t, dup, "correlation ID %s on two tickets", tk.CorrelationID)
			byCorrelation[tk.CorrelationID] = tk
			require.Contains(t, assignments, tk.AssignmentID)
			status[tk.Status]++
			if tk.Status == steward.TicketDeferred {
				require.NotNil(t, tk.DeferredUntil, "ticket of assignment %d", tk.AssignmentID)
				require.False(t, tk.DeferredUntil.Before(tomorrow), "ticket of assignment %d deferred to %v", tk.AssignmentID, tk.DeferredUntil)
			}
		}
		if p.NextCursor == "" {
			break
		}
		q.Set("cursor", p.NextCursor)
	}
	require.Len(t, byCorrelation, n, "one ticket per assignment")
	require.Equal(t, map[steward.TicketStatus]int{steward.TicketCreated: stormCap, steward.TicketDeferred: n - stormCap}, status)

	records := emu.Records("incident")
	require.Len(t, records, stormCap, "exactly the cap in ServiceNow")
	numbers := map[string]bool{}
	for _, r := range records {
		cid := fmt.Sprint(r["correlation_id"])
		tk, ok := byCorrelation[cid]
		require.True(t, ok, "record %v has no ticket in Steward", r["number"])
		require.Equal(t, steward.TicketCreated, tk.Status)
		require.Equal(t, tk.Number, r["number"])
		require.False(t, numbers[cid], "two records for correlation ID %s", cid)
		numbers[cid] = true
	}

	// The integration's limit is a token bucket of stormRPS a second with a
	// burst of stormRPS, per process: no second may see more than twice it.
	peak, rate := seen.stats()
	b1, a1 := seen.peakSplit(time.Second, killedAt)
	b5, a5 := seen.peakSplit(5*time.Second, killedAt)
	t.Logf("peaks before/after the kill: 1 s %d/%d (bound %d), 5 s %d/%d (bound %d)", b1, a1, 2*stormRPS, b5, a5, 6*stormRPS)
	t.Logf("restarted at %v", restarted.Format("15:04:05.000"))
	require.LessOrEqual(t, max(b5, a5), stormRPS+5*stormRPS, "requests in five seconds of one process")
	t.Logf("storm of %d, cap %d: %d requests, peak %d in one second, %.0f/s while sending (limit %d/s); "+
		"cap reached %v after the restart, settled %v after it (%v in all)",
		n, stormCap, seen.total(), peak, rate, stormRPS, capReached.Round(time.Millisecond), settled.Round(time.Millisecond),
		time.Since(began).Round(time.Millisecond))
}

// peakSplit is peakIn of the requests before at and of those after it.
func (c *requestClock) peakSplit(d time.Duration, at time.Time) (before, after int) {
	c.mu.Lock()
	var b, a requestClock
	for _, tm := range c.times {
		if tm.Before(at) {
			b.times = append(b.times, tm)
		} else {
			a.times = append(a.times, tm)
		}
	}
	c.mu.Unlock()
	return b.peakIn(d), a.peakIn(d)
}
