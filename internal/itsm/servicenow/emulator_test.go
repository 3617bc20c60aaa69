package servicenow_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/itsm/itsmtest"
	"github.com/stewardhq/steward/internal/itsm/servicenow"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/snowemu"
)

// emuBundle is a client talking OAuth to an emulator over loopback HTTP.
type emuBundle struct {
	emu    *snowemu.Emulator
	srv    *httptest.Server
	client *servicenow.Client
	logs   *syncBuffer
	cfg    servicenow.Config
}

// secrets are what no error or log line may show.
var secrets = []string{testPassword, testSecret, testUser + ":" + testPassword}

func setupEmu(t *testing.T, opts snowemu.Options, mutate func(*servicenow.Config)) *emuBundle {
	t.Helper()
	opts.ClientID, opts.ClientSecret = testClientID, testSecret
	opts.NoSeed = true
	if opts.Seed == 0 {
		opts.Seed = 42
	}
	emu := snowemu.New(opts, nil)
	t.Cleanup(func() { _ = emu.Close() })
	for _, u := range []snowemu.UserSpec{
		{UserName: testUser, FirstName: "Steward", LastName: "Integration", Email: "steward@example.com", Password: testPassword, Roles: []string{"itil"}},
		{UserName: "beth.anglin", FirstName: "Beth", LastName: "Anglin", Email: "beth.anglin@example.com", Password: "x", Roles: []string{"itil"}},
		{UserName: "don.goodliffe", FirstName: "Don", LastName: "Goodliffe", Email: "don.goodliffe@example.com", Password: "x", Roles: []string{"itil"}},
		{UserName: "abel.tuter", FirstName: "Abel", LastName: "Tuter", Email: "abel.tuter@example.com", Password: "x"},
	} {
		_, err := emu.AddUser(u)
		require.NoError(t, err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	cfg := fastConfig(srv.URL)
	cfg.ClientID, cfg.ClientSecret = testClientID, secret.New(testSecret)
	if mutate != nil {
		mutate(&cfg)
	}
	logger, logs := newLogger(t)
	c, err := servicenow.New(cfg, logger)
	require.NoError(t, err)
	b := &emuBundle{emu: emu, srv: srv, client: c, logs: logs, cfg: cfg}
	t.Cleanup(func() { itsmtest.AssertNoSecretLeak(t, logs.String(), secrets...) })
	return b
}

func req(typ steward.TicketType, corr string) itsm.CreateRequest {
	return itsm.CreateRequest{
		Type: typ, CorrelationID: corr, CorrelationDisplay: "steward",
		ShortDescription: "Endpoint protection should be installed on vm1",
		Description:      "Steward found an unhealthy assessment.",
		AssignedToEmail:  "beth.anglin@example.com", CallerEmail: "abel.tuter@example.com",
		Impact: "2", Urgency: "2", FirstAttempt: true,
	}
}

func TestEmulator_CreateEachType(t *testing.T) {
	t.Parallel()

	tests := []struct {
		typ    steward.TicketType
		prefix string
		state  string
		caller string
	}{
		{steward.TicketTypeIncident, "INC", "1", "caller_id"},
		{steward.TicketTypeProblem, "PRB", "101", ""},
		{steward.TicketTypeChangeRequest, "CHG", "-5", "requested_by"},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			t.Parallel()
			b := setupEmu(t, snowemu.Options{}, nil)
			corr := "steward-" + string(tt.typ)

			got, err := b.client.CreateTicket(t.Context(), req(tt.typ, corr))
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(got.Number, tt.prefix), got.Number)
			require.Equal(t, tt.state, got.RawState)
			require.Equal(t, steward.TicketNew, got.State)
			require.Equal(t, "New", got.StateLabel)
			require.Equal(t, corr, got.CorrelationID)
			require.Equal(t, "beth.anglin@example.com", got.AssignedToEmail)
			require.Len(t, got.SysID, 32)
			require.Equal(t, b.srv.URL+"/nav_to.do?uri="+string(tt.typ)+".do?sys_id="+got.SysID, got.Link)

			recs := b.emu.FindByCorrelationID(string(tt.typ), corr)
			require.Len(t, recs, 1)
			require.Equal(t, "steward", recs[0]["correlation_display"])
			require.Equal(t, got.AssignedToSysID, recs[0]["assigned_to"])
			if tt.caller != "" {
				require.NotEmpty(t, recs[0][tt.caller], "caller written as a sys_id")
			}

			// A later attempt finds the record instead of creating another.
			again := req(tt.typ, corr)
			again.FirstAttempt = false
			dup, err := b.client.CreateTicket(t.Context(), again)
			require.NoError(t, err)
			require.Equal(t, got.SysID, dup.SysID)
			require.Len(t, b.emu.FindByCorrelationID(string(tt.typ), corr), 1)

			read, err := b.client.Ticket(t.Context(), got.Ref())
			require.NoError(t, err)
			require.Equal(t, got.Number, read.Number)
		})
	}
}

