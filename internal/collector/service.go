// Package collector runs Steward's live sources: the configured sources
// (a kind, a scope it may write to, a schedule, kind-specific settings and
// sealed secrets), their runs as River jobs (source_pull), the schedule
// that queues them (source_schedule), and the sink a provider's Puller
// hands findings to, which applies them in chunks through the ingest path
// and, for each unit read completely, marks as gone (Healthy) the findings
// of this source in the unit's scope that were not observed.
package collector

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/ingest"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/store"
)

// Schedule bounds and default.
const (
	DefaultSchedule = time.Hour
	MinSchedule     = 5 * time.Minute
	MaxSchedule     = 24 * time.Hour
	// abandonedAfter is how long a run may stay queued or running before a
	// new run replaces it: well past 3 attempts of pullTimeout, their
	// backoffs and the stuck-job rescue.
	abandonedAfter = 3 * time.Hour
	// DefaultChunkSize is how many observations one transaction applies.
	DefaultChunkSize = ingest.DefaultChunkSize
)

// Config is what the Service needs.
type Config struct {
	DB       *store.DB
	Ingester *ingest.Ingester
	Queue    *jobs.Queue
	Kinds    Registry
	// Env gives a source's Puller its HTTP client (through the outbound
	// policy), logger and clock.
	Env    func(src *store.SourceRecord) pull.Env
	Logger *slog.Logger
	// ChunkSize overrides DefaultChunkSize (tests).
	ChunkSize int
}

// Service manages sources and runs them.
type Service struct {
	db        *store.DB
	ingest    *ingest.Ingester
	queue     *jobs.Queue
	kinds     Registry
	env       func(src *store.SourceRecord) pull.Env
	logger    *slog.Logger
	chunkSize int
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{db: cfg.DB, ingest: cfg.Ingester, queue: cfg.Queue, kinds: cfg.Kinds, env: cfg.Env,
		logger: cfg.Logger, chunkSize: cfg.ChunkSize}
	if s.chunkSize <= 0 {
		s.chunkSize = DefaultChunkSize
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.kinds == nil {
		s.kinds = Registry{}
	}
	if s.env == nil {
		s.env = func(*store.SourceRecord) pull.Env { return pull.Env{} }
	}
	return s
}

// Kinds lists the kinds this server can pull.
func (s *Service) Kinds() []string { return s.kinds.Names() }

// ParseSchedule reads a schedule ("1h", "30m"); "" is the default. It must
// lie within 5m..24h.
func ParseSchedule(v string) (time.Duration, error) {
	if strings.TrimSpace(v) == "" {
		return DefaultSchedule, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, steward.AtField("schedule", steward.Errorf(steward.CodeInvalid, "schedule %q is not a duration such as 1h or 30m", v))
	}
	if d < MinSchedule || d > MaxSchedule {
		return 0, steward.AtField("schedule", steward.Errorf(steward.CodeInvalid, "schedule %s is outside 5m..24h", v))
	}
	return d.Truncate(time.Second), nil
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", steward.AtField("name", steward.Errorf(steward.CodeInvalid, "name is missing"))
	case len(name) > 200:
		return "", steward.AtField("name", steward.Errorf(steward.CodeInvalid, "name is longer than 200 characters"))
	case strings.Trim(name, "0123456789") == "":
		return "", steward.AtField("name", steward.Errorf(steward.CodeInvalid, "name %q is all digits; sources are addressed by ID or name", name))
	}
	return name, nil
}

func checkScope(sc steward.Scope) (steward.Scope, error) {
	if strings.TrimSpace(string(sc)) == "" {
		return "", steward.AtField("scope", steward.Errorf(steward.CodeInvalid, "scope is missing: the part of the resource tree the source may write to, e.g. /subscriptions/<id> or / for everything"))
	}
	if err := sc.Validate(); err != nil {
		var e *steward.Error
		if asError(err, &e) {
			return "", steward.AtField("scope", e)
		}
		return "", err
	}
	return sc.Normalize(), nil
}

func (s *Service) kind(name string) (Kind, error) {
	k, ok := s.kinds[name]
	if !ok {
		known := "none are available in this build"
		if names := s.kinds.Names(); len(names) > 0 {
			known = "want one of " + strings.Join(names, ", ")
		}
		return Kind{}, steward.AtField("kind", steward.Errorf(steward.CodeInvalid, "unknown source kind %q: %s", name, known))
	}
	return k, nil
}

