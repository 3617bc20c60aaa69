package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// AssessmentFilter selects assessments. Zero fields do not filter.
type AssessmentFilter struct {
	RecommendationKey string
	// ResourceID matches one resource, in any letter case.
	ResourceID string
	Scope      steward.Scope
	Severities []steward.Severity
	Statuses   []steward.AssessmentStatus
	Cloud      steward.Cloud
	Cursor     string
	Limit      int
}

// StatusChange is one entry of an assessment's status history.
type StatusChange struct {
	From steward.AssessmentStatus `json:"from"`
	To   steward.AssessmentStatus `json:"to"`
	At   time.Time                `json:"at"`
}

const assessmentSelect = `SELECT a.id, r.key, res.resource_id, a.status, a.status_reason, r.severity, res.cloud,
	res.name, res.type, a.first_seen, a.last_seen, a.status_changed_at, COALESCE(g.id, 0)
	FROM assessment a
	JOIN recommendation r ON r.id = a.recommendation_id
	JOIN resource res ON res.id = a.resource_id
	LEFT JOIN assignment g ON g.assessment_id = a.id AND g.state = 'active'`

func scanAssessment(sc interface{ Scan(...any) error }) (*steward.Assessment, error) {
	a := new(steward.Assessment)
	var first, last, changed dbTime
	if err := sc.Scan(&a.ID, &a.RecommendationKey, &a.ResourceID, &a.Status, &a.StatusReason, &a.Severity, &a.Cloud,
		&a.ResourceName, &a.ResourceType, &first, &last, &changed, &a.AssignmentID); err != nil {
		return nil, err
	}
	a.FirstSeen, a.LastSeen, a.StatusChangedAt = first.T, last.T, changed.T
	return a, nil
}

// FindAssessments lists assessments by ID (one recommendation's by
// resource), one page at a time, with resource
// name/type, severity, cloud and active assignment filled in. Errors:
// CodeInvalid for a bad cursor, limit, scope, severity or status.
func (db *DB) FindAssessments(ctx context.Context, f AssessmentFilter) ([]*steward.Assessment, string, error) {
	out, next, err := db.findAssessments(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("find assessments: %w", err)
	}
	return out, next, nil
}

