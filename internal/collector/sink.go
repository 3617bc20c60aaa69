package collector

import (
	"context"
	"log/slog"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/store"
)

// sink is the pull.Sink of one run attempt: it checks each observation
// against the source's scope, applies them in chunks, records the run's
// counts and units in each chunk's transaction, and runs the gone rule for
// each unit read completely.
type sink struct {
	s      *Service
	src    *store.SourceRecord
	run    *steward.SourceRun
	mark   store.SourceMark
	units  map[string]int // unit ID → index in run.Units
	chunk  []steward.Observation
	logger *slog.Logger
	// flushed is when kept observations were last applied: a slow pull
	// applies (and shows its progress) at least every progressEvery.
	flushed time.Time
}

// progressEvery bounds how long observations wait to be applied, so a run's
// progress moves while a slow pull reads page after page.
const progressEvery = 2 * time.Second

var _ pull.Sink = (*sink)(nil)

func (k *sink) unit(u pull.Unit) *steward.SourceUnit {
	i, ok := k.units[u.ID]
	if !ok {
		i = len(k.run.Units)
		k.units[u.ID] = i
		k.run.Units = append(k.run.Units, steward.SourceUnit{ID: u.ID, Scope: u.Scope})
	}
	return &k.run.Units[i]
}

// Observe keeps obs for the next chunk, or refuses it (counted as an error
// of its unit) when it is invalid or outside the source's scope.
func (k *sink) Observe(ctx context.Context, u pull.Unit, obs steward.Observation) error {
	unit := k.unit(u)
	if err := obs.Validate(); err != nil {
		unit.Refused++
		k.run.Errors++
		k.logger.DebugContext(ctx, "observation refused", slog.String("unit", u.ID), slog.String("reason", steward.ErrorMessage(err)))
		return nil
	}
	if !k.src.Scope.Contains(obs.Resource.ID) {
		unit.Refused++
		k.run.Errors++
		k.logger.DebugContext(ctx, "observation outside the source's scope refused", slog.String("unit", u.ID),
			slog.String("resource", obs.Resource.ID), slog.String("scope", string(k.src.Scope)))
		return nil
	}
	unit.Observed++
	k.run.Observed++
	k.chunk = append(k.chunk, obs)
	if len(k.chunk) >= k.s.chunkSize || time.Since(k.flushed) >= progressEvery {
		return k.flush(ctx)
	}
	return nil
}

// flush applies the kept observations (possibly none: then it records the
// run's progress) in one transaction with the run's counts.
func (k *sink) flush(ctx context.Context) error {
	_, err := k.s.ingest.ApplySourceChunk(ctx, k.chunk, k.s.db.Now(), &k.mark, func(tx *store.Tx, res store.ApplyResult) error {
		k.run.New += res.AssessmentsCreated
		k.run.Changed += res.StatusChanged
		k.run.Unchanged += res.Unchanged
		return tx.UpdateSourceRun(ctx, k.run)
	})
	k.chunk = k.chunk[:0]
	k.flushed = time.Now()
	return err
}

// ScopeTags merges a container's tags into the stored scope tags (keys the
// source reports take its values; others, set by people, stay). Tags of a
// scope outside the source's are ignored.
func (k *sink) ScopeTags(ctx context.Context, scope steward.Scope, tags map[string]string) error {
	if scope.Validate() != nil || !k.src.Scope.Contains(string(scope)) {
		k.logger.DebugContext(ctx, "scope tags outside the source's scope ignored", slog.String("scope", string(scope)))
		return nil
	}
	return k.s.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.MergeScopeTags(ctx, scope, tags, "source:"+k.src.Name)
		return err
	})
}

// Done applies what is kept, then marks gone (Healthy) every finding this
// source reported earlier in the unit's scope (within the source's) that
// this pull did not observe, through the same ingest path, so their
// assignments complete and tickets resolve.
func (k *sink) Done(ctx context.Context, u pull.Unit) error {
	unit := k.unit(u)
	if err := k.flush(ctx); err != nil {
		return err
	}
	scope, ok := intersect(k.src.Scope, u.Scope)
	if ok {
		reason := "no longer reported by source " + k.src.Name
		var after int64
		for {
			gone, last, err := k.s.db.GoneCandidates(ctx, k.src.ID, k.mark.Pull, scope, reason, after, k.s.chunkSize)
			if err != nil {
				return err
			}
			if len(gone) == 0 {
				break
			}
			after = last
			_, err = k.s.ingest.ApplySourceChunk(ctx, gone, k.s.db.Now(), nil, func(tx *store.Tx, res store.ApplyResult) error {
				unit.Gone += res.StatusChanged
				k.run.Gone += res.StatusChanged
				return tx.UpdateSourceRun(ctx, k.run)
			})
			if err != nil {
				return err
			}
		}
	}
	unit.Done = true
	return k.flush(ctx)
}

// Failed records the unit's error; nothing is marked gone in it.
func (k *sink) Failed(ctx context.Context, u pull.Unit, err error) {
	unit := k.unit(u)
	unit.Done = false
	unit.Error = steward.ErrorMessage(err)
	k.run.Errors++
	k.logger.WarnContext(ctx, "source unit failed", slog.String("unit", u.ID), slog.String("error", unit.Error))
}

// intersect returns the narrower of two scopes when one lies inside the
// other.
func intersect(a, b steward.Scope) (steward.Scope, bool) {
	if b.Validate() != nil {
		return "", false
	}
	switch {
	case a.Contains(string(b.Normalize())):
		return b.Normalize(), true
	case b.Contains(string(a.Normalize())):
		return a.Normalize(), true
	}
	return "", false
}
