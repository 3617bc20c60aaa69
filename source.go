package steward

import (
	"encoding/json"
	"time"
)

// Source kinds: the cloud security services Steward reads findings from on a
// schedule (docs/sources.md).
const (
	SourceDefender    = "defender"
	SourceSecurityHub = "securityhub"
	SourceSCC         = "scc"
)

// Source is a configured live source: a cloud security service Steward
// pulls findings from on a schedule (GET /api/v1/sources/{id}). Its
// secrets are never shown: Secrets says, per secret field, whether it is
// set, as "has_<field>": true or false.
type Source struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Scope bounds what the source may write: an observation of a resource
	// outside it is refused and counted as an error of its unit.
	Scope Scope `json:"scope"`
	// Schedule is how often the source is pulled, as a Go duration
	// ("1h", "30m"), between 5m and 24h.
	Schedule string `json:"schedule"`
	Enabled  bool   `json:"enabled"`
	// Settings are the kind's settings (JSON), stored as given.
	Settings json.RawMessage `json:"settings"`
	// Secrets has one "has_<field>" entry per secret field of the kind.
	Secrets   map[string]bool `json:"secrets"`
	LastRun   *SourceRun      `json:"last_run,omitempty"`
	NextRunAt *time.Time      `json:"next_run_at,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	CreatedBy string          `json:"created_by"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// SourceInput creates a source (POST /api/v1/sources) or changes one
// (PATCH /api/v1/sources/{id}: absent fields stay as they are; a secret
// given as "" is cleared).
type SourceInput struct {
	Name     *string           `json:"name,omitempty"`
	Kind     *string           `json:"kind,omitempty"`
	Scope    *Scope            `json:"scope,omitempty"`
	Schedule *string           `json:"schedule,omitempty"`
	Enabled  *bool             `json:"enabled,omitempty"`
	Settings json.RawMessage   `json:"settings,omitempty"`
	Secrets  map[string]string `json:"secrets,omitempty"`
}

// SourceRunState is where a run of a source is.
type SourceRunState string

// Source run states: queued → running → done, partial (some units failed
// or had refused observations) or failed.
const (
	SourceRunQueued  SourceRunState = "queued"
	SourceRunRunning SourceRunState = "running"
	SourceRunDone    SourceRunState = "done"
	SourceRunPartial SourceRunState = "partial"
	SourceRunFailed  SourceRunState = "failed"
)

// Finished reports whether a run in state s has ended, either way.
func (s SourceRunState) Finished() bool {
	return s == SourceRunDone || s == SourceRunPartial || s == SourceRunFailed
}

// SourceRun is one pull of a source (GET /api/v1/sources/{id}/runs/{run}).
// While it runs, Observed and the counts grow as chunks are applied.
type SourceRun struct {
	ID       int64          `json:"id"`
	SourceID int64          `json:"source_id"`
	State    SourceRunState `json:"state"`
	// Attempt is the job attempt this run is at; a run whose process died
	// is pulled again from the start and its counts restart.
	Attempt int `json:"attempt"`
	// Observed counts the observations read so far.
	Observed  int `json:"observed"`
	New       int `json:"new"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	// Gone counts findings no longer reported that were marked Healthy.
	Gone int `json:"gone"`
	// Errors counts refused observations plus failed units.
	Errors      int          `json:"errors"`
	Units       []SourceUnit `json:"units"`
	Error       string       `json:"error,omitempty"`
	RequestedBy string       `json:"requested_by"`
	CreatedAt   time.Time    `json:"created_at"`
	StartedAt   *time.Time   `json:"started_at,omitempty"`
	EndedAt     *time.Time   `json:"ended_at,omitempty"`
}

// SourceUnit is what a run did in one unit of the source's reach (a
// subscription, an account in a region, a project).
type SourceUnit struct {
	ID       string `json:"id"`
	Scope    Scope  `json:"scope"`
	Observed int    `json:"observed"`
	// Refused counts observations refused (outside the source's scope, or
	// invalid).
	Refused int `json:"refused"`
	Gone    int `json:"gone"`
	// Done is true when the unit was read completely (the gone rule ran).
	Done  bool   `json:"done"`
	Error string `json:"error,omitempty"`
}
