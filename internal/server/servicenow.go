package server

import (
	"log/slog"
	"sort"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/itsm/servicenow"
	"github.com/stewardhq/steward/internal/netpolicy"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// ServiceNowFactory builds a ServiceNow client from a stored integration.
// It is the only place that knows both Steward's integration record and the
// client's configuration.
//
// Every client connects through policy, the outbound policy: its
// AllowLoopback is replaced by the integration's local flag, so only an
// integration marked local (the emulator) reaches loopback, and a name
// that resolves to 127.0.0.1 does not make a remote integration local.
// On PostgreSQL, where several processes may serve one database, every
// client paces its requests by the integration's budget in the database
// (store.RateLimiter), so all processes together stay within the
// integration's requests_per_second, and a 429's Retry-After holds them
// all back. On SQLite (one process per database file) and with a nil db
// the client keeps its in-process token bucket: the same limit, without a
// database round trip per request.
func ServiceNowFactory(db *store.DB, logger *slog.Logger, policy netpolicy.Policy, opts ...servicenow.Option) ticketsync.ProviderFactory {
	return func(in *steward.Integration, secrets store.IntegrationSecrets) (itsm.Provider, error) {
		p := policy
		p.AllowLoopback = in.Local
		mode := map[steward.AuthMode]servicenow.AuthMode{
			steward.AuthOAuthPassword:     servicenow.AuthOAuthPassword,
			steward.AuthBasic:             servicenow.AuthBasic,
			steward.AuthClientCredentials: servicenow.AuthClientCredentials,
		}[in.AuthMode]
		tables := map[string]bool{}
		base := map[string]string{}
		for _, tt := range steward.TicketTypes {
			table := itsm.DefaultTable(tt)
			if m, ok := in.TicketTypes[tt]; ok && m.Table != "" && m.Table != table {
				base[m.Table] = table
				table = m.Table
			}
			tables[table] = true
		}
		cfg := servicenow.Config{
			Name:                  in.Name,
			InstanceURL:           in.InstanceURL,
			AllowInsecureLoopback: in.Local,
			Username:              in.Username,
			Password:              secrets.Password,
			ClientID:              in.ClientID,
			ClientSecret:          secrets.ClientSecret,
			AuthMode:              mode,
			RequestsPerSecond:     in.RequestsPerSecond,
			Tables:                sortedKeys(tables),
			TableBase:             base,
			Policy:                &p,
		}
		o := opts
		// An integration not saved yet (its settings being checked) has no
		// budget row to share: its few probes use the in-process limit.
		if db != nil && db.Postgres() && in.ID != 0 {
			id := in.ID
			o = append(opts[:len(opts):len(opts)], servicenow.WithLimiter(func(rps float64, burst int) servicenow.Limiter {
				return db.RateLimiter(id, rps, burst)
			}))
		}
		return servicenow.New(cfg, logger.With("integration", in.Name), o...)
	}
}

// outboundPolicy is the policy of every integration's connections: the
// private ranges the configuration allows (on-premises instances).
func outboundPolicy(cfg config.Config) netpolicy.Policy {
	return netpolicy.Policy{AllowPrivate: cfg.AllowPrivateInstances}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
