// Package netpolicy decides which network addresses Steward may connect to
// on behalf of an integration, and enforces it as connections are made.
//
// An instance URL is typed by a user, so without a policy Steward would
// send stored credentials, and turn its validation messages into a probe,
// toward whatever the URL's host resolves to: cloud metadata services,
// the host's own loopback services, the internal network. The check runs
// in the dialer's Control function, on the address actually being
// connected after DNS resolution, so a name that resolves (or re-resolves,
// DNS rebinding) to a refused address is refused too.
package netpolicy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Policy says which addresses may be connected to. The zero Policy allows
// public unicast addresses only.
type Policy struct {
	// AllowLoopback permits 127.0.0.0/8 and ::1. Steward sets it only for
	// an integration marked local (the emulator).
	AllowLoopback bool
	// AllowPrivate lists the private ranges that may be connected to
	// (on-premises instances). Ranges that are always refused (link-local,
	// metadata, unspecified, multicast, reserved) stay refused even when
	// listed; loopback follows AllowLoopback only.
	AllowPrivate []netip.Prefix
	// Dialer is the base of the dialer that connects: timeouts, keep-alive
	// and Resolver (tests map names to addresses there). Nil means one like
	// http.DefaultTransport's. DialContext uses a copy whose Control checks
	// the address first and only then runs the base's ControlContext or
	// Control, so a base Control never sees a refused address.
	Dialer *net.Dialer
}

// Reason says why an address is refused.
type Reason string

// The reasons for refusing an address.
const (
	ReasonUnspecified Reason = "an unspecified address"
	ReasonLinkLocal   Reason = "a link-local address, where cloud metadata services answer"
	ReasonMetadata    Reason = "a cloud metadata address"
	ReasonMulticast   Reason = "a multicast address"
	ReasonReserved    Reason = "a reserved or broadcast address"
	ReasonLoopback    Reason = "a loopback address"
	ReasonPrivate     Reason = "a private address"
	ReasonInvalid     Reason = "not an IP address"
)

// RefusedError is returned by Check, and from dials, for an address the
// policy refuses. Its text names the address, the range and what, if
// anything, would allow it; it holds nothing that came from the remote
// side.
type RefusedError struct {
	Addr   netip.Addr
	Range  netip.Prefix // the refused range that holds Addr; may be invalid for ReasonInvalid
	Reason Reason
}

func (e *RefusedError) Error() string {
	var fix string
	switch e.Reason {
	case ReasonLoopback:
		fix = "only an integration marked local (the emulator) may connect there"
	case ReasonPrivate:
		fix = "list the range in STEWARD_ALLOW_PRIVATE_INSTANCES to allow an on-premises instance"
	default:
		fix = "Steward never connects there"
	}
	if !e.Range.IsValid() {
		return fmt.Sprintf("%s is %s; %s", e.Addr, e.Reason, fix)
	}
	if e.Range.Bits() == e.Range.Addr().BitLen() {
		return fmt.Sprintf("%s is %s; %s", e.Addr, e.Reason, fix)
	}
	return fmt.Sprintf("%s is %s (%s); %s", e.Addr, e.Reason, e.Range, fix)
}

// refusal is one refused range; the first match wins.
type refusal struct {
	prefix netip.Prefix
	reason Reason
}

// refusals lists every range the policy refuses, in the order checked.
// Specific metadata addresses come before the broader ranges holding
// them: a listed private range must not open a metadata service.
var refusals = []refusal{
	{netip.MustParsePrefix("0.0.0.0/8"), ReasonUnspecified}, // "this network": 0.0.0.0 reaches the host itself on Linux
	{netip.MustParsePrefix("::/128"), ReasonUnspecified},
	{netip.MustParsePrefix("100.100.100.200/32"), ReasonMetadata}, // Alibaba Cloud
	{netip.MustParsePrefix("fd00:ec2::254/128"), ReasonMetadata},  // AWS over IPv6
	{netip.MustParsePrefix("169.254.0.0/16"), ReasonLinkLocal},    // AWS, Azure, GCP, OpenStack metadata at 169.254.169.254
	{netip.MustParsePrefix("fe80::/10"), ReasonLinkLocal},
	{netip.MustParsePrefix("224.0.0.0/4"), ReasonMulticast},
	{netip.MustParsePrefix("ff00::/8"), ReasonMulticast},
	{netip.MustParsePrefix("240.0.0.0/4"), ReasonReserved}, // includes 255.255.255.255
	{netip.MustParsePrefix("127.0.0.0/8"), ReasonLoopback},
	{netip.MustParsePrefix("::1/128"), ReasonLoopback},
	{netip.MustParsePrefix("10.0.0.0/8"), ReasonPrivate},
	{netip.MustParsePrefix("172.16.0.0/12"), ReasonPrivate},
	{netip.MustParsePrefix("192.168.0.0/16"), ReasonPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), ReasonPrivate}, // carrier-grade NAT, internal like the RFC 1918 ranges
	{netip.MustParsePrefix("fc00::/7"), ReasonPrivate},
}

