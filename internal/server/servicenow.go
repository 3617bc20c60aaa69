package server

import (
	"log/slog"
	"sort"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/itsm/servicenow"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// ServiceNowFactory builds a ServiceNow client from a stored integration.
// It is the only place that knows both Steward's integration record and the
// client's configuration.
func ServiceNowFactory(logger *slog.Logger, opts ...servicenow.Option) ticketsync.ProviderFactory {
	return func(in *steward.Integration, secrets store.IntegrationSecrets) (itsm.Provider, error) {
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
		}
		return servicenow.New(cfg, logger.With("integration", in.Name), opts...)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
