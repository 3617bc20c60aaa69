package ticketsync_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/netpolicy"
	"github.com/stewardhq/steward/internal/netpolicy/netpolicytest"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
)

// TestCreateIntegrationUnknownHost: an instance name that does not resolve
// fails validation naming the host. The lookup goes to an in-memory
// resolver that knows no names, so the test sends no DNS query.
func TestCreateIntegrationUnknownHost(t *testing.T) {
	t.Parallel()
	g := &netpolicytest.Guard{}
	svc, db := outboundService(t, netpolicy.Policy{
		Dialer: &net.Dialer{Resolver: netpolicytest.Resolver(map[string][]netip.Addr{}), ControlContext: g.Control, Timeout: 5 * time.Second},
	})
	in := &steward.Integration{Name: "probe", Scope: "/", InstanceURL: "https://no-such-instance.steward.test", AuthMode: steward.AuthBasic, Username: "admin"}
	err := svc.CreateIntegration(t.Context(), in, store.IntegrationSecrets{Password: secret.New(emuPassword)}, false, "test")
	require.Error(t, err)
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err), "%v", err)
	require.Contains(t, steward.ErrorMessage(err), "no-such-instance.steward.test")
	require.NotContains(t, steward.ErrorMessage(err), emuPassword)
	require.Empty(t, g.Seen(), "no connection was attempted")
	stored, err := db.FindIntegrations(t.Context())
	require.NoError(t, err)
	require.Empty(t, stored)
}
