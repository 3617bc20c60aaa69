package store

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardhq/steward"
)

// RuleRunState is where a run of a rule is.
type RuleRunState string

// Rule run states: queued → running → succeeded or failed.
const (
	RuleRunQueued    RuleRunState = "queued"
	RuleRunRunning   RuleRunState = "running"
	RuleRunSucceeded RuleRunState = "succeeded"
	RuleRunFailed    RuleRunState = "failed"
)

// RuleRun is one run of a governance rule on demand over the assessments
// that exist (steward rules run), done by a background job.
type RuleRun struct {
	ID       int64  `json:"id"`
	RuleID   int64  `json:"rule_id"`
	RuleName string `json:"rule_name"`
	Override bool   `json:"override"`
	// DryRun marks an answer computed without writing (never stored).
	DryRun bool         `json:"dry_run,omitempty"`
	State  RuleRunState `json:"state"`
	// Scanned counts the Unhealthy assessments in the rule's scope looked
	// at so far; Total is how many there were when the run started.
	Scanned  int `json:"scanned"`
	Total    int `json:"total"`
	Assigned int `json:"assigned"`
	// Replaced counts the rule-made assignments ended for a new one
	// (override).
	Replaced    int            `json:"replaced"`
	Skipped     map[string]int `json:"skipped"`
	Error       string         `json:"error,omitempty"`
	RequestedBy string         `json:"requested_by"`
	CreatedAt   time.Time      `json:"created_at"`
	StartedAt   *time.Time     `json:"started_at,omitempty"`
	FinishedAt  *time.Time     `json:"finished_at,omitempty"`
}

// Done reports whether the run has finished, either way.
func (r *RuleRun) Done() bool { return r.State == RuleRunSucceeded || r.State == RuleRunFailed }

const ruleRunColumns = `id, rule_id, rule_name, override, state, scanned, total, assigned, replaced, skipped, error, requested_by,
	created_at, started_at, finished_at`

func scanRuleRun(sc interface{ Scan(...any) error }) (*RuleRun, error) {
	r := new(RuleRun)
	var skipped string
	var created, started, finished dbTime
	if err := sc.Scan(&r.ID, &r.RuleID, &r.RuleName, &r.Override, &r.State, &r.Scanned, &r.Total, &r.Assigned, &r.Replaced, &skipped,
		&r.Error, &r.RequestedBy, &created, &started, &finished); err != nil {
		return nil, err
	}
	if err := decodeJSON(skipped, &r.Skipped); err != nil {
		return nil, fmt.Errorf("decode skipped of rule run %d: %w", r.ID, err)
	}
	if r.Skipped == nil {
		r.Skipped = map[string]int{}
	}
	r.CreatedAt, r.StartedAt, r.FinishedAt = created.T, started.ptr(), finished.ptr()
	return r, nil
}