// TestEmulator_RequestsPerTicket checks the happy-path budget: at most
// 1.05 HTTP requests per created ticket.
func TestEmulator_RequestsPerTicket(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, snowemu.Options{}, nil)

	const n = 100
	for i := range n {
		_, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, fmt.Sprintf("steward-a-%d", i)))
		require.NoError(t, err)
	}
	total := b.emu.TotalRequests()
	require.LessOrEqual(t, float64(total)/n, 1.05, "requests: %v", b.emu.Requests())
	require.Equal(t, n, b.emu.Requests()["POST /api/now/table/incident"])
}

func TestEmulator_TokenExpiryMidBatch(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, snowemu.Options{}, nil)

	for i := range 20 {
		if i == 10 {
			b.emu.ExpireTokens() // the server forgets; the client still thinks its token is valid
		}
		_, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, fmt.Sprintf("steward-exp-%d", i)))
		require.NoError(t, err, "ticket %d", i)
	}
	require.Equal(t, 20, b.emu.Count("incident"))
	require.Equal(t, 2, b.emu.Requests()["POST /oauth_token.do"], "one grant, one refresh after the 401")
	require.Contains(t, b.logs.String(), "re-authenticating")
}

// TestEmulator_ProactiveRefresh moves a shared clock past the token's
// lifetime: the client refreshes before the server would refuse it.
func TestEmulator_ProactiveRefresh(t *testing.T) {
	t.Parallel()

	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := setupEmu(t, snowemu.Options{Clock: clock, AccessTokenLifetime: 30 * time.Minute}, func(c *servicenow.Config) { c.Now = clock })

	_, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, "steward-r-1"))
	require.NoError(t, err)
	mu.Lock()
	now = now.Add(29*time.Minute + 30*time.Second) // inside the 60 s margin
	mu.Unlock()
	_, err = b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, "steward-r-2"))
	require.NoError(t, err)
	require.Equal(t, 2, b.emu.Requests()["POST /oauth_token.do"])
	require.NotContains(t, b.logs.String(), "re-authenticating", "refreshed before any 401")
}

