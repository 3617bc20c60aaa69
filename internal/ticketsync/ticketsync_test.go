package ticketsync_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api/apitest"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/pgtest"
	"github.com/stewardhq/steward/internal/testlog"
)

const (
	emuPassword     = "admin-pw-must-not-leak"
	emuClientSecret = "client-secret-must-not-leak"
	owner           = "beth.anglin@example.com" // a user the emulator seeds
)

// syncBuffer collects logs from concurrent goroutines.
type syncBuffer = testlog.Buffer

type testBundle struct {
	emu    *snowemu.Emulator
	emuURL string
	srv    *server.Server
	client *apiclient.Client
	logs   *syncBuffer
	dbPath string
	token  string
	now    func() time.Time
}

type setupOpts struct {
	emu snowemu.Options
	// now replaces the store's clock (safe for concurrent use).
	now func() time.Time
}

func setup(t *testing.T, o setupOpts) *testBundle {
	t.Helper()
	logs := &syncBuffer{}
	o.emu.AdminPassword = emuPassword
	o.emu.ClientSecret = emuClientSecret
	emu := snowemu.New(o.emu, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = emu.Close() })
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	b := &testBundle{emu: emu, emuURL: hs.URL, logs: logs, dbPath: testDatabaseURL(t), now: o.now}
	b.start(t)
	return b
}

// testDatabaseURL is the database a test's Steward runs on: a SQLite file,
// or with STEWARD_TEST_STORE=postgres a fresh PostgreSQL database (pgtest),
// so the whole suite runs on either store (.ci/run runs it on both).
func testDatabaseURL(t *testing.T) string {
	t.Helper()
	switch os.Getenv("STEWARD_TEST_STORE") {
	case "", "sqlite":
		return filepath.Join(t.TempDir(), "steward.db")
	case "postgres":
		return pgtest.URL(t)
	default:
		t.Fatalf("STEWARD_TEST_STORE is sqlite or postgres, not %q", os.Getenv("STEWARD_TEST_STORE"))
		return ""
	}
}

// start runs Steward on the bundle's database (again, after stop: a restart).
func (b *testBundle) start(t *testing.T) {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = b.dbPath
	if store.IsPostgresURL(b.dbPath) {
		cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
		cfg.SpoolDir = filepath.Join(t.TempDir(), "spool")
	}
	cfg.ShutdownTimeout = 5 * time.Second
	// Everything down to debug goes to the buffer that the secret-leak test
	// greps; the test output shows it only when the test fails.
	logger := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(lastLines(b.logs.String(), 60))
		}
	})
	srv, err := server.New(t.Context(), cfg, logger)
	require.NoError(t, err)
	if b.now != nil {
		srv.DB.Now = b.now
	}
	require.NoError(t, srv.Start(t.Context()))
	b.srv = srv
	stopped := false
	t.Cleanup(func() {
		if !stopped && b.srv == srv {
			_ = srv.Shutdown(context.Background())
		}
	})
	if b.token == "" { // a restart keeps the token: it lives in the database
		b.token = authtest.Token(t, srv.DB, "secadmin@example.com", steward.RoleOwner)
	}
	b.client, err = apiclient.New(srv.URL(), b.token)
	require.NoError(t, err)
	// Every answer the tests receive is checked against /api/openapi.json.
	b.client.WithHTTPClient(apitest.Client(t))
}

func (b *testBundle) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = b.srv.Shutdown(ctx)
	b.srv = nil
}