func (db *DB) findAssessments(ctx context.Context, f AssessmentFilter) ([]*steward.Assessment, string, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", err
	}
	// One recommendation's assessments are listed in resource order, which
	// is the order of its assessment_identity index entries: a page is a
	// range read of that index, filtered by status as it goes. In ID order
	// SQLite read and sorted all of the recommendation's assessments for
	// each page (10,000 for a check on 10,000 resources: ~40 ms). An index
	// on (recommendation_id, status) would do it too, but cost imports a
	// quarter more time.
	byResource := f.RecommendationKey != "" && f.ResourceID == ""
	kind := cursorAssessment
	if byResource {
		kind = cursorAssessmentInRecommendation
	}
	after, hasAfter, err := decodeCursor[int64](kind, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	var where []string
	var args []any
	if f.RecommendationKey != "" {
		where = append(where, "a.recommendation_id = (SELECT id FROM recommendation WHERE key = ?)")
		args = append(args, f.RecommendationKey)
	}
	if f.ResourceID != "" {
		where = append(where, "a.resource_id = (SELECT id FROM resource WHERE norm_id = ?)")
		args = append(args, steward.NormalizeResourceID(f.ResourceID))
	}
	cond, cargs, err := scopeRange("norm_id", f.Scope)
	if err != nil {
		return nil, "", err
	}
	if cond != "" {
		// Resources in scope by their norm_id index, then their assessments
		// through assessment_resource.
		where = append(where, "a.resource_id IN (SELECT id FROM resource WHERE "+cond+")")
		args = append(args, cargs...)
	}
	if len(f.Severities) > 0 {
		for _, s := range f.Severities {
			if s.Rank() == 0 {
				return nil, "", steward.Errorf(steward.CodeInvalid, "unknown severity %q", s)
			}
			args = append(args, s.Rank())
		}
		where = append(where, "a.severity_rank IN ("+placeholders(len(f.Severities))+")")
	}
	if len(f.Statuses) > 0 {
		for _, s := range f.Statuses {
			switch s {
			case steward.StatusHealthy, steward.StatusUnhealthy, steward.StatusNotApplicable:
			default:
				return nil, "", steward.Errorf(steward.CodeInvalid, "unknown status %q", s)
			}
			args = append(args, string(s))
		}
		where = append(where, "a.status IN ("+placeholders(len(f.Statuses))+")")
	}
	if f.Cloud != "" {
		where = append(where, "res.cloud = ?")
		args = append(args, string(f.Cloud))
	}
	order := " ORDER BY a.id LIMIT ?"
	switch {
	case byResource:
		// A resource has one assessment per recommendation, so resource_id
		// orders the page on its own.
		if hasAfter {
			where = append(where, "a.resource_id > (SELECT resource_id FROM assessment WHERE id = ?)")
			args = append(args, after)
		}
		order = " ORDER BY a.resource_id LIMIT ?"
	case hasAfter:
		where = append(where, "a.id > ?")
		args = append(args, after)
	}
	q := assessmentSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += order
	args = append(args, limit+1)
	rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []*steward.Assessment
	for rows.Next() {
		a, err := scanAssessment(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) > limit {
		out = out[:limit]
		return out, encodeCursor(kind, out[limit-1].ID), nil
	}
	return out, "", nil
}

// FindAssessmentByID returns one assessment, or CodeNotFound.
func (db *DB) FindAssessmentByID(ctx context.Context, id int64) (*steward.Assessment, error) {
	return findAssessmentByID(ctx, db, db.read, id)
}

// FindAssessmentByID is DB.FindAssessmentByID inside the transaction. On
// PostgreSQL it locks the assessment's row until the transaction ends, so
// its status cannot change under an assignment being made on it.
func (tx *Tx) FindAssessmentByID(ctx context.Context, id int64) (*steward.Assessment, error) {
	// Prepared once per transaction: rule evaluation calls this for every
	// assignment it makes in an import chunk.
	stmt, err := tx.stmt(ctx, assessmentSelect+` WHERE a.id = ?`+tx.db.forUpdateOf("a"))
	if err != nil {
		return nil, fmt.Errorf("find assessment %d: %w", id, err)
	}
	a, err := scanAssessment(stmt.QueryRowContext(ctx, id))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "assessment %d not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("find assessment %d: %w", id, err)
	}
	return a, nil
}

func findAssessmentByID(ctx context.Context, db *DB, q querier, id int64) (*steward.Assessment, error) {
	a, err := scanAssessment(q.QueryRowContext(ctx, db.bind(assessmentSelect+` WHERE a.id = ?`), id))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "assessment %d not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("find assessment %d: %w", id, err)
	}
	return a, nil
}

// FindStatusChanges returns an assessment's status history, oldest first, or
// CodeNotFound if the assessment does not exist.
func (db *DB) FindStatusChanges(ctx context.Context, assessmentID int64) ([]StatusChange, error) {
	var exists int
	if err := db.read.QueryRowContext(ctx, db.bind(`SELECT 1 FROM assessment WHERE id = ?`), assessmentID).Scan(&exists); isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "assessment %d not found", assessmentID)
	} else if err != nil {
		return nil, fmt.Errorf("find status changes of assessment %d: %w", assessmentID, err)
	}
	rows, err := db.read.QueryContext(ctx, db.bind(`SELECT from_status, to_status, at FROM assessment_status_change
		WHERE assessment_id = ? ORDER BY at, id`), assessmentID)
	if err != nil {
		return nil, fmt.Errorf("find status changes of assessment %d: %w", assessmentID, err)
	}
	defer rows.Close()
	out := []StatusChange{}
	for rows.Next() {
		var c StatusChange
		var at dbTime
		if err := rows.Scan(&c.From, &c.To, &at); err != nil {
			return nil, fmt.Errorf("find status changes of assessment %d: %w", assessmentID, err)
		}
		c.At = at.T
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find status changes of assessment %d: %w", assessmentID, err)
	}
	return out, nil
}
