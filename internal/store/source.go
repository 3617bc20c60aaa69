package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
)

// Audit actions on live sources.
const (
	AuditSourceCreated = "source.created"
	AuditSourceUpdated = "source.updated"
	AuditSourceDeleted = "source.deleted"
	AuditSourceRun     = "source.run_requested"
)

// SourceRecord is a source as stored: the API's view plus its schedule as a
// duration. Secret values are never part of it.
type SourceRecord struct {
	steward.Source
	ScheduleEvery time.Duration
	// SecretFields are the names of the secrets that are set.
	SecretFields []string
}

// SourceSecrets are a source's secret values by field name; a zero String
// (or an absent field) means not set.
type SourceSecrets map[string]secret.String

// sourceSelect reads sources with the names of their secrets, joined by
// commas.
func (db *DB) sourceSelect() string {
	return `SELECT id, name, kind, scope, schedule_s, enabled, settings, next_run_at, created_at, created_by, updated_at,
	(SELECT COALESCE(` + db.groupConcat("field") + `, '') FROM source_secret ss WHERE ss.source_id = source.id)
	FROM source`
}

func scanSource(sc interface{ Scan(...any) error }) (*SourceRecord, error) {
	s := new(SourceRecord)
	var secs int64
	var settings, fields string
	var next, created, updated dbTime
	if err := sc.Scan(&s.ID, &s.Name, &s.Kind, &s.Scope, &secs, &s.Enabled, &settings, &next, &created, &s.CreatedBy, &updated, &fields); err != nil {
		return nil, err
	}
	s.ScheduleEvery = time.Duration(secs) * time.Second
	s.Schedule = s.ScheduleEvery.String()
	s.Settings = []byte(settings)
	s.NextRunAt, s.CreatedAt, s.UpdatedAt = next.ptr(), created.T, updated.T
	if fields != "" {
		s.SecretFields = strings.Split(fields, ",")
		slices.Sort(s.SecretFields)
	}
	return s, nil
}

// sourceSealContext binds a sealed source secret to its row and field.
func sourceSealContext(id int64, field string) []byte {
	return []byte("source:" + strconv.FormatInt(id, 10) + ":" + field)
}

// CreateSource stores s (name, kind, scope, schedule, enabled, settings
// already validated) with its secrets sealed, audits it as actor, and sets
// s.ID and its times. The first run is due at once when enabled. Errors:
// CodeConflict for a name in use; CodeUnavailable without a secret key
// when a secret is given.
func (tx *Tx) CreateSource(ctx context.Context, s *SourceRecord, secrets SourceSecrets, actor string) error {
	now := tx.db.now()
	s.CreatedAt, s.UpdatedAt, s.CreatedBy = now, now, actor
	var next any
	if s.Enabled {
		s.NextRunAt = &now
		next = tx.db.timeArg(now)
	}
	err := tx.tx.QueryRowContext(ctx, tx.db.bind(`INSERT INTO source (name, kind, scope, schedule_s, enabled, settings, next_run_at,
		created_at, created_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		s.Name, s.Kind, string(s.Scope), int64(s.ScheduleEvery/time.Second), boolArg(s.Enabled), string(s.Settings), next,
		tx.db.timeArg(now), actor, tx.db.timeArg(now)).Scan(&s.ID)
	if err != nil {
		err = mapError(err)
		if steward.ErrorCode(err) == steward.CodeConflict {
			return steward.AtField("name", steward.Errorf(steward.CodeConflict, "a source named %q exists", s.Name))
		}
		return fmt.Errorf("create source: %w", err)
	}
	set, err := tx.writeSourceSecrets(ctx, s.ID, secrets)
	if err != nil {
		return err
	}
	s.SecretFields = set
	return tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: actor, Action: AuditSourceCreated,
		Details: map[string]any{"source": s.Name, "source_id": s.ID, "kind": s.Kind, "scope": string(s.Scope), "secrets": sortedNames(secrets)}})
}

func sortedNames(m SourceSecrets) []string {
	return slices.Sorted(maps.Keys(m))
}

// writeSourceSecrets seals and stores each given secret (a zero value
// deletes it) and returns the fields set afterwards.
func (tx *Tx) writeSourceSecrets(ctx context.Context, id int64, secrets SourceSecrets) ([]string, error) {
	box := tx.db.box.Load()
	for _, field := range sortedNames(secrets) {
		v := secrets[field]
		if v.IsZero() {
			if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`DELETE FROM source_secret WHERE source_id = ? AND field = ?`), id, field); err != nil {
				return nil, fmt.Errorf("clear %s of source %d: %w", field, id, mapError(err))
			}
			continue
		}
		if box == nil {
			return nil, errNoSecretKey()
		}
		sealed, err := box.Seal(v, sourceSealContext(id, field))
		if err != nil {
			return nil, fmt.Errorf("seal %s: %w", field, err)
		}
		if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`INSERT INTO source_secret (source_id, field, sealed) VALUES (?, ?, ?)
			ON CONFLICT (source_id, field) DO UPDATE SET sealed = excluded.sealed`), id, field, sealed); err != nil {
			return nil, fmt.Errorf("store %s of source %d: %w", field, id, mapError(err))
		}
	}
	var fields string
	if err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT COALESCE(`+tx.db.groupConcat("field")+`, '') FROM source_secret WHERE source_id = ?`), id).Scan(&fields); err != nil {
		return nil, fmt.Errorf("list secrets of source %d: %w", id, err)
	}
	if fields == "" {
		return nil, nil
	}
	out := strings.Split(fields, ",")
	slices.Sort(out)
	return out, nil
}

