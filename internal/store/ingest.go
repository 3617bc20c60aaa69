package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/stewardhq/steward"
)

// ApplyResult counts what ApplyObservations did. For every call,
// AssessmentsCreated + StatusChanged + Unchanged == Observations.
type ApplyResult struct {
	// Observations is the number of observations given, duplicates included.
	Observations int `json:"observations"`
	// AssessmentsCreated counts assessments seen for the first time.
	AssessmentsCreated int `json:"assessments_created"`
	// StatusChanged counts existing assessments whose status changed.
	StatusChanged int `json:"status_changed"`
	// Unchanged counts observations that left the status as it was (their
	// last-seen time or status reason may have been refreshed), observations
	// older than what is stored, and duplicates superseded within a chunk.
	Unchanged              int `json:"unchanged"`
	ResourcesCreated       int `json:"resources_created"`
	RecommendationsCreated int `json:"recommendations_created"`
	// CompletedAssignments are the active assignments ended because their
	// assessment turned Healthy.
	CompletedAssignments []int64 `json:"completed_assignments,omitempty"`
	// ChangedRecommendations are the keys whose assessment counts may have
	// changed: pass them to RecomputeRecommendationSummaries. Sorted, unique.
	ChangedRecommendations []string `json:"changed_recommendations,omitempty"`
	// RuleAssignments counts the assignments governance rules made on
	// assessments that became Unhealthy; RuleSkipped counts, by reason,
	// those a winning rule could not assign (no owner found, no
	// integration). Filled by the caller that evaluates the rules.
	RuleAssignments int            `json:"rule_assignments"`
	RuleSkipped     map[string]int `json:"rule_skipped,omitempty"`

	// becameUnhealthy collects ApplyObservationsForRules' targets.
	becameUnhealthy []RuleTarget
}

// RuleTarget is an Unhealthy assessment with what governance rules match
// on: its resource and recommendation as stored (assessments of one
// resource share its pointer).
type RuleTarget struct {
	AssessmentID int64
	// Created is true when ApplyObservations created the assessment just
	// now: it cannot have an assignment yet.
	Created        bool
	Resource       *steward.Resource
	Recommendation *steward.Recommendation
}

// Assessment is the assessment as rules match it.
func (n RuleTarget) Assessment() *steward.Assessment {
	return &steward.Assessment{ID: n.AssessmentID, RecommendationKey: n.Recommendation.Key, ResourceID: n.Resource.ID,
		ResourceName: n.Resource.Name, ResourceType: n.Resource.Type, Status: steward.StatusUnhealthy,
		Severity: n.Recommendation.Severity, Cloud: n.Resource.Cloud}
}

// Add accumulates o into r; ChangedRecommendations stay sorted and unique.
func (r *ApplyResult) Add(o ApplyResult) {
	r.Observations += o.Observations
	r.AssessmentsCreated += o.AssessmentsCreated
	r.StatusChanged += o.StatusChanged
	r.Unchanged += o.Unchanged
	r.ResourcesCreated += o.ResourcesCreated
	r.RecommendationsCreated += o.RecommendationsCreated
	r.CompletedAssignments = append(r.CompletedAssignments, o.CompletedAssignments...)
	r.RuleAssignments += o.RuleAssignments
	for k, n := range o.RuleSkipped {
		if r.RuleSkipped == nil {
			r.RuleSkipped = map[string]int{}
		}
		r.RuleSkipped[k] += n
	}
	if len(o.ChangedRecommendations) > 0 {
		r.ChangedRecommendations = append(r.ChangedRecommendations, o.ChangedRecommendations...)
		slices.Sort(r.ChangedRecommendations)
		r.ChangedRecommendations = slices.Compact(r.ChangedRecommendations)
	}
}

// Batch sizes. inBatch bounds IN lists; insertRows bounds multi-row INSERTs
// (rows × columns stays far below SQLite's 32766 and PostgreSQL's 65535
// parameters).
const (
	inBatch    = 500
	insertRows = 200
)

type obsItem struct {
	o    *steward.Observation
	norm string // normalized resource ID
	at   int64  // observation time, Unix microseconds
	atT  time.Time
}

type recState struct {
	id      int64
	stored  steward.Recommendation // as in the database; zero if new
	merged  steward.Recommendation
	created bool
}