func TestEmulator_RateLimitStorm(t *testing.T) {
	t.Parallel()

	t.Run("WaitsRetryAfterAndCreatesOnce", func(t *testing.T) {
		t.Parallel()
		b := setupEmu(t, snowemu.Options{}, func(c *servicenow.Config) {
			c.MaxRetries = 10
			c.MaxRetryDelay = 2 * time.Second
		})
		// Authenticate before the storm so it hits the Table API.
		_, err := b.client.LookupUser(t.Context(), "beth.anglin@example.com")
		require.NoError(t, err)
		_, err = b.client.LookupUser(t.Context(), "abel.tuter@example.com")
		require.NoError(t, err)
		b.emu.SetFaults(snowemu.Faults{Storm429: 1, StormDuration: 1500 * time.Millisecond, StormRetryAfter: 1, PathPrefix: "/api/"})
		start := time.Now()
		got, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, "steward-storm"))
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After: 1 was honoured")
		require.Len(t, b.emu.FindByCorrelationID("incident", "steward-storm"), 1)
		require.NotEmpty(t, got.Number)
	})
	t.Run("RetryAfterBeyondMaxDelayGoesBackToTheCaller", func(t *testing.T) {
		t.Parallel()
		b := setupEmu(t, snowemu.Options{}, nil) // MaxRetryDelay 20ms
		b.emu.SetFaults(snowemu.Faults{Storm429: 1, StormRetryAfter: 5, PathPrefix: "/api/"})
		_, err := b.client.Tickets(t.Context(), "incident", []string{"0123456789abcdef0123456789abcdef"})
		e, ok := errors.AsType[*itsm.Error](err)
		require.True(t, ok, "%v", err)
		require.Equal(t, itsm.KindRateLimited, e.Kind)
		require.True(t, e.Retryable)
		require.Equal(t, 5*time.Second, e.RetryAfter)
		require.Equal(t, 429, e.Status)
		itsmtest.AssertNoSecretLeak(t, err, secrets...)
	})
}

func TestEmulator_ServerErrors(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, snowemu.Options{}, func(c *servicenow.Config) { c.MaxRetries = 12 })
	_, err := b.client.LookupUser(t.Context(), "beth.anglin@example.com")
	require.NoError(t, err)
	_, err = b.client.LookupUser(t.Context(), "abel.tuter@example.com")
	require.NoError(t, err)
	b.emu.SetFaults(snowemu.Faults{Error500: 0.3, Error503: 0.2, PathPrefix: "/api/"})

	for i := range 20 {
		_, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, fmt.Sprintf("steward-5xx-%d", i)))
		require.NoError(t, err, "ticket %d", i)
	}
	for i := range 20 {
		require.Len(t, b.emu.FindByCorrelationID("incident", fmt.Sprintf("steward-5xx-%d", i)), 1)
	}
	require.Equal(t, 20, b.emu.Count("incident"))
}

func TestEmulator_DroppedConnections(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		faults snowemu.Faults
	}{
		{name: "AfterCommitAlways", faults: snowemu.Faults{DropAfterCommit: 1, Methods: []string{"POST"}, PathPrefix: "/api/"}},
		{name: "AfterCommitHalf", faults: snowemu.Faults{DropAfterCommit: 0.5, PathPrefix: "/api/"}},
		{name: "BeforeCommit", faults: snowemu.Faults{Drop: 0.5, PathPrefix: "/api/"}},
		{name: "Mixed", faults: snowemu.Faults{Drop: 0.2, DropAfterCommit: 0.3, Error500: 0.1, PathPrefix: "/api/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupEmu(t, snowemu.Options{}, func(c *servicenow.Config) { c.MaxRetries = 15 })
			_, err := b.client.LookupUser(t.Context(), "beth.anglin@example.com")
			require.NoError(t, err)
			_, err = b.client.LookupUser(t.Context(), "abel.tuter@example.com")
			require.NoError(t, err)
			b.emu.SetFaults(tt.faults)

			const n = 15
			for i := range n {
				got, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, fmt.Sprintf("steward-drop-%d", i)))
				require.NoError(t, err, "ticket %d", i)
				require.NotEmpty(t, got.SysID)
			}
			b.emu.SetFaults(snowemu.Faults{})
			for i := range n {
				require.Len(t, b.emu.FindByCorrelationID("incident", fmt.Sprintf("steward-drop-%d", i)), 1, "exactly one record per correlation ID")
			}
			require.Equal(t, n, b.emu.Count("incident"))
		})
	}
}