// CreateRuleRun records a queued run and sets its ID, state and creation
// time. Queue its job in the same transaction.
func (tx *Tx) CreateRuleRun(ctx context.Context, r *RuleRun) error {
	now := tx.db.now()
	r.State, r.CreatedAt, r.Skipped = RuleRunQueued, now, map[string]int{}
	err := tx.tx.QueryRowContext(ctx, tx.db.bind(`INSERT INTO rule_run (rule_id, rule_name, override, state, requested_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), r.RuleID, r.RuleName, boolArg(r.Override), string(r.State), r.RequestedBy,
		tx.db.timeArg(now)).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("create rule run: %w", mapError(err))
	}
	return nil
}

// FindRuleRun returns run id of rule ruleID. Errors: CodeNotFound.
func (db *DB) FindRuleRun(ctx context.Context, ruleID, id int64) (*RuleRun, error) {
	r, err := scanRuleRun(db.read.QueryRowContext(ctx, db.bind(`SELECT `+ruleRunColumns+` FROM rule_run WHERE id = ? AND rule_id = ?`), id, ruleID))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "run %d of rule %d not found", id, ruleID)
	}
	if err != nil {
		return nil, fmt.Errorf("find rule run %d: %w", id, err)
	}
	return r, nil
}

// FindRuleRuns returns the latest runs of rule ruleID, newest first, at
// most limit of them.
func (db *DB) FindRuleRuns(ctx context.Context, ruleID int64, limit int) ([]*RuleRun, error) {
	rows, err := db.read.QueryContext(ctx, db.bind(`SELECT `+ruleRunColumns+` FROM rule_run WHERE rule_id = ? ORDER BY id DESC LIMIT ?`), ruleID, limit)
	if err != nil {
		return nil, fmt.Errorf("find runs of rule %d: %w", ruleID, err)
	}
	defer rows.Close()
	out := []*RuleRun{}
	for rows.Next() {
		r, err := scanRuleRun(rows)
		if err != nil {
			return nil, fmt.Errorf("find runs of rule %d: %w", ruleID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FindRuleRunByID returns run id, whatever its rule. Errors: CodeNotFound.
func (db *DB) FindRuleRunByID(ctx context.Context, id int64) (*RuleRun, error) {
	r, err := scanRuleRun(db.read.QueryRowContext(ctx, db.bind(`SELECT `+ruleRunColumns+` FROM rule_run WHERE id = ?`), id))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "rule run %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("find rule run %d: %w", id, err)
	}
	return r, nil
}

// UpdateRuleRun writes r's state, counts and error in tx. Moving to
// running sets the start time, to succeeded or failed the finish time.
func (tx *Tx) UpdateRuleRun(ctx context.Context, r *RuleRun) error {
	skipped, err := encodeJSON(r.Skipped)
	if err != nil {
		return fmt.Errorf("encode skipped of rule run %d: %w", r.ID, err)
	}
	now := tx.db.now()
	q := `UPDATE rule_run SET state = ?, scanned = ?, total = ?, assigned = ?, replaced = ?, skipped = ?, error = ?`
	args := []any{string(r.State), r.Scanned, r.Total, r.Assigned, r.Replaced, skipped, r.Error}
	switch {
	case r.State == RuleRunRunning && r.StartedAt == nil:
		r.StartedAt = &now
		q += `, started_at = ?`
		args = append(args, tx.db.timeArg(now))
	case r.Done():
		r.FinishedAt = &now
		q += `, finished_at = ?`
		args = append(args, tx.db.timeArg(now))
	}
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(q+` WHERE id = ?`), append(args, r.ID)...); err != nil {
		return fmt.Errorf("update rule run %d: %w", r.ID, mapError(err))
	}
	return nil
}

// UnhealthyInScope returns up to limit Unhealthy assessments in scope
// with an ID above after, in ID order, as rules match them (a rule run
// pages through them).
func (db *DB) UnhealthyInScope(ctx context.Context, scope steward.Scope, after int64, limit int) ([]RuleTarget, error) {
	cond, args, err := scopeRange("res.norm_id", scope)
	if err != nil {
		return nil, err
	}
	q := `SELECT a.id, r.key, r.severity, r.source, res.resource_id, res.name, res.type, res.cloud, res.region, res.tags
		FROM assessment a
		JOIN recommendation r ON r.id = a.recommendation_id
		JOIN resource res ON res.id = a.resource_id
		WHERE a.status = 'Unhealthy' AND a.id > ?`
	if cond != "" {
		q += " AND " + cond
	}
	rows, err := db.read.QueryContext(ctx, db.bind(q+" ORDER BY a.id LIMIT ?"), append(append([]any{after}, args...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("find unhealthy assessments: %w", err)
	}
	defer rows.Close()
	var out []RuleTarget
	ress := map[string]*steward.Resource{}
	recs := map[string]*steward.Recommendation{}
	for rows.Next() {
		var (
			id   int64
			res  steward.Resource
			rec  steward.Recommendation
			tags string
		)
		if err := rows.Scan(&id, &rec.Key, &rec.Severity, &rec.Source, &res.ID, &res.Name, &res.Type, &res.Cloud, &res.Region, &tags); err != nil {
			return nil, fmt.Errorf("find unhealthy assessments: %w", err)
		}
		pres, ok := ress[res.ID]
		if !ok {
			if err := decodeJSON(tags, &res.Tags); err != nil {
				return nil, fmt.Errorf("decode tags of %s: %w", res.ID, err)
			}
			pres = &res
			ress[res.ID] = pres
		}
		prec, ok := recs[rec.Key]
		if !ok {
			prec = &rec
			recs[rec.Key] = prec
		}
		out = append(out, RuleTarget{AssessmentID: id, Resource: pres, Recommendation: prec})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find unhealthy assessments: %w", err)
	}
	return out, nil
}

// CountUnhealthyInScope counts the Unhealthy assessments in scope.
func (db *DB) CountUnhealthyInScope(ctx context.Context, scope steward.Scope) (int, error) {
	cond, args, err := scopeRange("res.norm_id", scope)
	if err != nil {
		return 0, err
	}
	q := `SELECT COUNT(*) FROM assessment a JOIN resource res ON res.id = a.resource_id WHERE a.status = 'Unhealthy'`
	if cond != "" {
		q += " AND " + cond
	}
	var n int
	if err := db.read.QueryRowContext(ctx, db.bind(q), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unhealthy assessments: %w", err)
	}
	return n, nil
}

// Savepoint runs fn inside a savepoint of tx: when fn fails, what it wrote
// is undone and the transaction goes on, so one governance rule
// assignment that cannot be made does not fail an import chunk.
func (tx *Tx) Savepoint(ctx context.Context, fn func() error) error {
	// Statements prepared once per transaction: rule evaluation opens a
	// savepoint for every assignment it makes.
	exec := func(q string) error {
		stmt, err := tx.stmt(ctx, q)
		if err == nil {
			_, err = stmt.ExecContext(ctx)
		}
		return mapError(err)
	}
	if err := exec(`SAVEPOINT steward_sp`); err != nil {
		return &savepointError{fmt.Errorf("savepoint: %w", err)}
	}
	if ferr := fn(); ferr != nil {
		if err := exec(`ROLLBACK TO SAVEPOINT steward_sp`); err != nil {
			return &savepointError{fmt.Errorf("roll back to savepoint after %v: %w", ferr, err)}
		}
		if err := exec(`RELEASE SAVEPOINT steward_sp`); err != nil {
			return &savepointError{fmt.Errorf("release savepoint: %w", err)}
		}
		return ferr
	}
	if err := exec(`RELEASE SAVEPOINT steward_sp`); err != nil {
		return &savepointError{fmt.Errorf("release savepoint: %w", err)}
	}
	return nil
}

// savepointError is a failure of the savepoint statements themselves: the
// transaction can no longer be trusted and must be rolled back.
type savepointError struct{ err error }

func (e *savepointError) Error() string { return e.err.Error() }
func (e *savepointError) Unwrap() error { return e.err }
