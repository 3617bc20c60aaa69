package ticketsync_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/snowemu"
)

// recorder is a loopback HTTP server that records every byte it receives,
// standing for a host an attacker controls. It answers 401, so code that
// sends it credentials fails fast instead of waiting for a timeout.
type recorder struct {
	srv   *httptest.Server
	conns atomic.Int64
	bytes atomic.Int64

	mu   sync.Mutex
	seen []string // request lines and bodies, for the failure message
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.seen = append(rec.seen, r.Method+" "+r.URL.Path+" "+string(body))
		rec.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	}))
	rec.srv.Listener = &countingListener{Listener: rec.srv.Listener, rec: rec}
	rec.srv.Start()
	t.Cleanup(rec.srv.Close)
	return rec
}

// requireUntouched fails if anything reached the recorder.
func (rec *recorder) requireUntouched(t *testing.T, what string) {
	t.Helper()
	rec.mu.Lock()
	seen := strings.Join(rec.seen, "\n")
	rec.mu.Unlock()
	require.Zero(t, rec.bytes.Load(), "%s: the other host received bytes:\n%s", what, seen)
	require.Zero(t, rec.conns.Load(), "%s: the other host was connected to", what)
}

type countingListener struct {
	net.Listener
	rec *recorder
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.rec.conns.Add(1)
	return &countingConn{Conn: c, n: &l.rec.bytes}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countingEmulator serves an emulator and counts the requests it gets.
func countingEmulator(t *testing.T, emu *snowemu.Emulator) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func requireAPIError(t *testing.T, err error, status int) *apiclient.Error {
	t.Helper()
	apiErr, ok := err.(*apiclient.Error)
	require.True(t, ok, "want an API error, got %v", err)
	require.Equal(t, status, apiErr.Status, apiErr.Message)
	return apiErr
}

// TestCredentialsStayWithTheirHost reproduces the attack of issue 9: a
// PATCH that only points the instance URL at another host must not make
// Steward send the stored password and client secret there.
func TestCredentialsStayWithTheirHost(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	in := b.integration(t, "oauth_password")
	attacker := newRecorder(t)

	// Only the URL: refused, nothing sent anywhere.
	_, err := b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{InstanceURL: ptr(attacker.srv.URL), Local: ptr(true)})
	apiErr := requireAPIError(t, err, http.StatusBadRequest)
	for _, want := range []string{"instance_url", "another host", "password and client_secret", "same request", "--password-file", "--client-secret-file"} {
		require.Contains(t, apiErr.Message, want)
	}
	require.NotContains(t, apiErr.Message, emuPassword)
	attacker.requireUntouched(t, "URL only")

	// The same host spelled differently is the same origin: no credentials needed.
	_, err = b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{InstanceURL: ptr(b.emuURL + "/")})
	require.NoError(t, err)

	// One of the two credentials is not enough for oauth_password.
	_, err = b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{InstanceURL: ptr(attacker.srv.URL), Password: ptr("typed-again")})
	apiErr = requireAPIError(t, err, http.StatusBadRequest)
	require.Contains(t, apiErr.Message, "client_secret")
	require.Contains(t, apiErr.Message, "--client-secret-file")
	require.NotContains(t, apiErr.Message, "--password-file", "the password was given")
	attacker.requireUntouched(t, "password only")

	// Another host with a skipped validation is still refused: the next
	// job would send the stored credentials.
	_, err = b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{InstanceURL: ptr(attacker.srv.URL), SkipValidation: true})
	requireAPIError(t, err, http.StatusBadRequest)
	attacker.requireUntouched(t, "skip validation")

	got, err := b.client.GetIntegration(t.Context(), in.ID)
	require.NoError(t, err)
	require.Equal(t, b.emuURL+"/", got.InstanceURL, "nothing refused was stored")

	// Moving with both credentials entered again is accepted and validated
	// against the new host, with the new credentials.
	emu2 := snowemu.New(snowemu.Options{AdminPassword: "second-admin-pw", ClientSecret: "second-client-secret"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = emu2.Close() })
	second, requests := countingEmulator(t, emu2)
	moved, err := b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{InstanceURL: ptr(second.URL),
		Password: ptr("second-admin-pw"), ClientSecret: ptr("second-client-secret")})
	require.NoError(t, err)
	require.Equal(t, second.URL, moved.InstanceURL)
	require.Positive(t, requests.Load(), "validated against the new host")
	require.NoError(t, b.client.ValidateIntegration(t.Context(), in.ID), "the stored credentials are now the new host's")
	attacker.requireUntouched(t, "end")
}