// UpdateSource writes s's changeable fields (name, scope, schedule,
// enabled, settings) and the given secrets, and audits the change with the
// names of the fields changed (never values of secrets). Re-enabling, or a
// changed schedule, makes the next run due after one schedule from now, or
// at once when none ever ran.
func (tx *Tx) UpdateSource(ctx context.Context, s *SourceRecord, changed []string, secrets SourceSecrets, actor string) error {
	// s.UpdatedAt is the version the caller read: the update applies only
	// if nobody changed the source since (two admins editing it at once,
	// possibly on two processes), and the new version is strictly later.
	read := s.UpdatedAt
	now := nextUpdatedAt(tx.db.now(), read)
	var next any
	if s.Enabled {
		t := now
		if s.NextRunAt != nil {
			t = *s.NextRunAt
		}
		s.NextRunAt = &t
		next = tx.db.timeArg(t)
	} else {
		s.NextRunAt = nil
	}
	res, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE source SET name = ?, scope = ?, schedule_s = ?, enabled = ?, settings = ?,
		next_run_at = ?, updated_at = ? WHERE id = ? AND updated_at = ?`), s.Name, string(s.Scope), int64(s.ScheduleEvery/time.Second), boolArg(s.Enabled),
		string(s.Settings), next, tx.db.timeArg(now), s.ID, tx.db.timeArg(read))
	if err != nil {
		err = mapError(err)
		if steward.ErrorCode(err) == steward.CodeConflict {
			return steward.AtField("name", steward.Errorf(steward.CodeConflict, "a source named %q exists", s.Name))
		}
		return fmt.Errorf("update source %d: %w", s.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update source %d: %w", s.ID, err)
	} else if n == 0 {
		return steward.Errorf(steward.CodeConflict, "source %q was changed or deleted by someone else meanwhile; read it again and retry", s.Name)
	}
	s.UpdatedAt = now
	set, err := tx.writeSourceSecrets(ctx, s.ID, secrets)
	if err != nil {
		return err
	}
	s.SecretFields = set
	return tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: actor, Action: AuditSourceUpdated,
		Details: map[string]any{"source": s.Name, "source_id": s.ID, "fields": changed, "secrets": sortedNames(secrets)}})
}

// DeleteSource removes a source and its secrets (its runs and the
// attribution of its assessments stay, as record) and audits it.
func (tx *Tx) DeleteSource(ctx context.Context, s *SourceRecord, actor string) error {
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`DELETE FROM source_secret WHERE source_id = ?`), s.ID); err != nil {
		return fmt.Errorf("delete secrets of source %d: %w", s.ID, mapError(err))
	}
	res, err := tx.tx.ExecContext(ctx, tx.db.bind(`DELETE FROM source WHERE id = ?`), s.ID)
	if err != nil {
		return fmt.Errorf("delete source %d: %w", s.ID, mapError(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return steward.Errorf(steward.CodeNotFound, "source %d not found", s.ID)
	}
	return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: actor, Action: AuditSourceDeleted,
		Details: map[string]any{"source": s.Name, "source_id": s.ID, "kind": s.Kind}})
}

// FindSource returns the source with ID or name ref. Errors: CodeNotFound.
func (db *DB) FindSource(ctx context.Context, ref string) (*SourceRecord, error) {
	return findSource(ctx, db, db.read, ref)
}

// FindSource is DB.FindSource inside tx.
func (tx *Tx) FindSource(ctx context.Context, ref string) (*SourceRecord, error) {
	return findSource(ctx, tx.db, tx.tx, ref)
}

func findSource(ctx context.Context, db *DB, q querier, ref string) (*SourceRecord, error) {
	var row *sql.Row
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		row = q.QueryRowContext(ctx, db.bind(db.sourceSelect()+` WHERE id = ?`), id)
	} else {
		row = q.QueryRowContext(ctx, db.bind(db.sourceSelect()+` WHERE name = ?`), ref)
	}
	s, err := scanSource(row)
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "source %q not found", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("find source %q: %w", ref, err)
	}
	return s, nil
}

// FindSources lists every source by name.
func (db *DB) FindSources(ctx context.Context) ([]*SourceRecord, error) {
	rows, err := db.read.QueryContext(ctx, db.sourceSelect()+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("find sources: %w", err)
	}
	defer rows.Close()
	out := []*SourceRecord{}
	for rows.Next() {
		s, err := scanSource(rows)
		if err != nil {
			return nil, fmt.Errorf("find sources: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// FindSourceSecrets returns a source's decrypted secrets. Errors:
// CodeUnavailable when a secret does not open (wrong key) or no key is set.
func (db *DB) FindSourceSecrets(ctx context.Context, id int64) (SourceSecrets, error) {
	rows, err := db.read.QueryContext(ctx, db.bind(`SELECT field, sealed FROM source_secret WHERE source_id = ?`), id)
	if err != nil {
		return nil, fmt.Errorf("find secrets of source %d: %w", id, err)
	}
	defer rows.Close()
	box := db.box.Load()
	out := SourceSecrets{}
	for rows.Next() {
		var field string
		var sealed []byte
		if err := rows.Scan(&field, &sealed); err != nil {
			return nil, fmt.Errorf("find secrets of source %d: %w", id, err)
		}
		if box == nil {
			return nil, errNoSecretKey()
		}
		v, err := box.Open(sealed, sourceSealContext(id, field))
		if err != nil {
			return nil, steward.WrapError(steward.CodeUnavailable, err,
				"cannot decrypt the %s of source %d: the secret key is not the one it was stored with, or the value is corrupted", field, id)
		}
		out[field] = v
	}
	return out, rows.Err()
}

// DueSources returns the enabled sources whose next run is due at now. On
// PostgreSQL their rows stay locked until the transaction ends: the
// schedule queues their runs and moves their next run in it, and a second
// process's schedule then finds them no longer due.
func (tx *Tx) DueSources(ctx context.Context, now time.Time) ([]*SourceRecord, error) {
	rows, err := tx.tx.QueryContext(ctx, tx.db.bind(tx.db.sourceSelect()+` WHERE enabled = 1 AND next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY id`+
		tx.db.forUpdate()), tx.db.timeArg(now))
	if err != nil {
		return nil, fmt.Errorf("find due sources: %w", err)
	}
	defer rows.Close()
	var out []*SourceRecord
	for rows.Next() {
		s, err := scanSource(rows)
		if err != nil {
			return nil, fmt.Errorf("find due sources: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// SetSourceNextRun sets when the schedule next queues a run of source id.
func (tx *Tx) SetSourceNextRun(ctx context.Context, id int64, at time.Time) error {
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE source SET next_run_at = ? WHERE id = ?`), tx.db.timeArg(at), id); err != nil {
		return fmt.Errorf("schedule source %d: %w", id, mapError(err))
	}
	return nil
}

