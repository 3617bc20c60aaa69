package server

import "github.com/stewardhq/steward/internal/collector"

// builtinSourceKinds are the provider packages wired into this build.
func builtinSourceKinds() []collector.Kind {
	return nil
}