// TestCredentialsAuthModeChange: a new auth mode uses credentials in a new
// way, so it needs them entered again; nothing is sent before.
func TestCredentialsAuthModeChange(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	host, requests := countingEmulator(t, b.emu)
	in, err := b.client.CreateIntegration(t.Context(), apiclient.IntegrationRequest{
		Name: ptr("counted"), Scope: ptr("/subscriptions/s1"), InstanceURL: ptr(host.URL), Local: ptr(true),
		AuthMode: ptr("oauth_password"), Username: ptr("admin"), Password: ptr(emuPassword),
		ClientID: ptr("steward"), ClientSecret: ptr(emuClientSecret),
	})
	require.NoError(t, err)
	before := requests.Load()

	_, err = b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{AuthMode: ptr("basic")})
	apiErr := requireAPIError(t, err, http.StatusBadRequest)
	require.Contains(t, apiErr.Message, "auth_mode")
	require.Contains(t, apiErr.Message, "password")
	require.Contains(t, apiErr.Message, "--password-file")
	require.NotContains(t, apiErr.Message, "client_secret", "basic needs no client secret")

	_, err = b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{AuthMode: ptr("client_credentials")})
	apiErr = requireAPIError(t, err, http.StatusBadRequest)
	require.Contains(t, apiErr.Message, "client_secret")
	require.Contains(t, apiErr.Message, "--client-secret-file")
	require.Equal(t, before, requests.Load(), "nothing was sent to the instance")

	got, err := b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{AuthMode: ptr("basic"), Password: ptr(emuPassword)})
	require.NoError(t, err)
	require.Equal(t, "basic", string(got.AuthMode))
	require.Greater(t, requests.Load(), before, "validated with the password entered again")
}

// TestCredentialsMoveDropsWhatWasNotEnteredAgain: a basic integration moved
// with its password keeps no client secret entered for the old host.
func TestCredentialsMoveDropsWhatWasNotEnteredAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	in, err := b.client.CreateIntegration(t.Context(), apiclient.IntegrationRequest{
		Name: ptr("basic"), Scope: ptr("/"), InstanceURL: ptr(b.emuURL), Local: ptr(true), AuthMode: ptr("basic"),
		Username: ptr("admin"), Password: ptr(emuPassword), ClientID: ptr("steward"), ClientSecret: ptr(emuClientSecret),
	})
	require.NoError(t, err)
	require.True(t, in.HasClientSecret)
	emu2 := snowemu.New(snowemu.Options{AdminPassword: "second-admin-pw"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = emu2.Close() })
	second, _ := countingEmulator(t, emu2)

	moved, err := b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{InstanceURL: ptr(second.URL), Password: ptr("second-admin-pw")})
	require.NoError(t, err)
	require.True(t, moved.HasPassword)
	require.False(t, moved.HasClientSecret, "the old host's client secret is not kept for the new one")

	// Going back to OAuth needs the client secret entered again.
	_, err = b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{AuthMode: ptr("oauth_password"), Password: ptr("second-admin-pw")})
	requireAPIError(t, err, http.StatusBadRequest)
}

// TestCredentialsRefusedForAnotherOrigin is the second line of defence: an
// instance URL changed behind the service's back (a bug, a hand-edited
// database) does not get the stored credentials either.
func TestCredentialsRefusedForAnotherOrigin(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	in := b.integration(t, "oauth_password")
	attacker := newRecorder(t)
	_, err := b.srv.DB.Writer().ExecContext(t.Context(), b.srv.DB.Bind(`UPDATE integration SET instance_url = ? WHERE id = ?`), attacker.srv.URL, in.ID)
	require.NoError(t, err)

	err = b.client.ValidateIntegration(t.Context(), in.ID)
	requireAPIError(t, err, http.StatusInternalServerError)
	require.Contains(t, b.logs.String(), "stored credentials not used: entered for another origin")

	// A ticket for this integration is refused too, before any request.
	ids := b.seed(t, 1)
	a := b.assign(t, ids[0], "incident")
	require.Eventually(t, func() bool {
		return strings.Count(b.logs.String(), "stored credentials not used") >= 2
	}, 20*time.Second, 20*time.Millisecond, "the ticket job tried to build the provider")
	d, err := b.client.GetAssignment(t.Context(), a.ID)
	require.NoError(t, err)
	require.NotEqual(t, "created", string(d.Ticket.Status))
	attacker.requireUntouched(t, "tampered URL")
	for _, s := range []string{emuPassword, emuClientSecret} {
		require.NotContains(t, b.logs.String(), s)
	}
}