// secretInput turns the input's secrets into store form, refusing names the
// kind does not have.
func secretInput(k Kind, in map[string]string) (store.SourceSecrets, error) {
	out := store.SourceSecrets{}
	for name, v := range in {
		if !slices.Contains(k.SecretFields, name) {
			want := "it has none"
			if len(k.SecretFields) > 0 {
				want = "want " + strings.Join(k.SecretFields, ", ")
			}
			return nil, steward.AtField("secrets."+name, steward.Errorf(steward.CodeInvalid, "kind %s has no secret %q: %s", k.Name, name, want))
		}
		out[name] = secret.New(v)
	}
	return out, nil
}

// View is the API's view of a source: secrets as has_<field> flags, the
// last run.
func (s *Service) View(ctx context.Context, rec *store.SourceRecord) (*steward.Source, error) {
	v := rec.Source
	v.Secrets = map[string]bool{}
	fields := rec.SecretFields
	if k, ok := s.kinds[rec.Kind]; ok {
		for _, f := range k.SecretFields {
			v.Secrets["has_"+f] = false
		}
	}
	for _, f := range fields {
		v.Secrets["has_"+f] = true
	}
	if len(v.Settings) == 0 {
		v.Settings = json.RawMessage("{}")
	}
	runs, err := s.db.FindSourceRuns(ctx, rec.ID, 1)
	if err != nil {
		return nil, err
	}
	if len(runs) > 0 {
		v.LastRun = runs[0]
	}
	return &v, nil
}

// Create validates and stores a new source, audited as actor.
func (s *Service) Create(ctx context.Context, in steward.SourceInput, actor string) (*store.SourceRecord, error) {
	rec := &store.SourceRecord{}
	var err error
	if in.Name == nil {
		in.Name = new(string)
	}
	if rec.Name, err = checkName(*in.Name); err != nil {
		return nil, err
	}
	if in.Kind == nil || *in.Kind == "" {
		return nil, steward.AtField("kind", steward.Errorf(steward.CodeInvalid, "kind is missing: %s", strings.Join(s.kinds.Names(), ", ")))
	}
	k, err := s.kind(*in.Kind)
	if err != nil {
		return nil, err
	}
	rec.Kind = k.Name
	if in.Scope == nil {
		in.Scope = new(steward.Scope)
	}
	if rec.Scope, err = checkScope(*in.Scope); err != nil {
		return nil, err
	}
	sched := ""
	if in.Schedule != nil {
		sched = *in.Schedule
	}
	if rec.ScheduleEvery, err = ParseSchedule(sched); err != nil {
		return nil, err
	}
	rec.Schedule = rec.ScheduleEvery.String()
	rec.Enabled = in.Enabled == nil || *in.Enabled
	rec.Settings = in.Settings
	if len(rec.Settings) == 0 {
		rec.Settings = json.RawMessage("{}")
	}
	secrets, err := secretInput(k, in.Secrets)
	if err != nil {
		return nil, err
	}
	if err := k.Check(rec.Settings, secrets); err != nil {
		return nil, err
	}
	if err := s.db.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateSource(ctx, rec, secrets, actor) }); err != nil {
		return nil, err
	}
	return rec, nil
}

// Get returns the source with ID or name ref.
func (s *Service) Get(ctx context.Context, ref string) (*store.SourceRecord, error) {
	return s.db.FindSource(ctx, ref)
}

// List returns every source by name.
func (s *Service) List(ctx context.Context) ([]*store.SourceRecord, error) {
	return s.db.FindSources(ctx)
}

