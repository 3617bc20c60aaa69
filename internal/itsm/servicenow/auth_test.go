package servicenow_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/itsm/itsmtest"
	"github.com/stewardhq/steward/internal/itsm/servicenow"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/snowemu"
)

// TestClient_TokenRequest checks the token request of reference §1.2:
// form-encoded, credentials in the body, not in a Basic header.
func TestClient_TokenRequest(t *testing.T) {
	t.Parallel()

	var forms []string
	var mu sync.Mutex
	c, _, logs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth_token.do" {
			require.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
			require.Empty(t, r.Header.Get("Authorization"), "client credentials go in the form body")
			require.NoError(t, r.ParseForm())
			mu.Lock()
			forms = append(forms, r.PostForm.Encode())
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json;charset=UTF-8")
			// No refresh_token on refresh: the client must keep the old one.
			if r.PostForm.Get("grant_type") == "refresh_token" {
				_, _ = w.Write([]byte(`{"access_token":"tok-2","scope":"useraccount","token_type":"Bearer","expires_in":1799}`))
				return
			}
			_, _ = w.Write([]byte(`{"access_token":"tok-1","refresh_token":"ref-1","scope":"useraccount","token_type":"Bearer","expires_in":1799}`))
			return
		}
		auth := r.Header.Get("Authorization")
		if auth == "Bearer tok-1" && strings.Contains(r.URL.Path, "expire") {
			writeJSON(w, 401, `{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}`)
			return
		}
		require.True(t, auth == "Bearer tok-1" || auth == "Bearer tok-2", auth)
		writeJSON(w, 200, `{"result":`+incidentJSON+`}`)
	}, func(cfg *servicenow.Config) {
		cfg.ClientID, cfg.ClientSecret = testClientID, secret.New(testSecret)
	})

	_, err := c.Ticket(t.Context(), itsm.Ref{Table: "incident", SysID: "a"})
	require.NoError(t, err)
	_, err = c.Ticket(t.Context(), itsm.Ref{Table: "incident", SysID: "expire"})
	require.NoError(t, err)
	_, err = c.Ticket(t.Context(), itsm.Ref{Table: "incident", SysID: "b"})
	require.NoError(t, err)

	require.Len(t, forms, 2, "one grant, one refresh after the 401; the token is reused otherwise")
	require.Equal(t, "client_id=steward-client&client_secret=cs-Must-Not-Leak-9&grant_type=password&password=pw-Must-Not-Leak-7&username=svc.steward", forms[0])
	require.Equal(t, "client_id=steward-client&client_secret=cs-Must-Not-Leak-9&grant_type=refresh_token&refresh_token=ref-1", forms[1])
	itsmtest.AssertNoSecretLeak(t, logs.String(), secrets...)
	itsmtest.AssertNoSecretLeak(t, logs.String(), "tok-1", "tok-2", "ref-1")
}

// TestClient_TokenErrors covers token endpoints that do tell the
// credentials apart with the standard OAuth codes, and other failures.
func TestClient_TokenErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name      string
		status    int
		body      string
		kind      itsm.ErrorKind
		retryable bool
		message   string
	}{
		{name: "InvalidClient", status: 401, body: `{"error":"invalid_client","error_description":"bad client"}`, kind: itsm.KindAuth, message: "rejected the OAuth client ID or client secret"},
		{name: "InvalidGrant", status: 400, body: `{"error":"invalid_grant","error_description":"bad password"}`, kind: itsm.KindAuth, message: `rejected the user name or password of "svc.steward"`},
		{name: "Opaque", status: 401, body: `{"error_description":"access_denied","error":"server_error"}`, kind: itsm.KindAuth, message: "without saying which one"},
		{name: "EchoesTheRequest", status: 401, body: `{"error":"server_error","error_description":"password=` + testPassword + `"}`, kind: itsm.KindAuth, message: "without saying which one"},
		{name: "NoOAuth", status: 404, body: `{"error":{"message":"Not found"}}`, kind: itsm.KindAuth, message: "no OAuth token endpoint"},
		{name: "Unavailable", status: 503, body: ``, kind: itsm.KindUnavailable, retryable: true, message: "token endpoint is unavailable"},
		{name: "HTMLPage", status: 200, body: `<html>hibernating</html>`, kind: itsm.KindBadResponse, message: "something other than an OAuth token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _, logs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/oauth_token.do" {
					t.Errorf("API called without a token: %s", r.URL.Path)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				if strings.HasPrefix(tt.body, "<") {
					w.Header().Set("Content-Type", "text/html")
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}, func(cfg *servicenow.Config) {
				cfg.ClientID, cfg.ClientSecret = testClientID, secret.New(testSecret)
				cfg.MaxRetries = -1
			})
			_, err := c.Ticket(t.Context(), itsm.Ref{Table: "incident", SysID: "a"})
			e, ok := errors.AsType[*itsm.Error](err)
			require.True(t, ok, "%v", err)
			require.Equal(t, tt.kind, e.Kind, "%v", err)
			require.Equal(t, tt.retryable, e.Retryable)
			require.Contains(t, err.Error(), tt.message)
			require.Equal(t, "token", e.Op)
			itsmtest.AssertNoSecretLeak(t, err, secrets...)
			itsmtest.AssertNoSecretLeak(t, logs.String(), secrets...)
		})
	}
}