// NextSourcePull bumps and returns source id's pull sequence number: each
// pull attempt marks the assessments it observes with its own number.
func (tx *Tx) NextSourcePull(ctx context.Context, id int64) (int64, error) {
	var n int64
	if err := tx.tx.QueryRowContext(ctx, tx.db.bind(`UPDATE source SET pull_seq = pull_seq + 1 WHERE id = ? RETURNING pull_seq`), id).Scan(&n); err != nil {
		if isNoRows(err) {
			return 0, steward.Errorf(steward.CodeNotFound, "source %d not found", id)
		}
		return 0, fmt.Errorf("start pull of source %d: %w", id, mapError(err))
	}
	return n, nil
}

// SourceMark attributes the assessments an apply observes to a source's
// pull: ApplyObservationsFrom sets their source_id and source_pull.
type SourceMark struct {
	SourceID int64
	Pull     int64
}

// ApplyObservationsFrom is ApplyObservationsForRules for observations a
// live source read: every assessment they touch is marked as reported by
// mark's source in mark's pull (nil marks nothing).
func (tx *Tx) ApplyObservationsFrom(ctx context.Context, obs []steward.Observation, at time.Time, mark *SourceMark) (ApplyResult, []RuleTarget, error) {
	res, targets, err := tx.ApplyObservationsForRules(ctx, obs, at)
	if err != nil || mark == nil || len(obs) == 0 {
		return res, targets, err
	}
	if err := tx.markSource(ctx, obs, mark); err != nil {
		return ApplyResult{}, nil, fmt.Errorf("mark observations of source %d: %w", mark.SourceID, err)
	}
	return res, targets, nil
}