// Update changes a source: absent fields stay; a secret given as "" is
// cleared. The kind cannot change. Settings and the resulting secrets are
// validated again.
func (s *Service) Update(ctx context.Context, ref string, in steward.SourceInput, actor string) (*store.SourceRecord, error) {
	rec, err := s.db.FindSource(ctx, ref)
	if err != nil {
		return nil, err
	}
	k, err := s.kind(rec.Kind)
	if err != nil {
		return nil, err
	}
	var changed []string
	if in.Kind != nil && *in.Kind != rec.Kind {
		return nil, steward.AtField("kind", steward.Errorf(steward.CodeInvalid, "the kind of a source cannot change; create another source"))
	}
	if in.Name != nil {
		if rec.Name, err = checkName(*in.Name); err != nil {
			return nil, err
		}
		changed = append(changed, "name")
	}
	if in.Scope != nil {
		if rec.Scope, err = checkScope(*in.Scope); err != nil {
			return nil, err
		}
		changed = append(changed, "scope")
	}
	if in.Schedule != nil {
		if rec.ScheduleEvery, err = ParseSchedule(*in.Schedule); err != nil {
			return nil, err
		}
		rec.Schedule = rec.ScheduleEvery.String()
		changed = append(changed, "schedule")
	}
	if in.Enabled != nil {
		if *in.Enabled && !rec.Enabled {
			rec.NextRunAt = nil // due at once
		}
		rec.Enabled = *in.Enabled
		changed = append(changed, "enabled")
	}
	if in.Settings != nil {
		rec.Settings = in.Settings
		changed = append(changed, "settings")
	}
	newSecrets, err := secretInput(k, in.Secrets)
	if err != nil {
		return nil, err
	}
	if len(newSecrets) > 0 {
		changed = append(changed, "secrets")
	}
	all, err := s.db.FindSourceSecrets(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	for f, v := range newSecrets {
		all[f] = v
	}
	if err := k.Check(rec.Settings, all); err != nil {
		return nil, err
	}
	if err := s.db.WithTx(ctx, func(tx *store.Tx) error { return tx.UpdateSource(ctx, rec, changed, newSecrets, actor) }); err != nil {
		return nil, err
	}
	return rec, nil
}

// Delete removes a source (its runs and the attribution of its findings
// stay on record). A run already in progress finishes; a queued one fails
// when it starts.
func (s *Service) Delete(ctx context.Context, ref string, actor string) (*store.SourceRecord, error) {
	rec, err := s.db.FindSource(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := s.db.WithTx(ctx, func(tx *store.Tx) error { return tx.DeleteSource(ctx, rec, actor) }); err != nil {
		return nil, err
	}
	return rec, nil
}

// Run queues a run of the source now, audited as actor, and returns it;
// if one is queued or running already, it returns that one instead
// (created false). The next scheduled run is one schedule after now.
func (s *Service) Run(ctx context.Context, ref string, actor string) (run *steward.SourceRun, created bool, err error) {
	rec, err := s.db.FindSource(ctx, ref)
	if err != nil {
		return nil, false, err
	}
	err = s.db.WithTx(ctx, func(tx *store.Tx) error {
		run, created, err = s.queueRun(ctx, tx, rec, actor)
		if err != nil || !created {
			return err
		}
		return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: actor, Action: store.AuditSourceRun,
			Details: map[string]any{"source": rec.Name, "source_id": rec.ID, "run_id": run.ID}})
	})
	if err != nil {
		return nil, false, err
	}
	return run, created, nil
}

// queueRun records a queued run of rec and its job in tx, unless one is
// queued or running, which it returns. It sets the next scheduled run.
func (s *Service) queueRun(ctx context.Context, tx *store.Tx, rec *store.SourceRecord, actor string) (*steward.SourceRun, bool, error) {
	active, err := tx.ActiveSourceRun(ctx, rec.ID)
	if err != nil {
		return nil, false, err
	}
	if active != nil && s.db.Now().Sub(active.CreatedAt) > abandonedAfter {
		// Its job ended without finishing it (the process died on the
		// last attempt): close it, or the source would never run again.
		active.State, active.Error = steward.SourceRunFailed, "abandoned: its job ended without finishing the run"
		if err := tx.UpdateSourceRun(ctx, active); err != nil {
			return nil, false, err
		}
		active = nil
	}
	if active != nil {
		return active, false, nil
	}
	run := &steward.SourceRun{SourceID: rec.ID, RequestedBy: actor}
	if err := tx.CreateSourceRun(ctx, run); err != nil {
		return nil, false, err
	}
	if err := s.queue.InsertTx(ctx, tx.SQL(), jobs.SourcePullArgs{SourceID: rec.ID, RunID: run.ID}); err != nil {
		return nil, false, err
	}
	if rec.Enabled {
		if err := tx.SetSourceNextRun(ctx, rec.ID, s.db.Now().Add(rec.ScheduleEvery)); err != nil {
			return nil, false, err
		}
	}
	return run, true, nil
}

// Schedule queues a run of every enabled source whose schedule is due,
// and returns how many it queued.
func (s *Service) Schedule(ctx context.Context) (int, error) {
	n := 0
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		n = 0
		now := s.db.Now()
		due, err := tx.DueSources(ctx, now)
		if err != nil {
			return err
		}
		for _, rec := range due {
			_, created, err := s.queueRun(ctx, tx, rec, "schedule")
			if err != nil {
				return err
			}
			if created {
				n++
			} else if err := tx.SetSourceNextRun(ctx, rec.ID, now.Add(rec.ScheduleEvery)); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}
