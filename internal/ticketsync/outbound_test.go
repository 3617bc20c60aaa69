package ticketsync_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/netpolicy"
	"github.com/stewardhq/steward/internal/netpolicy/netpolicytest"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// outboundService is a ticketsync.Service on a fresh database whose
// providers come from the production factory with policy.
func outboundService(t *testing.T, policy netpolicy.Policy) (*ticketsync.Service, *store.DB) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "steward.db"), logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return outboundServiceOn(t, db, policy)
}

// outboundServiceOn is outboundService on an existing database.
func outboundServiceOn(t *testing.T, db *store.DB, policy netpolicy.Policy) (*ticketsync.Service, *store.DB) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return ticketsync.New(ticketsync.Config{}, db, jobs.NewQueue(), server.ServiceNowFactory(nil, logger, policy), logger, nil), db
}

func TestCreateIntegrationRefusedByOutboundPolicy(t *testing.T) {
	t.Parallel()
	// A loopback TLS server that a non-local integration must not reach.
	var reached atomic.Int64
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tlsSrv.Config.ConnState = func(net.Conn, http.ConnState) { reached.Add(1) }
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	_, port, _ := net.SplitHostPort(tlsSrv.Listener.Addr().String())

	resolver := netpolicytest.Resolver(map[string][]netip.Addr{
		"metadata.steward.test": {netip.MustParseAddr("169.254.169.254")},
		"internal.steward.test": {netip.MustParseAddr("192.168.10.20")},
		"rebound.steward.test":  {netip.MustParseAddr("127.0.0.1")},
	})
	// The loopback literal comes first: should the factory ever drop the
	// policy, that case fails against the local server and stops the test
	// before any case that names an address beyond loopback.
	cases := []struct{ url, want string }{
		{"https://127.0.0.1:" + port, "127.0.0.1 is a loopback address (127.0.0.0/8); only an integration marked local (the emulator) may connect there"},
		{"https://rebound.steward.test:" + port, "refused the connection to rebound.steward.test:" + port + ": 127.0.0.1 is a loopback address"},
		{"https://169.254.169.254", "validation failed: the outbound policy refused the connection to 169.254.169.254: 169.254.169.254 is a link-local address, where cloud metadata services answer (169.254.0.0/16); Steward never connects there"},
		{"https://[::ffff:a9fe:a9fe]", "169.254.169.254 is a link-local address"},
		{"https://metadata.steward.test", "refused the connection to metadata.steward.test: 169.254.169.254 is a link-local address"},
		{"https://internal.steward.test", "192.168.10.20 is a private address (192.168.0.0/16); list the range in STEWARD_ALLOW_PRIVATE_INSTANCES"},
	}
	for _, mode := range []steward.AuthMode{steward.AuthBasic, steward.AuthOAuthPassword} {
		for _, tc := range cases {
			g := &netpolicytest.Guard{}
			svc, db := outboundService(t, netpolicy.Policy{
				AllowPrivate: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, // not the range asked for
				Dialer:       &net.Dialer{Resolver: resolver, ControlContext: g.Control, Timeout: 5 * time.Second},
			})
			in := &steward.Integration{Name: "probe", Scope: "/", InstanceURL: tc.url, AuthMode: mode, Username: "admin"}
			secrets := store.IntegrationSecrets{Password: secret.New(emuPassword)}
			if mode == steward.AuthOAuthPassword {
				in.ClientID, secrets.ClientSecret = "steward", secret.New(emuClientSecret)
			}
			err := svc.CreateIntegration(t.Context(), in, secrets, false, "test")
			require.Error(t, err, tc.url)
			require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err), "%s: %v", tc.url, err) // the API answers 400
			msg := steward.ErrorMessage(err)
			require.Contains(t, msg, tc.want, tc.url)
			require.NotContains(t, msg, emuPassword)
			require.NotContains(t, msg, emuClientSecret)
			require.Empty(t, g.Seen(), "%s: no connection was attempted", tc.url)
			stored, err := db.FindIntegrations(t.Context())
			require.NoError(t, err)
			require.Empty(t, stored, "%s: nothing was stored", tc.url)
		}
	}
	require.Zero(t, reached.Load(), "the loopback server saw no connection")
}

func TestCreateIntegrationAllowedPrivateRange(t *testing.T) {
	t.Parallel()
	// STEWARD_ALLOW_PRIVATE_INSTANCES reaches the dialer: the policy lets
	// the address through and the guard, standing in for the network,
	// records it and stops the connect.
	g := &netpolicytest.Guard{}
	svc, _ := outboundService(t, netpolicy.Policy{
		AllowPrivate: []netip.Prefix{netip.MustParsePrefix("192.168.10.0/24")},
		Dialer: &net.Dialer{Resolver: netpolicytest.Resolver(map[string][]netip.Addr{
			"onprem.steward.test": {netip.MustParseAddr("192.168.10.20")},
		}), ControlContext: g.Control, Timeout: 5 * time.Second},
	})
	secrets := store.IntegrationSecrets{Password: secret.New(emuPassword)}

	// First prove on loopback that the factory applies the policy, so
	// that a missing policy fails here and not by dialling beyond.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, closed.Close())
	in := &steward.Integration{Name: "onprem", Scope: "/", InstanceURL: "https://" + closed.Addr().String(), AuthMode: steward.AuthBasic, Username: "admin"}
	err = svc.CreateIntegration(t.Context(), in, secrets, false, "test")
	require.ErrorContains(t, err, "127.0.0.1 is a loopback address")

	in.InstanceURL = "https://onprem.steward.test"
	err = svc.CreateIntegration(t.Context(), in, secrets, false, "test")
	require.Error(t, err)
	require.NotContains(t, steward.ErrorMessage(err), "outbound policy")
	require.Equal(t, []string{"192.168.10.20:443"}, g.Seen())
}

func TestCreateIntegrationRedirectToAnotherHost(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	var asked atomic.Int64
	instance := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Location", other.URL+r.URL.Path)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusTemporaryRedirect)
		_, _ = io.WriteString(w, "<html>moved, see the remote text that must not be relayed</html>")
	}))
	t.Cleanup(instance.Close)

	for _, mode := range []steward.AuthMode{steward.AuthBasic, steward.AuthOAuthPassword} {
		g := &netpolicytest.Guard{Open: true} // loopback, local: connections are allowed
		svc, _ := outboundService(t, netpolicy.Policy{Dialer: &net.Dialer{ControlContext: g.Control, Timeout: 5 * time.Second}})
		in := &steward.Integration{Name: "moved", Scope: "/", InstanceURL: instance.URL, Local: true, AuthMode: mode, Username: "admin"}
		secrets := store.IntegrationSecrets{Password: secret.New(emuPassword)}
		if mode == steward.AuthOAuthPassword {
			in.ClientID, secrets.ClientSecret = "steward", secret.New(emuClientSecret)
		}
		err := svc.CreateIntegration(t.Context(), in, secrets, false, "test")
		require.Error(t, err)
		require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
		msg := steward.ErrorMessage(err)
		require.Contains(t, msg, "the instance answered with a redirect to "+other.URL+"; use that URL as the instance URL", string(mode))
		require.NotContains(t, msg, "remote text")
		require.NotEmpty(t, g.Seen(), "the instance itself was reached through the policy")
	}
	require.EqualValues(t, 2, asked.Load(), "one request per validation")
	require.Zero(t, elsewhere.Load(), "the other host received no request")
}