type resRow struct {
	norm, id, name, typ, cloud, region, tags string
	first, last                              int64
}

type resState struct {
	dbID    int64
	stored  resRow
	merged  resRow
	created bool
}

// ApplyObservations stores a chunk of observations in tx. Resources and
// recommendations are created on first sight and updated when an observation
// says more about them (non-empty fields win); assessments are created or
// updated. A status change sets status_changed_at and appends to the
// assessment's status history; an active assignment whose assessment turns
// Healthy is completed by actor "system". Re-applying identical observations
// writes nothing. at is the observation time for observations without
// ObservedAt (db.Now() if at is zero too). Observations older than an
// assessment's last-seen time do not change it. Of several observations of
// the same recommendation and resource in obs, the last wins.
//
// An invalid observation fails the whole call with a steward.CodeInvalid
// error naming the record (1-based index in obs).
//
// Chunks of a few thousand observations per transaction are the sweet spot.
func (tx *Tx) ApplyObservations(ctx context.Context, obs []steward.Observation, at time.Time) (ApplyResult, error) {
	res, _, err := tx.ApplyObservationsForRules(ctx, obs, at)
	return res, err
}

// ApplyObservationsForRules is ApplyObservations that also returns the
// assessments the call created Unhealthy or changed to Unhealthy, with what
// governance rules match on: the candidates for rule assignments in the
// same transaction. It knows them while applying, so this costs no query.
func (tx *Tx) ApplyObservationsForRules(ctx context.Context, obs []steward.Observation, at time.Time) (ApplyResult, []RuleTarget, error) {
	res, err := tx.applyObservations(ctx, obs, at)
	if err != nil {
		return ApplyResult{}, nil, fmt.Errorf("apply observations: %w", mapError(err))
	}
	targets := res.becameUnhealthy
	res.becameUnhealthy = nil
	return res, targets, nil
}

func (tx *Tx) applyObservations(ctx context.Context, obs []steward.Observation, at time.Time) (ApplyResult, error) {
	res := ApplyResult{Observations: len(obs)}
	if len(obs) == 0 {
		return res, nil
	}
	if at.IsZero() {
		at = tx.db.Now()
	}
	at = storedTime(at)

	// Validate, normalize and drop superseded duplicates (last wins).
	type pair struct{ rec, res string }
	items := make([]obsItem, 0, len(obs))
	pos := make(map[pair]int, len(obs))
	for i := range obs {
		o := &obs[i]
		if err := o.Validate(); err != nil {
			return res, steward.InvalidRecord(i+1, 0, err)
		}
		norm := steward.NormalizeResourceID(o.Resource.ID)
		if norm == "" {
			return res, steward.InvalidRecord(i+1, 0, steward.Errorf(steward.CodeInvalid, "resource.id %q is empty once normalized", o.Resource.ID))
		}
		t := at
		if !o.ObservedAt.IsZero() {
			t = storedTime(o.ObservedAt)
		}
		it := obsItem{o: o, norm: norm, at: t.UnixMicro(), atT: t}
		k := pair{o.Recommendation.Key, norm}
		if p, ok := pos[k]; ok {
			items[p] = it
			res.Unchanged++
			continue
		}
		pos[k] = len(items)
		items = append(items, it)
	}
	pos = nil

	// A chunk reads the stored assessments and writes what changed. On
	// PostgreSQL, where writers are concurrent, chunks (of any import,
	// push or source, from any process) take turns as they do on SQLite's
	// one writer: held until the transaction ends.
	if err := tx.advisoryLock(ctx, ingestLockKey); err != nil {
		return res, err
	}

	changed := make(map[string]bool)
	recs, err := tx.applyRecommendations(ctx, items, &res, changed)
	if err != nil {
		return res, err
	}
	ress, err := tx.applyResources(ctx, items, &res, changed)
	if err != nil {
		return res, err
	}
	healthy, err := tx.applyAssessments(ctx, items, recs, ress, &res, changed)
	if err != nil {
		return res, err
	}
	if len(healthy) > 0 {
		if err := tx.completeHealthyAssignments(ctx, healthy, &res); err != nil {
			return res, err
		}
	}
	res.ChangedRecommendations = slices.Sorted(maps.Keys(changed))
	return res, nil
}

