package server

import (
	"github.com/stewardhq/steward/internal/collector"
	"github.com/stewardhq/steward/internal/source/defender"
	"github.com/stewardhq/steward/internal/source/scc"
	"github.com/stewardhq/steward/internal/source/securityhub"
)

// builtinSourceKinds are the provider packages wired into this build: each
// has pull.go's shape (Settings, Secrets, New), adapted by
// collector.Provider.
func builtinSourceKinds() []collector.Kind {
	return []collector.Kind{
		collector.Provider[defender.Settings]("defender", defender.New),
		collector.Provider[securityhub.Settings]("securityhub", securityhub.New),
		collector.Provider[scc.Settings]("scc", scc.New),
	}
}