// seed stores n unhealthy assessments under /subscriptions/s1 and returns
// their IDs.
func (b *testBundle) seed(t *testing.T, n int) []int64 {
	t.Helper()
	var rows []map[string]any
	for i := range n {
		rows = append(rows, map[string]any{
			"resource":       map[string]any{"id": fmt.Sprintf("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm%d", i), "cloud": "azure", "name": fmt.Sprintf("vm%d", i)},
			"recommendation": map[string]any{"key": "disk-encryption", "display_name": "Virtual machines should encrypt temp disks", "severity": "High", "remediation": "Enable encryption at host."},
			"status":         "Unhealthy",
		})
	}
	body, _ := json.Marshal(map[string]any{"assessments": rows})
	_, err := b.client.PostAssessments(t.Context(), bytes.NewReader(body))
	require.NoError(t, err)
	var ids []int64
	cursor := ""
	for {
		q := url.Values{"limit": {"500"}, "status": {"Unhealthy"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		page, err := b.client.ListAssessments(t.Context(), q)
		require.NoError(t, err)
		for _, a := range page.Items {
			ids = append(ids, a.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	require.Len(t, ids, n)
	return ids
}

func ptr[T any](v T) *T { return &v }

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (b *testBundle) integration(t *testing.T, mode string) *steward.Integration {
	t.Helper()
	req := apiclient.IntegrationRequest{
		Name: ptr("emulator"), Scope: ptr("/subscriptions/s1"), InstanceURL: ptr(b.emuURL), Local: ptr(true),
		AuthMode: ptr(mode), Username: ptr("admin"), Password: ptr(emuPassword),
		RequestsPerSecond: ptr(200.0),
	}
	if mode != "basic" {
		req.ClientID, req.ClientSecret = ptr("steward"), ptr(emuClientSecret)
	}
	in, err := b.client.CreateIntegration(t.Context(), req)
	require.NoError(t, err)
	return in
}

func (b *testBundle) assign(t *testing.T, assessmentID int64, ticketType string) *steward.Assignment {
	t.Helper()
	a, err := b.client.CreateAssignment(t.Context(), apiclient.AssignmentRequest{
		AssessmentID: assessmentID, Type: "servicenow", TicketType: ticketType, AssignedTo: owner,
		Caller: "fred.luddy@example.com", RemediationTimeframeDays: 30,
	})
	require.NoError(t, err)
	require.NotNil(t, a.Ticket)
	return a
}

// waitTickets waits until every listed assignment's ticket is created.
func (b *testBundle) waitTickets(t *testing.T, ids []int64, within time.Duration) map[int64]*apiclient.AssignmentDetail {
	t.Helper()
	out := map[int64]*apiclient.AssignmentDetail{}
	deadline := time.Now().Add(within)
	for _, id := range ids {
		for {
			d, err := b.client.GetAssignment(t.Context(), id)
			require.NoError(t, err)
			if d.Ticket != nil && d.Ticket.Status == steward.TicketCreated {
				out[id] = d
				break
			}
			if time.Now().After(deadline) {
				require.FailNow(t, "ticket not created", "assignment %d: %+v", id, d.Ticket)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return out
}

// requireOneRecordEach checks the invariant that matters: exactly one
// ServiceNow record per assignment, found by its correlation ID.
func (b *testBundle) requireOneRecordEach(t *testing.T, table string, tickets map[int64]*apiclient.AssignmentDetail) {
	t.Helper()
	for id, d := range tickets {
		recs := b.emu.FindByCorrelationID(table, d.Ticket.CorrelationID)
		require.Len(t, recs, 1, "assignment %d (%s) has %d records", id, d.Ticket.CorrelationID, len(recs))
		require.Equal(t, d.Ticket.SysID, recs[0]["sys_id"])
		require.Equal(t, d.Ticket.Number, recs[0]["number"])
	}
	require.Equal(t, len(tickets), b.emu.Count(table), "no stray records")
}

func TestCreateEachTicketType(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ids := b.seed(t, 3)
	b.integration(t, "oauth_password")

	bethID, err := b.emu.UserID(owner)
	require.NoError(t, err)
	for i, tt := range []string{"incident", "problem", "change_request"} {
		a := b.assign(t, ids[i], tt)
		require.Equal(t, steward.TicketPending, a.Ticket.Status)
		got := b.waitTickets(t, []int64{a.ID}, 20*time.Second)[a.ID]
		tk := got.Ticket
		require.Equal(t, tt, tk.Table)
		prefix := map[string]string{"incident": "INC", "problem": "PRB", "change_request": "CHG"}[tt]
		require.True(t, strings.HasPrefix(tk.Number, prefix), tk.Number)
		require.Contains(t, tk.Link, "/nav_to.do?uri="+tt+".do?sys_id="+tk.SysID)
		require.Equal(t, steward.TicketNew, tk.State)
		require.Equal(t, owner, tk.AssigneeEmail)

		rec, err := b.emu.Record(tt, tk.SysID)
		require.NoError(t, err)
		require.Equal(t, tk.CorrelationID, rec["correlation_id"])
		require.Equal(t, bethID, rec["assigned_to"])
		require.Contains(t, rec["short_description"], "Virtual machines should encrypt temp disks")
		require.Contains(t, rec["description"], "Enable encryption at host.", "the agent is told how to fix it")
		require.Contains(t, rec["description"], got.ResourceID, "and where")
		require.Contains(t, rec["description"], fmt.Sprintf("%s/api/v1/assignments/%d", b.srv.URL(), a.ID), "and links back to Steward at its bound address")
		if tt == "incident" {
			require.Equal(t, "2", rec["priority"], "High severity maps to impact 1, urgency 2")
		}
	}

	page, err := b.client.ListTickets(t.Context(), url.Values{"type": {"problem"}})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.Equal(t, "disk-encryption", page.Items[0].RecommendationKey)
	require.Equal(t, owner, page.Items[0].Owner)

	audit, err := b.client.ListAudit(t.Context(), url.Values{"action": {"ticket.created"}})
	require.NoError(t, err)
	require.Len(t, audit.Items, 3)
}

func TestScopeRefusal(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	body := `{"assessments":[{"resource":{"id":"/aws/accounts/123/regions/us-east-1/bucket"},"recommendation":{"key":"s3","severity":"Low"},"status":"Unhealthy"}]}`
	_, err := b.client.PostAssessments(t.Context(), strings.NewReader(body))
	require.NoError(t, err)
	page, err := b.client.ListAssessments(t.Context(), url.Values{})
	require.NoError(t, err)
	b.integration(t, "basic")
	_, err = b.client.CreateAssignment(t.Context(), apiclient.AssignmentRequest{AssessmentID: page.Items[0].ID, Type: "servicenow", TicketType: "incident", AssignedTo: owner, RemediationTimeframeDays: 7})
	apiErr, ok := err.(*apiclient.Error)
	require.True(t, ok, "%v", err)
	require.Equal(t, 400, apiErr.Status)
	require.Contains(t, apiErr.Message, "outside the scope of every integration")
	require.Contains(t, apiErr.Message, "/subscriptions/s1 (emulator)", "names the scopes that exist")
}

func TestIntegrationValidationMessages(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refusedURL := "http://" + closed.Addr().String()
	closed.Close()
	tlsSrv := httptest.NewTLSServer(b.emu) // a certificate no one trusts
	t.Cleanup(tlsSrv.Close)

	base := func() apiclient.IntegrationRequest {
		return apiclient.IntegrationRequest{Name: ptr("x"), Scope: ptr("/"), InstanceURL: ptr(b.emuURL), Local: ptr(true),
			AuthMode: ptr("oauth_password"), Username: ptr("admin"), Password: ptr(emuPassword), ClientID: ptr("steward"), ClientSecret: ptr(emuClientSecret)}
	}
	cases := []struct {
		name   string
		mutate func(r *apiclient.IntegrationRequest)
		want   string
	}{
		{"MalformedURL", func(r *apiclient.IntegrationRequest) { r.InstanceURL = ptr("not a url") }, "instance_url"},
		{"HTTPNotLocal", func(r *apiclient.IntegrationRequest) { r.Local = ptr(false) }, "local: true"},
		{"HTTPRemote", func(r *apiclient.IntegrationRequest) {
			r.InstanceURL, r.Local = ptr("http://example.service-now.com"), ptr(false)
		}, "https"},
		// DNS failures: TestCreateIntegrationUnknownHost, on a resolver
		// that sends no query off the machine.
		{"ConnectionRefused", func(r *apiclient.IntegrationRequest) { r.InstanceURL = ptr(refusedURL) }, "refused"},
		{"TLS", func(r *apiclient.IntegrationRequest) { r.InstanceURL = ptr(tlsSrv.URL) }, "certificate"}, // local: a non-local integration may not reach loopback at all
		{"BadPassword", func(r *apiclient.IntegrationRequest) { r.Password = ptr("wrong-password") }, "password"},
		{"BadClientSecret", func(r *apiclient.IntegrationRequest) { r.ClientSecret = ptr("wrong-secret") }, "client"},
		{"BadBasicPassword", func(r *apiclient.IntegrationRequest) {
			r.AuthMode, r.ClientID, r.ClientSecret, r.Password = ptr("basic"), nil, nil, ptr("wrong-password")
		}, "user name or password"},
		{"UnknownTable", func(r *apiclient.IntegrationRequest) {
			r.TicketTypes = map[steward.TicketType]steward.TicketMapping{steward.TicketTypeIncident: {Table: "u_no_such_table"}}
		}, "u_no_such_table"},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		req := base()
		tc.mutate(&req)
		_, err := b.client.CreateIntegration(t.Context(), req)
		apiErr, ok := err.(*apiclient.Error)
		require.True(t, ok, "%s: want an API error, got %v", tc.name, err)
		require.Equal(t, 400, apiErr.Status, "%s: %s", tc.name, apiErr.Message)
		require.Contains(t, strings.ToLower(apiErr.Message), strings.ToLower(tc.want), tc.name)
		require.NotContains(t, apiErr.Message, emuPassword, tc.name)
		require.NotContains(t, apiErr.Message, emuClientSecret, tc.name)
		require.NotContains(t, apiErr.Message, "wrong-password", tc.name)
		for other, msg := range seen {
			require.NotEqual(t, msg, apiErr.Message, "%s and %s must say different things", tc.name, other)
		}
		seen[tc.name] = apiErr.Message
	}
	list, err := b.client.ListIntegrations(t.Context())
	require.NoError(t, err)
	require.Empty(t, list.Items, "nothing invalid was saved")
}

func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	in := b.integration(t, "oauth_password")
	ids := b.seed(t, 1)
	a := b.assign(t, ids[0], "incident")
	b.waitTickets(t, []int64{a.ID}, 20*time.Second)
	// A failing validation logs and answers errors: they must not carry secrets either.
	_, err := b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{ClientSecret: ptr("another-secret-must-not-leak")})
	require.Error(t, err)

	// Tokens are credentials too: a second one is created and used, and
	// neither secret may appear anywhere either.
	issued, err := b.client.CreateToken(t.Context(), steward.TokenCreate{Name: "leak-check", Role: steward.RoleReader})
	require.NoError(t, err)
	var answers []string
	for _, path := range []string{"/api/v1/integrations", fmt.Sprintf("/api/v1/integrations/%d", in.ID), "/api/v1/audit", "/api/v1/tickets", "/metrics", "/api/v1/tokens", "/api/v1/me"} {
		raw, err := httpGet(b.srv.URL()+path, b.token)
		require.NoError(t, err)
		answers = append(answers, raw)
		raw, err = httpGet(b.srv.URL()+path, issued.Secret)
		require.NoError(t, err)
		answers = append(answers, raw)
	}
	// A refused token is logged: without its secret.
	_, err = httpGet(b.srv.URL()+"/api/v1/tickets", issued.Secret+"x")
	require.NoError(t, err)
	got, err := b.client.GetIntegration(t.Context(), in.ID)
	require.NoError(t, err)
	require.True(t, got.HasPassword)
	require.True(t, got.HasClientSecret)
	for _, text := range append(answers, b.logs.String()) {
		for _, s := range []string{emuPassword, emuClientSecret, "another-secret-must-not-leak", b.token, issued.Secret} {
			require.NotContains(t, text, s)
		}
	}
}

// TestExactlyOneTicketUnderFaults creates tickets while the instance
// misbehaves, then checks that after recovery every assignment has exactly
// one record and none is lost.
func TestExactlyOneTicketUnderFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		opts   snowemu.Options
		faults snowemu.Faults
	}{
		{name: "ServerErrors", faults: snowemu.Faults{Error500: 0.3, Error503: 0.2}},
		{name: "DroppedAfterCommit", faults: snowemu.Faults{DropAfterCommit: 0.4, Methods: []string{"POST"}}},
		{name: "DroppedBeforeSend", faults: snowemu.Faults{Drop: 0.3}},
		{name: "Storm429", faults: snowemu.Faults{Storm429: 0.6, StormRetryAfter: 1, StormDuration: 3 * time.Second}},
		{name: "TokenExpiry", opts: snowemu.Options{AccessTokenLifetime: 2 * time.Second}, faults: snowemu.Faults{Latency: 20 * time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const n = 20
			b := setup(t, setupOpts{emu: tc.opts})
			ids := b.seed(t, n)
			b.integration(t, "oauth_password")
			b.emu.SetFaults(tc.faults)
			var assignments []int64
			for _, id := range ids {
				assignments = append(assignments, b.assign(t, id, "incident").ID)
				if tc.name == "TokenExpiry" {
					time.Sleep(150 * time.Millisecond) // spread the batch over several token lifetimes
				}
			}
			// Recovery: the instance heals; everything must get through.
			time.Sleep(500 * time.Millisecond)
			b.emu.SetFaults(snowemu.Faults{})
			tickets := b.waitTickets(t, assignments, 90*time.Second)
			b.requireOneRecordEach(t, "incident", tickets)
		})
	}
}

// TestRestartBetweenSendAndCommit stops Steward after ServiceNow committed a
// record but before Steward could record it (the answer is still being
// written slowly), then starts Steward again: the retry must find the
// record by correlation ID instead of creating a second one.
func TestRestartBetweenSendAndCommit(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ids := b.seed(t, 1)
	b.integration(t, "basic")
	b.emu.SetFaults(snowemu.Faults{SlowBodyChunk: 8, SlowBodyDelay: 300 * time.Millisecond, Methods: []string{"POST"}, PathPrefix: "/api/now/table/incident"})
	a := b.assign(t, ids[0], "incident")
	require.Eventually(t, func() bool { return b.emu.Count("incident") == 1 }, 20*time.Second, 10*time.Millisecond)
	b.stop(t, 100*time.Millisecond) // the worker is cut off mid-answer

	b.emu.SetFaults(snowemu.Faults{})
	b.start(t)
	tickets := b.waitTickets(t, []int64{a.ID}, 60*time.Second)
	b.requireOneRecordEach(t, "incident", tickets)
	require.GreaterOrEqual(t, tickets[a.ID].Ticket.Attempts, 2, "the record was found on a later attempt")
}

func TestPermanentFailureAndUserRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ids := b.seed(t, 1)
	b.integration(t, "basic")
	a, err := b.client.CreateAssignment(t.Context(), apiclient.AssignmentRequest{
		AssessmentID: ids[0], Type: "servicenow", TicketType: "incident", AssignedTo: "nobody@example.com", RemediationTimeframeDays: 7,
	})
	require.NoError(t, err)
	var d *apiclient.AssignmentDetail
	require.Eventually(t, func() bool {
		d, err = b.client.GetAssignment(t.Context(), a.ID)
		require.NoError(t, err)
		return d.Ticket.Status == steward.TicketFailed
	}, 20*time.Second, 50*time.Millisecond)
	require.Contains(t, d.Ticket.Error, "nobody@example.com", "the reason names what to fix")
	require.Zero(t, b.emu.Count("incident"))

	// The user fixes the cause (the user now exists in ServiceNow) and retries.
	_, err = b.emu.AddUser(snowemu.UserSpec{UserName: "nobody", FirstName: "No", LastName: "Body", Email: "nobody@example.com"})
	require.NoError(t, err)
	_, err = b.client.RetryTicket(t.Context(), a.ID)
	require.NoError(t, err)
	tickets := b.waitTickets(t, []int64{a.ID}, 20*time.Second)
	b.requireOneRecordEach(t, "incident", tickets)

	_, err = b.client.RetryTicket(t.Context(), a.ID)
	apiErr, ok := err.(*apiclient.Error)
	require.True(t, ok)
	require.Equal(t, 409, apiErr.Status, "only failed tickets can be retried")
}

func TestDeleteIntegration(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ids := b.seed(t, 5)
	in := b.integration(t, "basic")
	var assignments []int64
	for _, id := range ids {
		assignments = append(assignments, b.assign(t, id, "incident").ID)
	}
	b.waitTickets(t, assignments, 30*time.Second)

	p, err := b.client.IntegrationDeletePreview(t.Context(), in.ID)
	require.NoError(t, err)
	require.Equal(t, 5, p.ActiveAssignments)
	require.Equal(t, 5, p.Tickets)

	_, err = b.client.DeleteIntegration(t.Context(), in.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := b.client.GetIntegration(t.Context(), in.ID)
		apiErr, ok := err.(*apiclient.Error)
		return ok && apiErr.Status == 404
	}, 20*time.Second, 50*time.Millisecond)
	for _, id := range assignments {
		d, err := b.client.GetAssignment(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, steward.AssignmentRemoved, d.State)
		require.Equal(t, steward.ActionRemoved, d.History[len(d.History)-1].Action, "kept in history")
		require.NotEmpty(t, d.Ticket.Number, "the ticket link stays visible")
	}
	require.Equal(t, 5, b.emu.Count("incident"), "tickets stay in ServiceNow")
	audit, err := b.client.ListAudit(t.Context(), url.Values{"integration": {fmt.Sprint(in.ID)}, "action": {"integration."}})
	require.NoError(t, err)
	var actions []string
	for _, e := range audit.Items {
		actions = append(actions, e.Action)
	}
	require.Contains(t, actions, "integration.created")
	require.Contains(t, actions, "integration.delete_requested")
	require.Contains(t, actions, "integration.deleted")
}
