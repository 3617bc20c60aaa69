package servicenow_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/itsm/itsmtest"
	"github.com/stewardhq/steward/internal/itsm/servicenow"
	"github.com/stewardhq/steward/internal/netpolicy"
	"github.com/stewardhq/steward/internal/netpolicy/netpolicytest"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/snowemu"
)

// testHosts are the names the tests' resolver knows.
var testHosts = map[string][]netip.Addr{
	"metadata.steward.test": {netip.MustParseAddr("169.254.169.254")},
	"internal.steward.test": {netip.MustParseAddr("10.0.0.1")},
	"rebound.steward.test":  {netip.MustParseAddr("127.0.0.1")},
}

func guardedPolicy(g *netpolicytest.Guard, allowLoopback bool) *netpolicy.Policy {
	return &netpolicy.Policy{AllowLoopback: allowLoopback, Dialer: &net.Dialer{
		Resolver:       netpolicytest.Resolver(testHosts),
		ControlContext: g.Control,
		Timeout:        5 * time.Second,
	}}
}

// loopbackOnly returns a copy of base (nil: a plain client) whose own
// dialer answers names from testHosts and connects to loopback only. The
// policy replaces that dialer; should it ever fail to, the test still
// cannot send anything beyond loopback.
func loopbackOnly(base *http.Client) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if base != nil {
		tr = base.Transport.(*http.Transport).Clone()
	}
	d := &net.Dialer{Resolver: netpolicytest.Resolver(testHosts), Timeout: 5 * time.Second,
		ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
			if ap, err := netip.ParseAddrPort(address); err != nil || !ap.Addr().Unmap().IsLoopback() {
				return errors.New("test safety: refusing to connect to " + address)
			}
			return nil
		}}
	tr.Proxy = nil
	tr.DialContext = d.DialContext
	return &http.Client{Transport: tr}
}

func TestClient_PolicyRefusesBeforeConnecting(t *testing.T) {
	t.Parallel()
	// A real TLS listener on loopback: a non-local integration must not
	// reach it, whether by a literal or by a name resolving to it.
	var reached atomic.Int64
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	tlsSrv.Config.ConnState = func(net.Conn, http.ConnState) { reached.Add(1) }
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	_, port, _ := net.SplitHostPort(tlsSrv.Listener.Addr().String())

	cases := []struct {
		url, want string
	}{
		{"https://169.254.169.254", "refused the connection to 169.254.169.254: 169.254.169.254 is a link-local address, where cloud metadata services answer (169.254.0.0/16); Steward never connects there"},
		{"https://[::ffff:169.254.169.254]", "169.254.169.254 is a link-local address"},
		{"https://[fe80::1]", "fe80::1 is a link-local address"},
		{"https://0.0.0.0", "0.0.0.0 is an unspecified address (0.0.0.0/8)"},
		{"https://224.0.0.1", "224.0.0.1 is a multicast address (224.0.0.0/4)"},
		{"https://metadata.steward.test", "refused the connection to metadata.steward.test: 169.254.169.254 is a link-local address"},
		{"https://10.0.0.1", "10.0.0.1 is a private address (10.0.0.0/8); list the range in STEWARD_ALLOW_PRIVATE_INSTANCES"},
		{"https://internal.steward.test:8443", "refused the connection to internal.steward.test:8443: 10.0.0.1 is a private address"},
		{"https://127.0.0.1:" + port, "127.0.0.1 is a loopback address (127.0.0.0/8); only an integration marked local"},
		{"https://rebound.steward.test:" + port, "refused the connection to rebound.steward.test:" + port + ": 127.0.0.1 is a loopback address"},
	}
	for _, mode := range []servicenow.AuthMode{servicenow.AuthBasic, servicenow.AuthOAuthPassword} {
		for _, tc := range cases {
			g := &netpolicytest.Guard{}
			cfg := fastConfig(tc.url)
			cfg.AllowInsecureLoopback = false
			cfg.AuthMode, cfg.ClientID, cfg.ClientSecret = mode, testClientID, secret.New(testSecret)
			cfg.Policy = guardedPolicy(g, false)
			cfg.HTTPClient = loopbackOnly(tlsSrv.Client()) // a caller's transport gets the policy too
			logger, logs := newLogger(t)
			c, err := servicenow.New(cfg, logger)
			require.NoError(t, err)

			err = c.Validate(t.Context())
			e, ok := errors.AsType[*itsm.Error](err)
			require.True(t, ok, "%s: %v", tc.url, err)
			require.Equal(t, itsm.KindInvalid, e.Kind, "%s: %v", tc.url, err)
			require.False(t, e.Retryable, tc.url)
			require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
			require.Contains(t, steward.ErrorMessage(err), tc.want, tc.url)
			require.Empty(t, g.Seen(), "%s: nothing may reach the connect step", tc.url)
			itsmtest.AssertNoSecretLeak(t, err, testPassword, testSecret)
			itsmtest.AssertNoSecretLeak(t, logs.String(), testPassword, testSecret)
		}
	}
	require.Zero(t, reached.Load(), "no connection reached the loopback server")
}

