package server

import (
	"time"

	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/stewardhq/steward/internal/collector"
	"github.com/stewardhq/steward/internal/netpolicy"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/store"
)

// Option changes how New builds a server.
type Option func(*options)

type options struct {
	sourceKinds collector.Registry
	timing      processTiming // process.go
	syncBatch   int
	// notifyRetry is the first wait before a refused e-mail is tried
	// again (notify.Config.RetryBackoff); 0 is the default.
	notifyRetry time.Duration
	// notifyClock replaces the notification service's clock (tests).
	notifyClock func() time.Time
	// reportClock and reportRefresh: the governance snapshotter's clock
	// and provisional refresh interval (tests).
	reportClock   func() time.Time
	reportRefresh time.Duration
}

// WithNotifyRetryBackoff sets the first wait before a refused e-mail is
// tried again (tests shorten it).
func WithNotifyRetryBackoff(d time.Duration) Option {
	return func(o *options) { o.notifyRetry = d }
}

// WithSyncBatch sets how many changed tickets one refresh reads and applies
// together (ticketsync.Config.SyncBatch); 1 is the one-read-per-event
// baseline `steward bench` compares against.
func WithSyncBatch(n int) Option {
	return func(o *options) { o.syncBatch = n }
}

// WithSourceKinds adds kinds of live source to those built in (tests
// register collectortest's scripted kind this way).
func WithSourceKinds(kinds collector.Registry) Option {
	return func(o *options) {
		for name, k := range kinds {
			o.sourceKinds[name] = k
		}
	}
}

// SourceKinds is the registry of the live source kinds this build can
// pull, from the provider packages under internal/source.
func SourceKinds() collector.Registry {
	r := collector.Registry{}
	for _, k := range builtinSourceKinds() {
		r[k.Name] = k
	}
	return r
}

// SourceEnv builds what a source's Puller gets: an HTTP client whose
// connections obey the outbound policy (loopback only for a source whose
// settings say local: true, which the providers accept only with a loopback
// endpoint), never following a proxy.
func SourceEnv(logger *slog.Logger, policy netpolicy.Policy) func(src *store.SourceRecord) pull.Env {
	return func(src *store.SourceRecord) pull.Env {
		var local struct {
			Local bool `json:"local"`
		}
		_ = json.Unmarshal(src.Settings, &local) // settings were validated when stored
		p := policy
		p.AllowLoopback = local.Local
		return pull.Env{
			HTTPClient: &http.Client{Transport: p.Transport(nil)},
			Logger:     logger.With("source", src.Name, "kind", src.Kind),
		}
	}
}