func TestEmulator_UpdateTicket(t *testing.T) {
	t.Parallel()

	t.Run("IncidentResolveAndReassign", func(t *testing.T) {
		t.Parallel()
		b := setupEmu(t, snowemu.Options{}, nil)
		tk, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, "steward-u-1"))
		require.NoError(t, err)

		don := "don.goodliffe@example.com"
		got, err := b.client.UpdateTicket(t.Context(), tk.Ref(), itsm.TicketUpdate{AssignedToEmail: &don})
		require.NoError(t, err)
		require.Equal(t, don, got.AssignedToEmail)

		st, code, notes, note := steward.TicketResolved, "Solution provided", "Resolved by Steward: resource healthy", "scan 42 passed"
		got, err = b.client.UpdateTicket(t.Context(), tk.Ref(), itsm.TicketUpdate{State: &st, CloseCode: &code, CloseNotes: &notes, WorkNote: &note})
		require.NoError(t, err)
		require.Equal(t, steward.TicketResolved, got.State)
		require.Equal(t, "6", got.RawState)
		require.Greater(t, got.ModCount, tk.ModCount)
		rec, err := b.emu.Record("incident", tk.SysID)
		require.NoError(t, err)
		require.Equal(t, "6", rec["state"])
		require.Equal(t, code, rec["close_code"])
	})
	t.Run("ProblemTransitionRefused", func(t *testing.T) {
		t.Parallel()
		b := setupEmu(t, snowemu.Options{}, nil)
		tk, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeProblem, "steward-u-2"))
		require.NoError(t, err)

		st := steward.TicketResolved
		_, err = b.client.UpdateTicket(t.Context(), tk.Ref(), itsm.TicketUpdate{State: &st})
		require.True(t, itsm.IsKind(err, itsm.KindTransitionRefused), "%v", err)
		require.Contains(t, err.Error(), "New (101) instead of Resolved (106)")

		cancel, notes := steward.TicketCanceled, "No longer relevant"
		got, err := b.client.UpdateTicket(t.Context(), tk.Ref(), itsm.TicketUpdate{State: &cancel, CloseNotes: &notes})
		require.NoError(t, err, "a problem can be cancelled from New")
		require.Equal(t, steward.TicketClosed, got.State)
		require.Equal(t, "canceled", got.CloseCode)
	})
	t.Run("ChangeTransitionRefused", func(t *testing.T) {
		t.Parallel()
		b := setupEmu(t, snowemu.Options{}, nil)
		tk, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeChangeRequest, "steward-u-3"))
		require.NoError(t, err)
		st, code, notes := steward.TicketClosed, "successful", "done"
		_, err = b.client.UpdateTicket(t.Context(), tk.Ref(), itsm.TicketUpdate{State: &st, CloseCode: &code, CloseNotes: &notes})
		require.True(t, itsm.IsKind(err, itsm.KindTransitionRefused), "%v", err)
	})
	t.Run("DataPolicyFromTheInstance", func(t *testing.T) {
		t.Parallel()
		b := setupEmu(t, snowemu.Options{}, nil)
		tk, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, "steward-u-4"))
		require.NoError(t, err)
		st, empty := steward.TicketResolved, " "
		_, err = b.client.UpdateTicket(t.Context(), tk.Ref(), itsm.TicketUpdate{State: &st, CloseCode: &empty, CloseNotes: &empty})
		// " " passes the local check; whether the instance accepts a blank
		// value is its call. Either outcome must be a clear answer.
		if err != nil {
			require.True(t, itsm.IsKind(err, itsm.KindDataPolicy), "%v", err)
		}
	})
	t.Run("DeletedTicketIsNotFound", func(t *testing.T) {
		t.Parallel()
		b := setupEmu(t, snowemu.Options{}, nil)
		tk, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, "steward-u-5"))
		require.NoError(t, err)
		require.NoError(t, b.emu.DeleteRecord("incident", tk.SysID, ""))
		_, err = b.client.Ticket(t.Context(), tk.Ref())
		require.True(t, itsm.IsKind(err, itsm.KindNotFound), "%v", err)
		require.Equal(t, steward.CodeNotFound, steward.ErrorCode(err))
		got, err := b.client.Tickets(t.Context(), "incident", []string{tk.SysID})
		require.NoError(t, err)
		require.Empty(t, got, "deleted records are left out of batches")
	})
	t.Run("ReassignedInServiceNow", func(t *testing.T) {
		t.Parallel()
		b := setupEmu(t, snowemu.Options{}, nil)
		tk, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, "steward-u-6"))
		require.NoError(t, err)
		_, err = b.emu.Reassign("incident", tk.SysID, "don.goodliffe", "beth.anglin")
		require.NoError(t, err)
		got, err := b.client.FindByCorrelationIDs(t.Context(), "incident", []string{"steward-u-6", "steward-nope"})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, "don.goodliffe@example.com", got[0].AssignedToEmail)
		require.Equal(t, "beth.anglin", got[0].UpdatedBy)
	})
}

