// Package collectortest is a source kind for tests ("test"): a Puller that
// serves the observations a test scripts, unit by unit, including failed
// units and failed pulls. Register Kind() in a collector.Registry (the
// server takes one through server.WithSourceKinds) and name a script in the
// source's settings: {"script": "<name>"}.
package collectortest

import (
	"context"
	"sync"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/collector"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/source/pull"
)

// KindName is the test kind's name.
const KindName = "test"

// Settings of a test source.
type Settings struct {
	Script string `json:"script"`
	// Local is accepted like the real providers' (no effect).
	Local bool `json:"local,omitempty"`
}

// Validate requires a script name.
func (s *Settings) Validate() error {
	if s.Script == "" {
		return steward.AtField("script", steward.Errorf(steward.CodeInvalid, "script is missing"))
	}
	return nil
}

// Secrets of a test source: an optional token the script receives.
type Secrets struct {
	Token secret.String `json:"token"`
}

// Validate accepts any token.
func (Secrets) Validate(Settings) error { return nil }

// Script is what a test source's Pull does.
type Script func(ctx context.Context, sink pull.Sink, token secret.String) error

var scripts sync.Map // name → Script

// SetScript makes name's pulls run fn (replacing any earlier script).
func SetScript(name string, fn Script) { scripts.Store(name, fn) }

// Unit is one unit a Serve script reads: its observations, then Done, or
// Failed with Fail after them when Fail is set.
type Unit struct {
	Unit pull.Unit
	Obs  []steward.Observation
	Fail error
	Tags map[steward.Scope]map[string]string
}

// Serve is a Script reading units in order.
func Serve(units ...Unit) Script {
	return func(ctx context.Context, sink pull.Sink, _ secret.String) error {
		for _, u := range units {
			for sc, tags := range u.Tags {
				if err := sink.ScopeTags(ctx, sc, tags); err != nil {
					return err
				}
			}
			for _, o := range u.Obs {
				if err := sink.Observe(ctx, u.Unit, o); err != nil {
					return err
				}
			}
			if u.Fail != nil {
				sink.Failed(ctx, u.Unit, u.Fail)
				continue
			}
			if err := sink.Done(ctx, u.Unit); err != nil {
				return err
			}
		}
		return nil
	}
}

type puller struct {
	script Script
	token  secret.String
}

func (p *puller) Pull(ctx context.Context, sink pull.Sink) error { return p.script(ctx, sink, p.token) }

// New builds the Puller of a test source.
func New(s Settings, sec Secrets, _ pull.Env) (pull.Puller, error) {
	fn, ok := scripts.Load(s.Script)
	if !ok {
		return nil, steward.Errorf(steward.CodeInvalid, "no test script named %q", s.Script)
	}
	return &puller{script: fn.(Script), token: sec.Token}, nil
}

// Kind is the test kind for a collector.Registry.
func Kind() collector.Kind { return collector.Provider[Settings](KindName, New) }
