package netpolicy_test

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/netpolicy"
	"github.com/stewardhq/steward/internal/netpolicy/netpolicytest"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	onPrem := netpolicy.Policy{AllowPrivate: []netip.Prefix{
		netip.MustParsePrefix("10.20.0.0/16"),
		netip.MustParsePrefix("fd12:3456::/32"),
		netip.MustParsePrefix("::ffff:192.168.7.0/120"), // an IPv4-mapped spelling of 192.168.7.0/24
		netip.MustParsePrefix("169.254.0.0/16"),         // listing cannot open link-local
		netip.MustParsePrefix("fd00:ec2::/32"),          // nor a metadata address inside a listed range
	}}
	loopback := netpolicy.Policy{AllowLoopback: true}
	cases := []struct {
		addr   string
		policy netpolicy.Policy
		want   netpolicy.Reason // "" means allowed
		inText string           // the range the message names
	}{
		// Public addresses (only ever checked, never connected to).
		{addr: "8.8.8.8"},
		{addr: "149.96.5.10"},
		{addr: "2001:4860:4860::8888"},
		{addr: "::ffff:8.8.8.8"},
		{addr: "172.32.0.1"},  // just outside 172.16/12
		{addr: "100.128.0.1"}, // just outside 100.64/10
		{addr: "64:ff9b::808:808"},

		// Always refused, whatever the policy allows.
		{addr: "169.254.169.254", want: netpolicy.ReasonLinkLocal, inText: "169.254.0.0/16"},
		{addr: "169.254.169.254", policy: onPrem, want: netpolicy.ReasonLinkLocal},
		{addr: "169.254.0.1", policy: loopback, want: netpolicy.ReasonLinkLocal},
		{addr: "::ffff:169.254.169.254", want: netpolicy.ReasonLinkLocal, inText: "169.254.0.0/16"},
		{addr: "64:ff9b::a9fe:a9fe", want: netpolicy.ReasonLinkLocal, inText: "169.254.0.0/16"},
		{addr: "fe80::1", want: netpolicy.ReasonLinkLocal, inText: "fe80::/10"},
		{addr: "fe80::1%eth0", want: netpolicy.ReasonLinkLocal},
		{addr: "febf::1", want: netpolicy.ReasonLinkLocal},
		{addr: "fd00:ec2::254", want: netpolicy.ReasonMetadata},
		{addr: "fd00:ec2::254", policy: onPrem, want: netpolicy.ReasonMetadata},
		{addr: "100.100.100.200", want: netpolicy.ReasonMetadata},
		{addr: "0.0.0.0", want: netpolicy.ReasonUnspecified, inText: "0.0.0.0/8"},
		{addr: "0.1.2.3", policy: loopback, want: netpolicy.ReasonUnspecified},
		{addr: "::", want: netpolicy.ReasonUnspecified},
		{addr: "::ffff:0.0.0.0", want: netpolicy.ReasonUnspecified},
		{addr: "224.0.0.1", want: netpolicy.ReasonMulticast, inText: "224.0.0.0/4"},
		{addr: "239.255.255.250", want: netpolicy.ReasonMulticast},
		{addr: "ff02::1", want: netpolicy.ReasonMulticast, inText: "ff00::/8"},
		{addr: "::ffff:224.0.0.251", want: netpolicy.ReasonMulticast},
		{addr: "255.255.255.255", want: netpolicy.ReasonReserved, inText: "240.0.0.0/4"},

		// Loopback: only for a local integration.
		{addr: "127.0.0.1", want: netpolicy.ReasonLoopback, inText: "127.0.0.0/8"},
		{addr: "127.1.2.3", want: netpolicy.ReasonLoopback},
		{addr: "::1", want: netpolicy.ReasonLoopback},
		{addr: "::ffff:127.0.0.1", want: netpolicy.ReasonLoopback, inText: "127.0.0.0/8"},
		{addr: "64:ff9b::7f00:1", want: netpolicy.ReasonLoopback},
		{addr: "127.0.0.1", policy: onPrem, want: netpolicy.ReasonLoopback},
		{addr: "127.0.0.1", policy: loopback},
		{addr: "::1", policy: loopback},
		{addr: "::ffff:127.0.0.1", policy: loopback},

		// Private: refused unless listed.
		{addr: "10.0.0.1", want: netpolicy.ReasonPrivate, inText: "10.0.0.0/8"},
		{addr: "172.16.5.4", want: netpolicy.ReasonPrivate, inText: "172.16.0.0/12"},
		{addr: "172.31.255.255", want: netpolicy.ReasonPrivate},
		{addr: "192.168.1.1", want: netpolicy.ReasonPrivate, inText: "192.168.0.0/16"},
		{addr: "100.64.0.1", want: netpolicy.ReasonPrivate, inText: "100.64.0.0/10"},
		{addr: "fd12:3456::1", want: netpolicy.ReasonPrivate, inText: "fc00::/7"},
		{addr: "fc00::1", want: netpolicy.ReasonPrivate},
		{addr: "::ffff:10.0.0.1", want: netpolicy.ReasonPrivate, inText: "10.0.0.0/8"},
		{addr: "10.0.0.1", policy: loopback, want: netpolicy.ReasonPrivate},
		{addr: "10.20.3.4", policy: onPrem},
		{addr: "::ffff:10.20.3.4", policy: onPrem},
		{addr: "10.21.0.1", policy: onPrem, want: netpolicy.ReasonPrivate},
		{addr: "fd12:3456::1", policy: onPrem},
		{addr: "fd12:3457::1", policy: onPrem, want: netpolicy.ReasonPrivate},
		{addr: "192.168.7.9", policy: onPrem},
		{addr: "192.168.8.9", policy: onPrem, want: netpolicy.ReasonPrivate},
	}
	for _, tc := range cases {
		addr := netip.MustParseAddr(tc.addr)
		err := tc.policy.Check(addr)
		if tc.want == "" {
			require.NoError(t, err, "%s with %+v", tc.addr, tc.policy)
			continue
		}
		re, ok := errors.AsType[*netpolicy.RefusedError](err)
		require.True(t, ok, "%s with %+v: want a refusal, got %v", tc.addr, tc.policy, err)
		require.Equal(t, tc.want, re.Reason, tc.addr)
		msg := err.Error()
		require.Contains(t, msg, string(tc.want), tc.addr)
		if tc.inText != "" {
			require.Contains(t, msg, tc.inText, tc.addr)
		}
		switch tc.want {
		case netpolicy.ReasonPrivate:
			require.Contains(t, msg, "STEWARD_ALLOW_PRIVATE_INSTANCES", tc.addr)
		case netpolicy.ReasonLoopback:
			require.Contains(t, msg, "marked local", tc.addr)
		default:
			require.Contains(t, msg, "never connects there", tc.addr)
		}
	}
	require.Error(t, netpolicy.Policy{}.Check(netip.Addr{}), "the zero Addr")
}