func TestEmulator_ChangedSince(t *testing.T) {
	t.Parallel()

	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tick := func() { mu.Lock(); now = now.Add(time.Second); mu.Unlock() }
	b := setupEmu(t, snowemu.Options{Clock: clock}, func(c *servicenow.Config) { c.Now = clock; c.PageSize = 3 })

	since := clock()
	var ids []string
	for i := range 8 {
		corr := fmt.Sprintf("steward-cs-%d", i)
		if i == 7 {
			corr = "other-7" // outside the prefix
		}
		r := req(steward.TicketTypeIncident, corr)
		r.AssignedToEmail, r.CallerEmail = "", ""
		tk, err := b.client.CreateTicket(t.Context(), r)
		require.NoError(t, err)
		ids = append(ids, tk.SysID)
		if i%2 == 0 {
			tick() // several records share a second: the keyset must not skip them
		}
	}

	seen := map[string]int{}
	var order []time.Time
	n := 0
	for tk, err := range b.client.ChangedSince(t.Context(), "incident", since, "steward-") {
		require.NoError(t, err)
		seen[tk.SysID]++
		order = append(order, tk.UpdatedAt)
		n++
		if n == 2 {
			// Update a record already read while paging: offset paging
			// would now skip one record.
			tick()
			_, err := b.emu.SetState("incident", ids[0], snowemu.StateChange{State: "2"})
			require.NoError(t, err)
		}
	}
	for i := range 7 {
		require.GreaterOrEqual(t, seen[ids[i]], 1, "record %d was skipped", i)
	}
	require.Zero(t, seen[ids[7]], "prefix filter")
	require.Equal(t, 2, seen[ids[0]], "the updated record comes again with its new state")
	for i := 1; i < len(order); i++ {
		require.False(t, order[i].Before(order[i-1]), "oldest first")
	}

	t.Run("NothingNew", func(t *testing.T) {
		for _, err := range b.client.ChangedSince(t.Context(), "incident", clock().Add(time.Hour), "") {
			require.NoError(t, err)
			t.Fatal("no record expected")
		}
	})
}

