package pull

import (
	"net"
	"net/url"
	"strings"

	"github.com/stewardhq/steward"
)

// CheckEndpoint enforces the one rule for a provider's endpoint override:
// it is only for a local test server, on a loopback address, and only
// together with local: true — the rule integrations follow for a local
// instance — so a credential is never sent to a host a user picked. service
// names the real service for the message ("Azure", "AWS", "Google Cloud").
// Errors are CodeInvalid at the field they are about (endpoint, local).
func CheckEndpoint(raw string, local bool, service string) error {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		if local {
			return steward.InvalidAt("local", "local: true is only for an endpoint on a loopback address (a local test server); set endpoint or drop local")
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return steward.InvalidAt("endpoint", "endpoint %q is not a URL like http://127.0.0.1:8443", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return steward.InvalidAt("endpoint", "endpoint must not carry credentials, a query or a fragment")
	}
	if !IsLoopback(u.Hostname()) {
		return steward.InvalidAt("endpoint", "endpoint is only for a local test server on a loopback address (127.0.0.1, ::1, localhost); leave it empty for %s", service)
	}
	if !local {
		return steward.InvalidAt("local", "endpoint is a loopback address; set local: true if this is a local test server")
	}
	return nil
}

// IsLoopback reports whether host names the loopback interface.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
