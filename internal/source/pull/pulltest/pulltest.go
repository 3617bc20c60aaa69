// Package pulltest records what a Puller reads, for the pullers' tests.
package pulltest

import (
	"context"
	"sync"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/pull"
)

// Sink is a pull.Sink that keeps everything in memory and checks the
// contract: every observation valid, each unit ended exactly once, nothing
// observed for a unit after it ended.
type Sink struct {
	mu           sync.Mutex
	Observations map[string][]steward.Observation // by unit ID
	Tags         map[steward.Scope]map[string]string
	DoneUnits    []pull.Unit
	FailedUnits  map[string]error
	// Violations lists contract breaches; a test requires it empty.
	Violations []string
	ended      map[string]bool
}

// NewSink returns an empty Sink.
func NewSink() *Sink {
	return &Sink{Observations: map[string][]steward.Observation{}, Tags: map[steward.Scope]map[string]string{},
		FailedUnits: map[string]error{}, ended: map[string]bool{}}
}

func (s *Sink) Observe(ctx context.Context, unit pull.Unit, obs steward.Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := obs.Validate(); err != nil {
		s.Violations = append(s.Violations, "invalid observation in "+unit.ID+": "+err.Error())
	}
	if s.ended[unit.ID] {
		s.Violations = append(s.Violations, "observation after unit "+unit.ID+" ended")
	}
	s.Observations[unit.ID] = append(s.Observations[unit.ID], obs)
	return nil
}

func (s *Sink) ScopeTags(ctx context.Context, scope steward.Scope, tags map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Tags[scope] = tags
	return nil
}

func (s *Sink) Done(ctx context.Context, unit pull.Unit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.end(unit)
	s.DoneUnits = append(s.DoneUnits, unit)
	return nil
}

func (s *Sink) Failed(ctx context.Context, unit pull.Unit, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.end(unit)
	s.FailedUnits[unit.ID] = err
}

func (s *Sink) end(unit pull.Unit) {
	if s.ended[unit.ID] {
		s.Violations = append(s.Violations, "unit "+unit.ID+" ended twice")
	}
	s.ended[unit.ID] = true
}

// All returns every observation, in unit order of first observation.
func (s *Sink) All() []steward.Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []steward.Observation
	for _, obs := range s.Observations {
		out = append(out, obs...)
	}
	return out
}