func TestClient_PolicyAllowsListedPrivateRange(t *testing.T) {
	t.Parallel()
	// Allowed by the policy, the dial reaches the guard, which stops it:
	// the guard seeing the address is the proof, and nothing leaves.
	g := &netpolicytest.Guard{}
	p := guardedPolicy(g, false)
	p.AllowPrivate = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	cfg := fastConfig("https://internal.steward.test")
	cfg.AllowInsecureLoopback = false
	cfg.Policy = p
	cfg.HTTPClient = loopbackOnly(nil)
	c, err := servicenow.New(cfg, nil)
	require.NoError(t, err)
	err = c.Validate(t.Context())
	require.Error(t, err)
	require.NotContains(t, steward.ErrorMessage(err), "outbound policy")
	require.Equal(t, []string{"10.0.0.1:443"}, g.Seen())
}

func TestClient_PolicyWithCustomTLSClient(t *testing.T) {
	t.Parallel()
	emu := snowemu.New(snowemu.Options{}, nil)
	t.Cleanup(func() { _ = emu.Close() })
	srv := httptest.NewTLSServer(emu)
	t.Cleanup(srv.Close)
	g := &netpolicytest.Guard{Open: true}
	cfg := fastConfig(srv.URL)
	cfg.Username, cfg.Password = snowemu.DefaultAdminUser, secret.New(snowemu.DefaultAdminPassword)
	cfg.ClientID, cfg.ClientSecret = snowemu.DefaultClientID, secret.New(snowemu.DefaultClientSecret)
	cfg.HTTPClient = srv.Client() // trusts the test certificate
	cfg.Policy = guardedPolicy(g, true)
	c, err := servicenow.New(cfg, nil)
	require.NoError(t, err)
	require.NoError(t, c.Validate(t.Context()), "the caller's TLS roots are kept")
	require.NotEmpty(t, g.Seen(), "connections went through the policy's dialer")

	// Another RoundTripper would connect without the policy.
	cfg.HTTPClient = &http.Client{Transport: roundTripperFunc(func(*http.Request) (*http.Response, error) {
		t.Error("the custom RoundTripper was used")
		return nil, errors.New("unreachable")
	})}
	_, err = servicenow.New(cfg, nil)
	require.Error(t, err)
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
	require.Contains(t, err.Error(), "must be an *http.Transport when a Policy is set")
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestClient_ValidateRedirectToAnotherHost(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		writeJSON(w, 200, `{"result":[{"sys_id":"u1","user_name":"svc.steward","active":"true"}]}`)
	}))
	t.Cleanup(other.Close)

	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		for _, mode := range []servicenow.AuthMode{servicenow.AuthBasic, servicenow.AuthOAuthPassword} {
			var asked atomic.Int64
			c, _, logs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				asked.Add(1)
				w.Header().Set("Location", other.URL+r.URL.Path+"?sso_token=SECRETTOKEN")
				writeJSON(w, status, `{"error":{"message":"Moved: <script>relay me</script>"}}`)
			}, func(cfg *servicenow.Config) {
				cfg.AuthMode, cfg.ClientID, cfg.ClientSecret = mode, testClientID, secret.New(testSecret)
				cfg.Policy = &netpolicy.Policy{AllowLoopback: true} // the emulator's policy: loopback allowed, still no redirects
			})
			err := c.Validate(t.Context())
			require.Error(t, err)
			require.True(t, itsm.IsKind(err, itsm.KindInvalid), "%v", err)
			msg := steward.ErrorMessage(err)
			require.Contains(t, msg, "the instance answered with a redirect to "+other.URL+"; use that URL as the instance URL", "%d %s", status, mode)
			require.NotContains(t, msg, "relay me", "the answer's body is not quoted")
			require.NotContains(t, msg, "/api/now", "only the target's host is named")
			require.EqualValues(t, 1, asked.Load(), "one request, not retried")
			itsmtest.AssertNoSecretLeak(t, err, testPassword, testSecret, "SECRETTOKEN")
			itsmtest.AssertNoSecretLeak(t, logs.String(), testPassword, testSecret, "SECRETTOKEN")
		}
	}
	require.Zero(t, elsewhere.Load(), "the other host received no request")
}

func TestClient_ValidateRedirectOnTheSameHost(t *testing.T) {
	t.Parallel()
	c, srv, _ := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/login.do?sysparm_goto=x", http.StatusFound)
	}, nil)
	err := c.Validate(t.Context())
	require.Error(t, err)
	msg := steward.ErrorMessage(err)
	require.Contains(t, msg, "the instance answered HTTP 302, a redirect to another page of "+srv.Listener.Addr().String())
	require.NotContains(t, msg, "login.do")
}