func TestEmulator_Validate(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setupEmu(t, snowemu.Options{}, nil)
		require.NoError(t, b.client.Validate(t.Context()))
		basic := setupEmu(t, snowemu.Options{}, func(c *servicenow.Config) { c.AuthMode = servicenow.AuthBasic })
		require.NoError(t, basic.client.Validate(t.Context()))
	})

	type failure struct {
		name    string
		opts    snowemu.Options
		mutate  func(t *testing.T, c *servicenow.Config)
		kind    itsm.ErrorKind
		message string
	}
	tests := []failure{
		{name: "BadPassword", kind: itsm.KindAuth, message: `refused the user name or password of "svc.steward" (Basic auth with them fails too`,
			mutate: func(_ *testing.T, c *servicenow.Config) { c.Password = secret.New("wrong-" + testPassword) }},
		{name: "BadClientSecret", kind: itsm.KindAuth, message: "refused the OAuth client ID or client secret",
			mutate: func(_ *testing.T, c *servicenow.Config) { c.ClientSecret = secret.New("wrong-" + testSecret) }},
		{name: "BadPasswordBasic", kind: itsm.KindAuth, message: `rejected the user name or password of "svc.steward" (Basic auth`,
			mutate: func(_ *testing.T, c *servicenow.Config) {
				c.AuthMode = servicenow.AuthBasic
				c.Password = secret.New("wrong-" + testPassword)
			}},
		{name: "ClientCredentialsDisabled", kind: itsm.KindAuth, message: "glide.oauth.inbound.client.credential.grant_type.enabled",
			mutate: func(_ *testing.T, c *servicenow.Config) { c.AuthMode = servicenow.AuthClientCredentials }},
		{name: "UnknownTable", kind: itsm.KindInvalidTable, message: `table "u_not_a_table" does not exist`,
			mutate: func(_ *testing.T, c *servicenow.Config) { c.Tables = []string{"incident", "u_not_a_table"} }},
		{name: "ConnectionRefused", kind: itsm.KindNetwork, message: "refused the connection",
			mutate: func(t *testing.T, c *servicenow.Config) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				addr := l.Addr().String()
				require.NoError(t, l.Close())
				c.InstanceURL = "http://" + addr
			}},
		{name: "DNS", kind: itsm.KindNetwork, message: "does not exist (DNS)",
			mutate: func(_ *testing.T, c *servicenow.Config) { c.InstanceURL = "https://steward-test.invalid" }},
		{name: "UntrustedTLS", kind: itsm.KindNetwork, message: "TLS certificate of 127.0.0.1",
			mutate: func(t *testing.T, c *servicenow.Config) {
				tls := httptest.NewTLSServer(http.NotFoundHandler())
				t.Cleanup(tls.Close)
				c.InstanceURL = tls.URL
			}},
		{name: "PlainHTTPOnTLS", kind: itsm.KindNetwork, message: "does not speak TLS",
			mutate: func(t *testing.T, c *servicenow.Config) {
				plain := httptest.NewServer(http.NotFoundHandler())
				t.Cleanup(plain.Close)
				c.InstanceURL = strings.Replace(plain.URL, "http://", "https://", 1)
			}},
		{name: "Timeout", kind: itsm.KindNetwork, message: "no answer from 127.0.0.1",
			opts:   snowemu.Options{},
			mutate: func(_ *testing.T, c *servicenow.Config) { c.Timeout = 100 * time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupEmu(t, tt.opts, func(c *servicenow.Config) { tt.mutate(t, c) })
			if tt.name == "Timeout" {
				b.emu.SetFaults(snowemu.Faults{Latency: 2 * time.Second})
			}
			err := b.client.Validate(t.Context())
			require.Error(t, err)
			e, ok := errors.AsType[*itsm.Error](err)
			require.True(t, ok, "%T %v", err, err)
			require.Equal(t, tt.kind, e.Kind, "%v", err)
			require.Contains(t, err.Error(), tt.message)
			require.Equal(t, "validate", e.Op, "%v", err)
			itsmtest.AssertNoSecretLeak(t, err, append(secrets, "wrong-"+testPassword, "wrong-"+testSecret)...)
			itsmtest.AssertNoSecretLeak(t, b.logs.String(), append(secrets, "wrong-"+testPassword, "wrong-"+testSecret)...)
		})
	}
}

func TestEmulator_Conformance(t *testing.T) {
	t.Parallel()

	// Each subtest gets its own emulator; correlation IDs are unique across
	// subtests, so counting over all of them is exact.
	var mu sync.Mutex
	var emus []*snowemu.Emulator
	itsmtest.RunConformance(t, itsmtest.Conformance{
		New: func(t *testing.T) itsm.Provider {
			b := setupEmu(t, snowemu.Options{}, nil)
			mu.Lock()
			emus = append(emus, b.emu)
			mu.Unlock()
			return b.client
		},
		Assignee: "beth.anglin@example.com", OtherAssignee: "don.goodliffe@example.com", UnknownEmail: "nobody@example.com",
		CountCorrelation: func(table, id string) int {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, e := range emus {
				n += len(e.FindByCorrelationID(table, id))
			}
			return n
		},
	})
}