func TestClient_ValidateMissingRole(t *testing.T) {
	t.Parallel()

	c, _, _ := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/now/table/sys_user":
			writeJSON(w, 200, `{"result":[{"sys_id":"u1","user_name":"svc.steward","active":"true"}]}`)
		case "/api/now/table/change_request":
			writeJSON(w, 403, `{"error":{"message":"User Not Authorized","detail":"Failed API level ACL Validation"},"status":"failure"}`)
		default:
			writeJSON(w, 200, `{"result":[]}`)
		}
	}, nil)
	err := c.Validate(t.Context())
	require.True(t, itsm.IsKind(err, itsm.KindForbidden), "%v", err)
	require.Contains(t, err.Error(), `may not read table "change_request" (missing role`)
	// Validation explains the status in its own words: an instance URL is
	// typed by a user, so the answer's text is not relayed.
	require.NotContains(t, err.Error(), "Failed API level ACL Validation")
	require.NotContains(t, err.Error(), "User Not Authorized")
}

func TestClient_Canceled(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	c, _, _ := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, nil)
	defer close(release)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := c.Ticket(ctx, itsm.Ref{Table: "incident", SysID: "a"})
	require.True(t, itsm.IsKind(err, itsm.KindCanceled), "%v", err)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, itsm.IsRetryable(err))
}

// TestClient_DeadlineReturnsTheRealError: when the caller's deadline
// leaves no room for the next backoff, the last server error comes back,
// not a bare context error.
func TestClient_DeadlineReturnsTheRealError(t *testing.T) {
	t.Parallel()

	c, _, _ := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 503, `{"error":{"message":"Service Unavailable","detail":null},"status":"failure"}`)
	}, func(cfg *servicenow.Config) { cfg.MinRetryDelay, cfg.MaxRetryDelay = time.Second, 10*time.Second })
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Ticket(ctx, itsm.Ref{Table: "incident", SysID: "a"})
	require.Less(t, time.Since(start), 150*time.Millisecond, "no sleep past the deadline")
	e, ok := errors.AsType[*itsm.Error](err)
	require.True(t, ok)
	require.Equal(t, 503, e.Status)
	require.True(t, e.Retryable)
}

// TestEmulator_Concurrent creates tickets from many goroutines while the
// server expires tokens and fails some requests; run with -race.
func TestEmulator_Concurrent(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, snowemu.Options{}, func(c *servicenow.Config) { c.MaxRetries = 15 })
	_, err := b.client.LookupUser(t.Context(), "beth.anglin@example.com")
	require.NoError(t, err)
	_, err = b.client.LookupUser(t.Context(), "abel.tuter@example.com")
	require.NoError(t, err)
	b.emu.SetFaults(snowemu.Faults{Error503: 0.1, DropAfterCommit: 0.1, PathPrefix: "/api/"})

	const workers, per = 8, 8
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				if w == 0 && i == per/2 {
					b.emu.ExpireTokens()
				}
				if _, err := b.client.CreateTicket(t.Context(), req(steward.TicketTypeIncident, corrID(w, i))); err != nil {
					failures.Add(1)
					t.Errorf("worker %d ticket %d: %v", w, i, err)
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, failures.Load())
	b.emu.SetFaults(snowemu.Faults{})
	require.Equal(t, workers*per, b.emu.Count("incident"))
}

func corrID(w, i int) string { return "steward-c-" + string(rune('a'+w)) + "-" + string(rune('a'+i)) }