// queryIn runs query (which must contain one "%s" where the IN list goes)
// over keys in batches, with fixed args before the list, calling scan for
// each row.
func queryIn[K any](ctx context.Context, tx *Tx, query string, fixed []any, keys []K, scan func(*sql.Rows) error) error {
	for start := 0; start < len(keys); start += inBatch {
		batch := keys[start:min(start+inBatch, len(keys))]
		stmt, err := tx.stmt(ctx, fmt.Sprintf(query, placeholders(len(batch))))
		if err != nil {
			return err
		}
		args := make([]any, 0, len(fixed)+len(batch))
		args = append(args, fixed...)
		for _, k := range batch {
			args = append(args, k)
		}
		if err := queryEach(ctx, stmt, args, scan); err != nil {
			return err
		}
	}
	return nil
}

// queryInIDs is queryIn for queries whose rows are one int64 each.
func queryInIDs[K any](ctx context.Context, tx *Tx, query string, fixed []any, keys []K) ([]int64, error) {
	var out []int64
	err := queryIn(ctx, tx, query, fixed, keys, func(rows *sql.Rows) error {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		out = append(out, id)
		return nil
	})
	return out, err
}

func setIf(dst *string, src string) {
	if src != "" {
		*dst = src
	}
}

func (tx *Tx) applyRecommendations(ctx context.Context, items []obsItem, res *ApplyResult, changed map[string]bool) (map[string]*recState, error) {
	recs := make(map[string]*recState)
	var keys []string
	for i := range items {
		k := items[i].o.Recommendation.Key
		if _, ok := recs[k]; !ok {
			recs[k] = &recState{created: true}
			keys = append(keys, k)
		}
	}
	err := queryIn(ctx, tx, `SELECT id, key, display_name, description, remediation, severity, category, source
		FROM recommendation WHERE key IN (%s)`, nil, keys, func(rows *sql.Rows) error {
		var s recState
		r := &s.stored
		if err := rows.Scan(&s.id, &r.Key, &r.DisplayName, &r.Description, &r.Remediation, &r.Severity, &r.Category, &r.Source); err != nil {
			return err
		}
		s.merged = s.stored
		recs[r.Key] = &s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load recommendations: %w", err)
	}
	for i := range items {
		src := &items[i].o.Recommendation
		m := &recs[src.Key].merged
		m.Key = src.Key
		setIf(&m.DisplayName, src.DisplayName)
		setIf(&m.Description, src.Description)
		setIf(&m.Remediation, src.Remediation)
		setIf((*string)(&m.Severity), string(src.Severity))
		setIf(&m.Category, src.Category)
		setIf(&m.Source, src.Source)
	}
	now := tx.db.timeArg(tx.db.now())
	for _, k := range keys {
		s := recs[k]
		m := &s.merged
		switch {
		case s.created:
			stmt, err := tx.stmt(ctx, `INSERT INTO recommendation
				(key, display_name, description, remediation, severity, severity_rank, category, source, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`)
			if err != nil {
				return nil, fmt.Errorf("insert recommendation: %w", err)
			}
			if err := stmt.QueryRowContext(ctx, m.Key, m.DisplayName, m.Description, m.Remediation, m.Severity,
				m.Severity.Rank(), m.Category, m.Source, now, now).Scan(&s.id); err != nil {
				return nil, fmt.Errorf("insert recommendation %q: %w", k, err)
			}
			res.RecommendationsCreated++
			changed[k] = true
		case *m != s.stored:
			stmt, err := tx.stmt(ctx, `UPDATE recommendation SET display_name = ?, description = ?, remediation = ?,
				severity = ?, severity_rank = ?, category = ?, source = ?, updated_at = ? WHERE id = ?`)
			if err != nil {
				return nil, fmt.Errorf("update recommendation: %w", err)
			}
			if _, err := stmt.ExecContext(ctx, m.DisplayName, m.Description, m.Remediation, m.Severity,
				m.Severity.Rank(), m.Category, m.Source, now, s.id); err != nil {
				return nil, fmt.Errorf("update recommendation %q: %w", k, err)
			}
			if m.Severity != s.stored.Severity {
				changed[k] = true // the scope summaries order by a copy of the severity
				// Keep the denormalized copy on assessments in step.
				if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE assessment SET severity_rank = ? WHERE recommendation_id = ?`),
					m.Severity.Rank(), s.id); err != nil {
					return nil, fmt.Errorf("update severity of recommendation %q: %w", k, err)
				}
			}
		}
	}
	return recs, nil
}

func tagsJSON(tags map[string]string) (string, error) {
	if len(tags) == 0 {
		return "", nil
	}
	b, err := json.Marshal(tags) // map keys are sorted: equal tags give equal text
	return string(b), err
}

func (tx *Tx) applyResources(ctx context.Context, items []obsItem, res *ApplyResult, changed map[string]bool) (map[string]*resState, error) {
	ress := make(map[string]*resState, len(items)/4+1)
	var norms []string
	for i := range items {
		if _, ok := ress[items[i].norm]; !ok {
			ress[items[i].norm] = &resState{created: true}
			norms = append(norms, items[i].norm)
		}
	}
	err := queryIn(ctx, tx, `SELECT id, norm_id, resource_id, name, type, cloud, region, tags, first_seen, last_seen
		FROM resource WHERE norm_id IN (%s)`, nil, norms, func(rows *sql.Rows) error {
		var s resState
		r := &s.stored
		if err := rows.Scan(&s.dbID, &r.norm, &r.id, &r.name, &r.typ, &r.cloud, &r.region, &r.tags, &r.first, &r.last); err != nil {
			return err
		}
		s.merged = s.stored
		ress[r.norm] = &s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load resources: %w", err)
	}
	for i := range items {
		it := &items[i]
		src := &it.o.Resource
		m := &ress[it.norm].merged
		if m.norm == "" { // first sight
			*m = resRow{norm: it.norm, id: src.ID, first: it.at, last: it.at}
		}
		setIf(&m.name, src.Name)
		setIf(&m.typ, src.Type)
		setIf(&m.region, src.Region)
		// A specific cloud is never overwritten by "other".
		if m.cloud == "" || src.Cloud != steward.CloudOther {
			m.cloud = string(src.Cloud)
		}
		if len(src.Tags) > 0 {
			t, err := tagsJSON(src.Tags)
			if err != nil {
				return nil, fmt.Errorf("encode tags of %s: %w", src.ID, err)
			}
			m.tags = t
		}
		m.first = min(m.first, it.at)
		m.last = max(m.last, it.at)
	}

	var inserts []any
	lastSeen := make(map[int64][]int64) // new last_seen → resources that only need that
	for _, n := range norms {
		s := ress[n]
		m := &s.merged
		switch {
		case s.created:
			inserts = append(inserts, m.norm, m.id, m.name, m.typ, m.cloud, m.region, m.tags,
				tx.db.timeArg(time.UnixMicro(m.first)), tx.db.timeArg(time.UnixMicro(m.last)))
			res.ResourcesCreated++
		case *m == s.stored:
		case m.name == s.stored.name && m.typ == s.stored.typ && m.cloud == s.stored.cloud &&
			m.region == s.stored.region && m.tags == s.stored.tags && m.first == s.stored.first:
			lastSeen[m.last] = append(lastSeen[m.last], s.dbID)
		default:
			stmt, err := tx.stmt(ctx, `UPDATE resource SET name = ?, type = ?, cloud = ?, region = ?, tags = ?,
				first_seen = ?, last_seen = ? WHERE id = ?`)
			if err != nil {
				return nil, fmt.Errorf("update resource: %w", err)
			}
			if _, err := stmt.ExecContext(ctx, m.name, m.typ, m.cloud, m.region, m.tags,
				tx.db.timeArg(time.UnixMicro(m.first)), tx.db.timeArg(time.UnixMicro(m.last)), s.dbID); err != nil {
				return nil, fmt.Errorf("update resource %s: %w", m.id, err)
			}
			if m.cloud != s.stored.cloud {
				if err := tx.markResourceRecommendations(ctx, s.dbID, changed); err != nil {
					return nil, err
				}
			}
		}
	}
	err = tx.insertRowsReturning(ctx, `INSERT INTO resource (norm_id, resource_id, name, type, cloud, region, tags, first_seen, last_seen) VALUES `,
		9, inserts, ` RETURNING id, norm_id`, func(rows *sql.Rows) error {
			var id int64
			var norm string
			if err := rows.Scan(&id, &norm); err != nil {
				return err
			}
			ress[norm].dbID = id
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("insert resources: %w", err)
	}
	for last, ids := range lastSeen {
		if err := execIn(ctx, tx, `UPDATE resource SET last_seen = ? WHERE id IN (%s)`,
			[]any{tx.db.timeArg(time.UnixMicro(last))}, ids); err != nil {
			return nil, fmt.Errorf("update resources last seen: %w", err)
		}
	}
	return ress, nil
}

// markResourceRecommendations marks the recommendations assessed on a
// resource whose cloud changed: their per-cloud summaries are stale.
func (tx *Tx) markResourceRecommendations(ctx context.Context, resourceID int64, changed map[string]bool) error {
	rows, err := tx.tx.QueryContext(ctx, tx.db.bind(`SELECT r.key FROM assessment a
		JOIN recommendation r ON r.id = a.recommendation_id WHERE a.resource_id = ?`), resourceID)
	if err != nil {
		return fmt.Errorf("list recommendations of resource %d: %w", resourceID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return fmt.Errorf("list recommendations of resource %d: %w", resourceID, err)
		}
		changed[k] = true
	}
	return rows.Err()
}

// execIn runs query (with one "%s" for the IN list) over keys in batches.
func execIn[K any](ctx context.Context, tx *Tx, query string, fixed []any, keys []K) error {
	for start := 0; start < len(keys); start += inBatch {
		batch := keys[start:min(start+inBatch, len(keys))]
		stmt, err := tx.stmt(ctx, fmt.Sprintf(query, placeholders(len(batch))))
		if err != nil {
			return err
		}
		args := make([]any, 0, len(fixed)+len(batch))
		args = append(args, fixed...)
		for _, k := range batch {
			args = append(args, k)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// insertRowsReturning runs prefix + "(?,...), ..." over args (cols values
// per row) in statements of up to insertRows rows, with a RETURNING clause whose rows go
// to scan.
func (tx *Tx) insertRowsReturning(ctx context.Context, prefix string, cols int, args []any, returning string, scan func(*sql.Rows) error) error {
	per := insertRows * cols
	for start := 0; start < len(args); start += per {
		batch := args[start:min(start+per, len(args))]
		stmt, err := tx.stmt(ctx, prefix+rowsPlaceholders(len(batch)/cols, cols)+returning)
		if err != nil {
			return err
		}
		if err := queryEach(ctx, stmt, batch, scan); err != nil {
			return err
		}
	}
	return nil
}

// queryEach runs stmt and calls scan for each row.
func queryEach(ctx context.Context, stmt *sql.Stmt, args []any, scan func(*sql.Rows) error) error {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	return scanRows(rows, scan)
}

// scanRows calls scan for each of rows and closes them.
func scanRows(rows *sql.Rows, scan func(*sql.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

type asmRow struct {
	id     int64
	status string
	reason string
	last   int64
}

// healthyChange is an assessment that turned Healthy, and when.
type healthyChange struct {
	id int64
	at time.Time
}

func (tx *Tx) applyAssessments(ctx context.Context, items []obsItem, recs map[string]*recState, ress map[string]*resState,
	res *ApplyResult, changed map[string]bool) ([]healthyChange, error) {
	// Look up existing assessments per recommendation. A pair whose
	// recommendation or resource was created in this call cannot exist yet,
	// which spares the lookup on first ingest.
	byRec := make(map[int64][]int64)
	for i := range items {
		it := &items[i]
		rs, re := recs[it.o.Recommendation.Key], ress[it.norm]
		if rs.created || re.created {
			continue
		}
		byRec[rs.id] = append(byRec[rs.id], re.dbID)
	}
	type pairID struct{ rec, res int64 }
	existing := make(map[pairID]asmRow)
	for recID, resIDs := range byRec {
		err := queryIn(ctx, tx, `SELECT id, resource_id, status, status_reason, last_seen FROM assessment
			WHERE recommendation_id = ? AND resource_id IN (%s)`, []any{recID}, resIDs, func(rows *sql.Rows) error {
			var a asmRow
			var resID int64
			if err := rows.Scan(&a.id, &resID, &a.status, &a.reason, &a.last); err != nil {
				return err
			}
			existing[pairID{recID, resID}] = a
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("load assessments: %w", err)
		}
	}
	byRec = nil

	var (
		inserts  []any
		healthy  []healthyChange
		lastSeen = make(map[int64][]int64)
		// newUnhealthy are the items inserted Unhealthy, by pair, until
		// the insert returns their IDs.
		newUnhealthy = make(map[pairID]*obsItem)
		targets      = newTargets(recs, ress)
	)
	for i := range items {
		it := &items[i]
		o := it.o
		rs, re := recs[o.Recommendation.Key], ress[it.norm]
		a, ok := existing[pairID{rs.id, re.dbID}]
		if !ok {
			t := tx.db.timeArg(it.atT)
			inserts = append(inserts, rs.id, re.dbID, string(o.Status), o.StatusReason, rs.merged.Severity.Rank(), t, t, t)
			if o.Status == steward.StatusUnhealthy {
				newUnhealthy[pairID{rs.id, re.dbID}] = it
			}
			res.AssessmentsCreated++
			changed[rs.merged.Key] = true
			continue
		}
		switch {
		case it.at < a.last: // older than what we know: stale
			res.Unchanged++
		case string(o.Status) != a.status:
			stmt, err := tx.stmt(ctx, `UPDATE assessment SET status = ?, status_reason = ?, last_seen = ?, status_changed_at = ? WHERE id = ?`)
			if err != nil {
				return nil, fmt.Errorf("update assessment: %w", err)
			}
			t := tx.db.timeArg(it.atT)
			if _, err := stmt.ExecContext(ctx, string(o.Status), o.StatusReason, t, t, a.id); err != nil {
				return nil, fmt.Errorf("update assessment %d: %w", a.id, err)
			}
			hist, err := tx.stmt(ctx, `INSERT INTO assessment_status_change (assessment_id, from_status, to_status, at) VALUES (?, ?, ?, ?)`)
			if err != nil {
				return nil, fmt.Errorf("record status change: %w", err)
			}
			if _, err := hist.ExecContext(ctx, a.id, a.status, string(o.Status), t); err != nil {
				return nil, fmt.Errorf("record status change of assessment %d: %w", a.id, err)
			}
			res.StatusChanged++
			changed[rs.merged.Key] = true
			switch o.Status {
			case steward.StatusHealthy:
				healthy = append(healthy, healthyChange{id: a.id, at: it.atT})
			case steward.StatusUnhealthy:
				res.becameUnhealthy = append(res.becameUnhealthy, targets.of(a.id, false, it))
			}
		case o.StatusReason != a.reason:
			stmt, err := tx.stmt(ctx, `UPDATE assessment SET status_reason = ?, last_seen = ? WHERE id = ?`)
			if err != nil {
				return nil, fmt.Errorf("update assessment: %w", err)
			}
			if _, err := stmt.ExecContext(ctx, o.StatusReason, tx.db.timeArg(time.UnixMicro(max(a.last, it.at))), a.id); err != nil {
				return nil, fmt.Errorf("update assessment %d: %w", a.id, err)
			}
			res.Unchanged++
		case it.at > a.last:
			lastSeen[it.at] = append(lastSeen[it.at], a.id)
			res.Unchanged++
		default:
			res.Unchanged++
		}
	}
	// Only the IDs of those inserted Unhealthy are wanted; RETURNING's row
	// order is not the VALUES order, hence the pair.
	err := tx.insertRowsReturning(ctx, `INSERT INTO assessment (recommendation_id, resource_id, status, status_reason,
		severity_rank, first_seen, last_seen, status_changed_at) VALUES `, 8, inserts,
		` RETURNING id, recommendation_id, resource_id`, func(rows *sql.Rows) error {
			var id int64
			var p pairID
			if err := rows.Scan(&id, &p.rec, &p.res); err != nil {
				return err
			}
			if it, ok := newUnhealthy[p]; ok {
				res.becameUnhealthy = append(res.becameUnhealthy, targets.of(id, true, it))
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("insert assessments: %w", err)
	}
	for last, ids := range lastSeen {
		if err := execIn(ctx, tx, `UPDATE assessment SET last_seen = ? WHERE id IN (%s)`,
			[]any{tx.db.timeArg(time.UnixMicro(last))}, ids); err != nil {
			return nil, fmt.Errorf("update assessments last seen: %w", err)
		}
	}
	return healthy, nil
}

// targets builds the resources and recommendations of RuleTarget
// entries once each, from the state ApplyObservations already holds.
type targets struct {
	recs map[string]*recState
	ress map[string]*resState
	res  map[string]*steward.Resource
	rec  map[string]*steward.Recommendation
}

func newTargets(recs map[string]*recState, ress map[string]*resState) *targets {
	return &targets{recs: recs, ress: ress, res: map[string]*steward.Resource{}, rec: map[string]*steward.Recommendation{}}
}

func (t *targets) of(id int64, created bool, it *obsItem) RuleTarget {
	key := it.o.Recommendation.Key
	rec, ok := t.rec[key]
	if !ok {
		m := t.recs[key].merged
		rec = &m
		t.rec[key] = rec
	}
	res, ok := t.res[it.norm]
	if !ok {
		m := t.ress[it.norm].merged
		res = &steward.Resource{ID: m.id, Name: m.name, Type: m.typ, Cloud: steward.Cloud(m.cloud), Region: m.region}
		// Tags were encoded from a map a moment ago; a decode error cannot
		// happen, and without tags the rules simply see none.
		_ = decodeJSON(m.tags, &res.Tags)
		t.res[it.norm] = res
	}
	return RuleTarget{AssessmentID: id, Created: created, Resource: res, Recommendation: rec}
}

// ActiveAssignmentsOf returns, of the given assessments, those with an
// active assignment, mapped to it.
func (tx *Tx) ActiveAssignmentsOf(ctx context.Context, assessmentIDs []int64) (map[int64]ActiveAssignment, error) {
	return activeAssignmentsOf(ctx, tx.db, tx.tx, assessmentIDs)
}

// ActiveAssignmentsOf is Tx.ActiveAssignmentsOf on the reader pool.
func (db *DB) ActiveAssignmentsOf(ctx context.Context, assessmentIDs []int64) (map[int64]ActiveAssignment, error) {
	return activeAssignmentsOf(ctx, db, db.read, assessmentIDs)
}

func activeAssignmentsOf(ctx context.Context, db *DB, q querier, ids []int64) (map[int64]ActiveAssignment, error) {
	out := make(map[int64]ActiveAssignment)
	for start := 0; start < len(ids); start += inBatch {
		batch := ids[start:min(start+inBatch, len(ids))]
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		rows, err := q.QueryContext(ctx, db.bind(`SELECT assessment_id, id, COALESCE(rule_id, 0), created_at FROM assignment
			WHERE state = 'active' AND assessment_id IN (`+placeholders(len(batch))+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("find active assignments: %w", err)
		}
		for rows.Next() {
			var asm int64
			var a ActiveAssignment
			var created dbTime
			if err := rows.Scan(&asm, &a.ID, &a.RuleID, &created); err != nil {
				rows.Close()
				return nil, fmt.Errorf("find active assignments: %w", err)
			}
			a.CreatedAt = created.T
			out[asm] = a
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("find active assignments: %w", err)
		}
	}
	return out, nil
}

// ActiveAssignment is an active assignment and the rule that made it (0
// for a person's).
type ActiveAssignment struct {
	ID, RuleID int64
	CreatedAt  time.Time
}

// completeHealthyAssignments ends the active assignments of assessments that
// turned Healthy.
func (tx *Tx) completeHealthyAssignments(ctx context.Context, healthy []healthyChange, res *ApplyResult) error {
	when := make(map[int64]time.Time, len(healthy))
	ids := make([]int64, 0, len(healthy))
	for _, h := range healthy {
		when[h.id] = h.at
		ids = append(ids, h.id)
	}
	type active struct{ id, assessment int64 }
	var found []active
	for start := 0; start < len(ids); start += inBatch {
		batch := ids[start:min(start+inBatch, len(ids))]
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		// Locked (PostgreSQL): one that sync ends meanwhile drops out
		// instead of failing the chunk when it is ended here.
		rows, err := tx.tx.QueryContext(ctx, tx.db.bind(`SELECT id, assessment_id FROM assignment
			WHERE state = 'active' AND assessment_id IN (`+placeholders(len(batch))+`) ORDER BY id`+tx.db.forUpdate()), args...)
		if err != nil {
			return fmt.Errorf("find assignments to complete: %w", err)
		}
		for rows.Next() {
			var a active
			if err := rows.Scan(&a.id, &a.assessment); err != nil {
				rows.Close()
				return fmt.Errorf("find assignments to complete: %w", err)
			}
			found = append(found, a)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("find assignments to complete: %w", err)
		}
	}
	for _, a := range found {
		reason := "assessment turned Healthy at " + when[a.assessment].Format(time.RFC3339)
		if _, err := tx.EndAssignment(ctx, a.id, steward.AssignmentCompleted, "system", reason); err != nil {
			return fmt.Errorf("complete assignment %d: %w", a.id, err)
		}
		res.CompletedAssignments = append(res.CompletedAssignments, a.id)
	}
	return nil
}

// RecomputeRecommendationSummaries recomputes the assessment counts that the
// unfiltered, cloud-filtered and scope-level recommendation listings read
// (recommendation_summary, recommendation_scope_summary), for the given
// recommendation keys, or for all recommendations when keys is empty. It runs
// in one write transaction; unknown keys are ignored.
func (db *DB) RecomputeRecommendationSummaries(ctx context.Context, keys []string) error {
	const countCols = `SUM(CASE WHEN a.status = 'Unhealthy' THEN 1 ELSE 0 END),
		SUM(CASE WHEN a.status = 'Healthy' THEN 1 ELSE 0 END),
		SUM(CASE WHEN a.status = 'NotApplicable' THEN 1 ELSE 0 END)`
	err := db.WithTx(ctx, func(tx *Tx) error {
		// Recomputes delete and insert the same rows: concurrent ones on
		// PostgreSQL would collide on the primary key.
		if err := tx.advisoryLock(ctx, summaryLockKey); err != nil {
			return err
		}
		if err := tx.recomputeScopeSummaries(ctx, keys); err != nil {
			return err
		}
		if len(keys) == 0 {
			for _, q := range []string{
				`DELETE FROM recommendation_summary`,
				`INSERT INTO recommendation_summary (recommendation_id, cloud, unhealthy, healthy, not_applicable)
					SELECT a.recommendation_id, res.cloud, ` + countCols + ` FROM assessment a
					JOIN resource res ON res.id = a.resource_id GROUP BY a.recommendation_id, res.cloud`,
				`INSERT INTO recommendation_summary (recommendation_id, cloud, unhealthy, healthy, not_applicable)
					SELECT recommendation_id, '', SUM(unhealthy), SUM(healthy), SUM(not_applicable)
					FROM recommendation_summary GROUP BY recommendation_id`,
			} {
				if _, err := tx.tx.ExecContext(ctx, q); err != nil {
					return err
				}
			}
			return nil
		}
		keys = slices.Compact(slices.Sorted(slices.Values(keys)))
		ids, err := queryInIDs(ctx, tx, `SELECT id FROM recommendation WHERE key IN (%s)`, nil, keys)
		if err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM recommendation_summary WHERE recommendation_id IN (%s)`,
			`INSERT INTO recommendation_summary (recommendation_id, cloud, unhealthy, healthy, not_applicable)
				SELECT a.recommendation_id, res.cloud, ` + countCols + ` FROM assessment a
				JOIN resource res ON res.id = a.resource_id
				WHERE a.recommendation_id IN (%s) GROUP BY a.recommendation_id, res.cloud`,
			`INSERT INTO recommendation_summary (recommendation_id, cloud, unhealthy, healthy, not_applicable)
				SELECT recommendation_id, '', SUM(unhealthy), SUM(healthy), SUM(not_applicable)
				FROM recommendation_summary WHERE recommendation_id IN (%s) GROUP BY recommendation_id`,
		} {
			if err := execIn(ctx, tx, q, nil, ids); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recompute recommendation summaries: %w", err)
	}
	return nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