func TestCheckMessage(t *testing.T) {
	t.Parallel()
	require.EqualError(t, netpolicy.Policy{}.Check(netip.MustParseAddr("169.254.169.254")),
		"169.254.169.254 is a link-local address, where cloud metadata services answer (169.254.0.0/16); Steward never connects there")
	require.EqualError(t, netpolicy.Policy{}.Check(netip.MustParseAddr("10.0.0.1")),
		"10.0.0.1 is a private address (10.0.0.0/8); list the range in STEWARD_ALLOW_PRIVATE_INSTANCES to allow an on-premises instance")
	require.EqualError(t, netpolicy.Policy{}.Check(netip.MustParseAddr("127.0.0.1")),
		"127.0.0.1 is a loopback address (127.0.0.0/8); only an integration marked local (the emulator) may connect there")
}

// countingListener accepts on loopback and counts connections.
func countingListener(t *testing.T) (port string, count func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			_ = c.Close()
		}
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

func TestDialRefusesWhatANameResolvesTo(t *testing.T) {
	t.Parallel()
	port, accepted := countingListener(t)
	resolver := netpolicytest.Resolver(map[string][]netip.Addr{
		"metadata.steward.test":   {netip.MustParseAddr("169.254.169.254")},
		"mapped.steward.test":     {netip.MustParseAddr("::ffff:169.254.169.254")},
		"linklocal6.steward.test": {netip.MustParseAddr("fe80::1")},
		"internal.steward.test":   {netip.MustParseAddr("10.0.0.1")},
		"rebound.steward.test":    {netip.MustParseAddr("127.0.0.1")},
		"mixed.steward.test":      {netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("fd00::1")},
	})
	cases := []struct {
		host string
		want netpolicy.Reason
	}{
		{"metadata.steward.test", netpolicy.ReasonLinkLocal},
		{"mapped.steward.test", netpolicy.ReasonLinkLocal},
		{"linklocal6.steward.test", netpolicy.ReasonLinkLocal},
		{"internal.steward.test", netpolicy.ReasonPrivate},
		{"rebound.steward.test", netpolicy.ReasonLoopback}, // a non-local integration
		{"mixed.steward.test", netpolicy.ReasonPrivate},
	}
	for _, tc := range cases {
		g := &netpolicytest.Guard{}
		p := netpolicy.Policy{Dialer: &net.Dialer{Resolver: resolver, ControlContext: g.Control, Timeout: 5 * time.Second}}
		conn, err := p.DialContext(t.Context(), "tcp", net.JoinHostPort(tc.host, port))
		if conn != nil {
			conn.Close()
		}
		re, ok := errors.AsType[*netpolicy.RefusedError](err)
		require.True(t, ok, "%s: want a refusal, got %v", tc.host, err)
		require.Equal(t, tc.want, re.Reason, tc.host)
		require.Empty(t, g.Seen(), "%s: no address may reach the connect step", tc.host)
	}
	require.Zero(t, accepted(), "nothing connected to the loopback listener")
}