// markSource sets source_id and source_pull on the assessments of obs: per
// recommendation, the resources' IDs through their unique norm_id.
func (tx *Tx) markSource(ctx context.Context, obs []steward.Observation, mark *SourceMark) error {
	byRec := make(map[string][]string)
	for i := range obs {
		k := obs[i].Recommendation.Key
		byRec[k] = append(byRec[k], steward.NormalizeResourceID(obs[i].Resource.ID))
	}
	for _, key := range slices.Sorted(maps.Keys(byRec)) {
		norms := slices.Compact(slices.Sorted(slices.Values(byRec[key])))
		if err := execIn(ctx, tx, `UPDATE assessment SET source_id = ?, source_pull = ?
			WHERE recommendation_id = (SELECT id FROM recommendation WHERE key = ?)
			AND resource_id IN (SELECT id FROM resource WHERE norm_id IN (%s))`,
			[]any{mark.SourceID, mark.Pull, key}, norms); err != nil {
			return mapError(err)
		}
	}
	return nil
}

// GoneCandidates returns up to limit assessments reported by source
// sourceID in an earlier pull than pull, not Healthy, whose resource lies
// in scope, with an ID above after, in ID order, each as the Healthy
// observation that marks it gone (reason given).
func (db *DB) GoneCandidates(ctx context.Context, sourceID, pull int64, scope steward.Scope, reason string, after int64, limit int) ([]steward.Observation, int64, error) {
	cond, args, err := scopeRange("res.norm_id", scope)
	if err != nil {
		return nil, 0, err
	}
	// With a scope, walk the scope's resources (a range of their unique
	// norm_id) and their assessments: the cost is the unit's size, which
	// the pull just read anyway. Through the source's index instead, each
	// unit's Done would read every assessment of the source, most of them
	// in units not yet read. CROSS JOIN fixes that order in SQLite.
	// The unary plus keeps the source's index out of it, so each resource's
	// assessments are found by assessment_resource.
	from, source := `FROM assessment a JOIN resource res ON res.id = a.resource_id`, `a.source_id`
	if cond != "" {
		from, source = `FROM resource res CROSS JOIN assessment a`, `+a.source_id`
	}
	q := `SELECT a.id, r.key, r.severity, r.display_name, r.source, res.resource_id, res.cloud
		` + from + `
		JOIN recommendation r ON r.id = a.recommendation_id
		WHERE a.resource_id = res.id AND ` + source + ` = ? AND (a.source_pull IS NULL OR a.source_pull <> ?)
		AND a.status <> 'Healthy' AND a.id > ?`
	if cond != "" {
		q += " AND " + cond
	}
	rows, err := db.read.QueryContext(ctx, db.bind(q+" ORDER BY a.id LIMIT ?"), append(append([]any{sourceID, pull, after}, args...), limit)...)
	if err != nil {
		return nil, 0, fmt.Errorf("find gone findings: %w", err)
	}
	defer rows.Close()
	var out []steward.Observation
	last := after
	for rows.Next() {
		var o steward.Observation
		if err := rows.Scan(&last, &o.Recommendation.Key, &o.Recommendation.Severity, &o.Recommendation.DisplayName,
			&o.Recommendation.Source, &o.Resource.ID, &o.Resource.Cloud); err != nil {
			return nil, 0, fmt.Errorf("find gone findings: %w", err)
		}
		o.Status, o.StatusReason = steward.StatusHealthy, reason
		out = append(out, o)
	}
	return out, last, rows.Err()
}

