package ticketsync_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/netpolicy"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
)

// TestProviderSharedUnderConcurrency: workers that ask for an
// integration's provider at the same moment on a cold cache all get the
// same one, so the integration has one rate limiter, not one per caller.
func TestProviderSharedUnderConcurrency(t *testing.T) {
	t.Parallel()
	svc, db := outboundService(t, netpolicy.Policy{})
	box, err := secret.NewBox(make([]byte, 32))
	require.NoError(t, err)
	db.SetSecretBox(box)
	in := &steward.Integration{Name: "shared", Scope: "/", InstanceURL: "https://shared.service-now.example", AuthMode: steward.AuthBasic, Username: "svc"}
	require.NoError(t, svc.CreateIntegration(t.Context(), in, store.IntegrationSecrets{Password: secret.New("pw")}, true, "test"))
	for round := range 20 {
		svc, _ := outboundServiceOn(t, db, netpolicy.Policy{}) // a cold cache each round
		var wg sync.WaitGroup
		got := make([]itsm.Provider, 50)
		for i := range got {
			wg.Go(func() {
				p, _, err := svc.Provider(t.Context(), in.ID)
				require.NoError(t, err)
				got[i] = p
			})
		}
		wg.Wait()
		for i := range got {
			require.True(t, got[i] == got[0], "round %d: caller %d got another provider", round, i)
		}
	}
}