func TestDialConnectsWhenAllowed(t *testing.T) {
	t.Parallel()
	port, accepted := countingListener(t)
	g := &netpolicytest.Guard{Open: true}
	p := netpolicy.Policy{AllowLoopback: true, Dialer: &net.Dialer{
		Resolver:       netpolicytest.Resolver(map[string][]netip.Addr{"emulator.steward.test": {netip.MustParseAddr("127.0.0.1")}}),
		ControlContext: g.Control,
		Timeout:        5 * time.Second,
	}}
	conn, err := p.DialContext(t.Context(), "tcp", net.JoinHostPort("emulator.steward.test", port))
	require.NoError(t, err)
	conn.Close()
	require.Equal(t, []string{"127.0.0.1:" + port}, g.Seen(), "the base Control runs after the check")
	require.Eventually(t, func() bool { return accepted() == 1 }, 5*time.Second, 10*time.Millisecond)
}

func TestDialKeepsDNSFailures(t *testing.T) {
	t.Parallel()
	g := &netpolicytest.Guard{}
	p := netpolicy.Policy{Dialer: &net.Dialer{Resolver: netpolicytest.Resolver(nil), ControlContext: g.Control}}
	_, err := p.DialContext(t.Context(), "tcp", "no-such-instance.steward.test:443")
	dnsErr, ok := errors.AsType[*net.DNSError](err)
	require.True(t, ok, "a name that does not exist stays a DNS error: %v", err)
	require.True(t, dnsErr.IsNotFound)
	require.Empty(t, g.Seen())
}

func TestTransportUsesNoProxyAndThePolicy(t *testing.T) {
	// Not parallel: it sets the proxy environment.
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	g := &netpolicytest.Guard{}
	p := netpolicy.Policy{Dialer: &net.Dialer{
		Resolver:       netpolicytest.Resolver(map[string][]netip.Addr{"instance.steward.test": {netip.MustParseAddr("10.1.2.3")}}),
		ControlContext: g.Control,
	}}
	base := http.DefaultTransport.(*http.Transport).Clone()
	tr := p.Transport(base)
	require.Nil(t, tr.Proxy, "a proxy would hide the instance's address from the check")
	require.NotNil(t, base.Proxy, "the base transport is not changed")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://instance.steward.test/api/now/table/incident", nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if resp != nil {
		resp.Body.Close()
	}
	re, ok := errors.AsType[*netpolicy.RefusedError](err)
	require.True(t, ok, "want a refusal, got %v", err)
	require.Equal(t, netip.MustParseAddr("10.1.2.3"), re.Addr)
	require.Empty(t, g.Seen())
	require.False(t, strings.Contains(err.Error(), "127.0.0.1:1"), "the proxy was not used: %v", err)
}