// MergeScopeTags adds tags to one scope level's stored tags: a key the
// source reports takes its value, keys it does not report (set by people
// or earlier pulls) stay. Nothing is written, nor audited, when nothing
// changes. Reports whether something changed.
func (tx *Tx) MergeScopeTags(ctx context.Context, scope steward.Scope, tags map[string]string, actor string) (bool, error) {
	if len(tags) == 0 {
		return false, nil
	}
	if err := scope.Validate(); err != nil {
		return false, err
	}
	norm := scope.Normalize()
	if err := tx.lockScopeTags(ctx, norm); err != nil {
		return false, err
	}
	var cur string
	err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT tags FROM scope_tag WHERE scope = ?`), string(norm)).Scan(&cur)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("read scope tags of %s: %w", norm, err)
	}
	merged := map[string]string{}
	if err := decodeJSON(cur, &merged); err != nil {
		return false, fmt.Errorf("decode scope tags of %s: %w", norm, err)
	}
	changed := false
	for k, v := range tags {
		if strings.TrimSpace(k) == "" {
			continue
		}
		if old, ok := merged[k]; !ok || old != v {
			merged[k], changed = v, true
		}
	}
	if !changed {
		return false, nil
	}
	_, err = tx.SetScopeTags(ctx, norm, merged, actor)
	return err == nil, err
}

// sourceRunColumns are source_run's columns in scanSourceRun's order.
const sourceRunColumns = `id, source_id, state, attempt, observed, new, changed, unchanged, gone, errors, units, error, requested_by,
	created_at, started_at, ended_at`

func scanSourceRun(sc interface{ Scan(...any) error }) (*steward.SourceRun, error) {
	r := new(steward.SourceRun)
	var units string
	var created, started, ended dbTime
	if err := sc.Scan(&r.ID, &r.SourceID, &r.State, &r.Attempt, &r.Observed, &r.New, &r.Changed, &r.Unchanged, &r.Gone, &r.Errors,
		&units, &r.Error, &r.RequestedBy, &created, &started, &ended); err != nil {
		return nil, err
	}
	if err := decodeJSON(units, &r.Units); err != nil {
		return nil, fmt.Errorf("decode units of source run %d: %w", r.ID, err)
	}
	if r.Units == nil {
		r.Units = []steward.SourceUnit{}
	}
	r.CreatedAt, r.StartedAt, r.EndedAt = created.T, started.ptr(), ended.ptr()
	return r, nil
}

// ActiveSourceRun returns the queued or running run of source sourceID,
// or nil when none is. On PostgreSQL it locks the source's row until the
// transaction ends, so that two writers cannot both find none and each
// queue a run.
func (tx *Tx) ActiveSourceRun(ctx context.Context, sourceID int64) (*steward.SourceRun, error) {
	if err := tx.lock(ctx, `SELECT id FROM source WHERE id = ? FOR UPDATE`, sourceID); err != nil {
		return nil, fmt.Errorf("find active run of source %d: %w", sourceID, err)
	}
	r, err := scanSourceRun(tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT `+sourceRunColumns+` FROM source_run
		WHERE source_id = ? AND state IN ('queued', 'running') ORDER BY id LIMIT 1`), sourceID))
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find active run of source %d: %w", sourceID, err)
	}
	return r, nil
}

// CreateSourceRun records a queued run and sets its ID, state and creation
// time. Queue its job in the same transaction.
func (tx *Tx) CreateSourceRun(ctx context.Context, r *steward.SourceRun) error {
	now := tx.db.now()
	r.State, r.CreatedAt, r.Units = steward.SourceRunQueued, now, []steward.SourceUnit{}
	err := tx.tx.QueryRowContext(ctx, tx.db.bind(`INSERT INTO source_run (source_id, state, requested_by, created_at)
		VALUES (?, ?, ?, ?) RETURNING id`), r.SourceID, string(r.State), r.RequestedBy, tx.db.timeArg(now)).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("create source run: %w", mapError(err))
	}
	return nil
}