// nat64 is the well-known NAT64 prefix: on a NAT64 network
// 64:ff9b::a9fe:a9fe reaches 169.254.169.254, so the embedded IPv4
// address is checked as well.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Check returns nil when addr may be connected to, else a *RefusedError.
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are checked as the IPv4
// address they carry, and zones are ignored.
func (p Policy) Check(addr netip.Addr) error {
	if !addr.IsValid() {
		return &RefusedError{Addr: addr, Reason: ReasonInvalid}
	}
	addr = addr.Unmap().WithZone("")
	if nat64.Contains(addr) {
		b := addr.As16()
		if err := p.Check(netip.AddrFrom4([4]byte(b[12:]))); err != nil {
			re := err.(*RefusedError)
			return &RefusedError{Addr: addr, Range: re.Range, Reason: re.Reason}
		}
	}
	for _, r := range refusals {
		if !r.prefix.Contains(addr) {
			continue
		}
		switch {
		case r.reason == ReasonLoopback && p.AllowLoopback:
			return nil
		case r.reason == ReasonPrivate && p.allowsPrivate(addr):
			return nil
		}
		return &RefusedError{Addr: addr, Range: r.prefix, Reason: r.reason}
	}
	return nil
}

func (p Policy) allowsPrivate(addr netip.Addr) bool {
	for _, pre := range p.AllowPrivate {
		if pre.Addr().Is4In6() && pre.Bits() >= 96 {
			// ::ffff:10.0.0.0/104 means 10.0.0.0/8.
			pre = netip.PrefixFrom(pre.Addr().Unmap(), pre.Bits()-96)
		}
		if pre.Contains(addr) {
			return true
		}
	}
	return false
}

// Control has the signature of net.Dialer.ControlContext: it checks the
// address a socket is about to connect to, after DNS resolution and
// before the connect system call.
func (p Policy) Control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// net.Dialer always passes an IP:port here; anything else is
		// refused rather than guessed at.
		return &RefusedError{Reason: ReasonInvalid}
	}
	return p.Check(ap.Addr())
}

// DialContext connects like net.Dialer.DialContext, refusing any address
// the policy does not allow before a connection is attempted. The error
// chain then holds a *RefusedError.
func (p Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return p.dialer().DialContext(ctx, network, address)
}

func (p Policy) dialer() *net.Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if p.Dialer != nil {
		cp := *p.Dialer
		d = &cp
	}
	baseCtx, base := d.ControlContext, d.Control
	d.Control = nil // ControlContext wins over Control; keep both behind the check
	d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := p.Control(ctx, network, address, c); err != nil {
			return err
		}
		switch {
		case baseCtx != nil:
			return baseCtx(ctx, network, address, c)
		case base != nil:
			return base(network, address, c)
		}
		return nil
	}
	return d
}

// Transport returns a copy of base (nil: http.DefaultTransport) that
// connects through the policy.
//
// It uses no proxy, whatever base or the environment says: through a
// proxy the dialer would check only the proxy's address while the proxy
// resolved and reached the instance unchecked. TLS connections are dialled
// through DialContext too (with base's TLSClientConfig), so a custom TLS
// dial function of base is dropped.
func (p Policy) Transport(base *http.Transport) *http.Transport {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	t := base.Clone()
	t.Proxy = nil
	t.OnProxyConnectResponse = nil
	t.DialContext = p.DialContext
	t.DialTLSContext = nil
	// A deprecated DialTLS would otherwise still dial https connections;
	// the deprecated Dial needs nothing, DialContext takes precedence.
	//lint:ignore SA1019 cleared so that it cannot bypass the policy
	t.DialTLS = nil
	return t
}