func TestClient_Metrics(t *testing.T) {
	t.Parallel()

	reg := prometheus.NewPedanticRegistry()
	m, err := servicenow.NewMetrics(reg)
	require.NoError(t, err)
	_, err = servicenow.NewMetrics(reg)
	require.Error(t, err, "one Metrics per registry; share it between clients")

	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			writeJSON(w, 503, `{"error":{"message":"Service Unavailable","detail":null},"status":"failure"}`)
			return
		}
		writeJSON(w, 200, `{"result":`+incidentJSON+`}`)
	}))
	t.Cleanup(srv.Close)
	c, err := servicenow.New(fastConfig(srv.URL), nil, servicenow.WithMetrics(m))
	require.NoError(t, err)
	_, err = c.Ticket(t.Context(), itsm.Ref{Table: "incident", SysID: "a"})
	require.NoError(t, err)

	got := map[string]float64{}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue()
			if m.GetHistogram() != nil {
				v = float64(m.GetHistogram().GetSampleCount())
			}
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	require.Equal(t, map[string]float64{
		"steward_servicenow_requests_total{code=200,integration=test,method=GET,table=incident}":  1,
		"steward_servicenow_requests_total{code=503,integration=test,method=GET,table=incident}":  1,
		"steward_servicenow_retries_total{integration=test,kind=unavailable,table=incident}":      1,
		"steward_servicenow_request_duration_seconds{integration=test,method=GET,table=incident}": 2,
	}, got)
}

// TestEmulator_TLS talks to the emulator over TLS with the caller's HTTP
// client trusting the test certificate.
func TestEmulator_TLS(t *testing.T) {
	t.Parallel()

	emu := snowemu.New(snowemu.Options{}, nil)
	t.Cleanup(func() { _ = emu.Close() })
	srv := httptest.NewTLSServer(emu)
	t.Cleanup(srv.Close)
	cfg := fastConfig(srv.URL)
	cfg.Username, cfg.Password = snowemu.DefaultAdminUser, secret.New(snowemu.DefaultAdminPassword)
	cfg.ClientID, cfg.ClientSecret = snowemu.DefaultClientID, secret.New(snowemu.DefaultClientSecret)
	cfg.HTTPClient = srv.Client()
	c, err := servicenow.New(cfg, nil)
	require.NoError(t, err)
	require.NoError(t, c.Validate(t.Context()))
	tk, err := c.CreateTicket(t.Context(), itsm.CreateRequest{Type: steward.TicketTypeIncident, CorrelationID: "steward-tls", ShortDescription: "x"})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(tk.Link, "https://"))
}

func TestClient_ValidateReportsEveryTable(t *testing.T) {
	t.Parallel()

	c, _, _ := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/now/table/sys_user":
			writeJSON(w, 200, `{"result":[{"sys_id":"u1","user_name":"svc.steward","active":"true"}]}`)
		case "/api/now/table/u_sec_incident":
			writeJSON(w, 400, `{"error":{"message":"Invalid table u_sec_incident","detail":null},"status":"failure"}`)
		case "/api/now/table/change_request":
			writeJSON(w, 403, `{"error":{"message":"User Not Authorized","detail":"Failed API level ACL Validation"},"status":"failure"}`)
		default:
			writeJSON(w, 200, `{"result":[]}`)
		}
	}, func(cfg *servicenow.Config) { cfg.Tables = []string{"u_sec_incident", "problem", "change_request"} })
	err := c.Validate(t.Context())
	e, ok := errors.AsType[*itsm.Error](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, itsm.KindInvalidTable, e.Kind)
	msg := steward.ErrorMessage(err)
	require.Contains(t, msg, `table "u_sec_incident" does not exist`)
	require.Contains(t, msg, `may not read table "change_request"`)
	require.NotContains(t, msg, `"problem"`)
}

func TestEmulator_InactiveIntegrationUser(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, snowemu.Options{}, func(c *servicenow.Config) {
		c.AuthMode, c.Username, c.Password = servicenow.AuthBasic, "gone.user", secret.New(testPassword)
	})
	_, err := b.emu.AddUser(snowemu.UserSpec{UserName: "gone.user", Password: testPassword, Inactive: true})
	require.NoError(t, err)
	err = b.client.Validate(t.Context())
	require.True(t, itsm.IsKind(err, itsm.KindAuth), "%v", err)
}