// UpdateSourceRun writes r's state, attempt, counts, units and error.
// Moving to running sets the start time (each attempt), to a final state
// the end time.
func (tx *Tx) UpdateSourceRun(ctx context.Context, r *steward.SourceRun) error {
	units, err := encodeJSON(r.Units)
	if err != nil {
		return fmt.Errorf("encode units of source run %d: %w", r.ID, err)
	}
	q := `UPDATE source_run SET state = ?, attempt = ?, observed = ?, new = ?, changed = ?, unchanged = ?, gone = ?, errors = ?,
		units = ?, error = ?`
	args := []any{string(r.State), r.Attempt, r.Observed, r.New, r.Changed, r.Unchanged, r.Gone, r.Errors, units, r.Error}
	if r.StartedAt != nil {
		q += `, started_at = ?`
		args = append(args, tx.db.timeArg(*r.StartedAt))
	}
	if r.State.Finished() {
		now := tx.db.now()
		r.EndedAt = &now
		q += `, ended_at = ?`
		args = append(args, tx.db.timeArg(now))
	}
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(q+` WHERE id = ?`), append(args, r.ID)...); err != nil {
		return fmt.Errorf("update source run %d: %w", r.ID, mapError(err))
	}
	return nil
}

// FindSourceRun returns run id of source sourceID (0: any source).
// Errors: CodeNotFound.
func (db *DB) FindSourceRun(ctx context.Context, sourceID, id int64) (*steward.SourceRun, error) {
	r, err := scanSourceRun(db.read.QueryRowContext(ctx, db.bind(`SELECT `+sourceRunColumns+` FROM source_run WHERE id = ?`), id))
	if isNoRows(err) || (err == nil && sourceID != 0 && r.SourceID != sourceID) {
		return nil, steward.Errorf(steward.CodeNotFound, "run %d of source %d not found", id, sourceID)
	}
	if err != nil {
		return nil, fmt.Errorf("find source run %d: %w", id, err)
	}
	return r, nil
}

// FindSourceRuns returns the latest runs of source sourceID, newest first,
// at most limit of them.
func (db *DB) FindSourceRuns(ctx context.Context, sourceID int64, limit int) ([]*steward.SourceRun, error) {
	rows, err := db.read.QueryContext(ctx, db.bind(`SELECT `+sourceRunColumns+` FROM source_run WHERE source_id = ? ORDER BY id DESC LIMIT ?`), sourceID, limit)
	if err != nil {
		return nil, fmt.Errorf("find runs of source %d: %w", sourceID, err)
	}
	defer rows.Close()
	out := []*steward.SourceRun{}
	for rows.Next() {
		r, err := scanSourceRun(rows)
		if err != nil {
			return nil, fmt.Errorf("find runs of source %d: %w", sourceID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// rotateSourceSecrets re-seals every source secret from old to new in tx
// (RotateSecrets) and returns how many it re-sealed. A value that does not
// open with old fails it (CodeUnavailable, naming the source and field).
func (tx *Tx) rotateSourceSecrets(ctx context.Context, old, new *secret.Box) (int, error) {
	type row struct {
		id     int64
		field  string
		sealed []byte
	}
	rows, err := tx.tx.QueryContext(ctx, `SELECT source_id, field, sealed FROM source_secret ORDER BY source_id, field`+tx.db.forUpdate())
	if err != nil {
		return 0, err
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.field, &r.sealed); err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, err
	}
	for _, r := range all {
		v, err := old.Open(r.sealed, sourceSealContext(r.id, r.field))
		if err != nil {
			return 0, steward.WrapError(steward.CodeUnavailable, err,
				"cannot decrypt the %s of source %d with the previous key", r.field, r.id)
		}
		resealed, err := new.Seal(v, sourceSealContext(r.id, r.field))
		if err != nil {
			return 0, fmt.Errorf("seal %s of source %d: %w", r.field, r.id, err)
		}
		if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE source_secret SET sealed = ? WHERE source_id = ? AND field = ?`),
			resealed, r.id, r.field); err != nil {
			return 0, fmt.Errorf("re-seal %s of source %d: %w", r.field, r.id, mapError(err))
		}
	}
	return len(all), nil
}
