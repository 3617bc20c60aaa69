package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stewardhq/steward"
)

// FindOverview counts for the overview, limited to scope ("" or "/" for
// everything). Unscoped, the unhealthy counts come from the per-
// recommendation summaries (a few rows per recommendation, however many
// findings; a row with an empty cloud is a recommendation's total); a
// scope counts the findings of the resources inside it.
func (db *DB) FindOverview(ctx context.Context, scope steward.Scope, now time.Time, dueSoon time.Duration) (*steward.Overview, error) {
	cond, cargs, err := scopeRange("res.norm_id", scope)
	if err != nil {
		return nil, err
	}
	out := &steward.Overview{Unhealthy: []steward.UnhealthyCount{}}
	var q string
	var args []any
	if cond == "" {
		q = `SELECT r.severity, s.cloud, SUM(s.unhealthy) FROM recommendation_summary s
			JOIN recommendation r ON r.id = s.recommendation_id
			WHERE s.cloud <> ''
			GROUP BY r.severity, s.cloud HAVING SUM(s.unhealthy) > 0`
	} else {
		q = `SELECT r.severity, res.cloud, count(*) FROM resource res
			JOIN assessment a ON a.resource_id = res.id
			JOIN recommendation r ON r.id = a.recommendation_id
			WHERE ` + cond + ` AND a.status = ?
			GROUP BY r.severity, res.cloud`
		args = append(cargs, string(steward.StatusUnhealthy))
	}
	rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("overview: unhealthy counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c steward.UnhealthyCount
		if err := rows.Scan(&c.Severity, &c.Cloud, &c.Count); err != nil {
			return nil, fmt.Errorf("overview: unhealthy counts: %w", err)
		}
		out.Unhealthy = append(out.Unhealthy, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("overview: unhealthy counts: %w", err)
	}
	// Most severe first, then by cloud.
	slices.SortFunc(out.Unhealthy, func(x, y steward.UnhealthyCount) int {
		if c := cmp.Compare(y.Severity.Rank(), x.Severity.Rank()); c != 0 {
			return c
		}
		return cmp.Compare(x.Cloud, y.Cloud)
	})

	aq := `SELECT count(*), COALESCE(SUM(CASE WHEN g.due_date < ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN g.due_date >= ? AND g.due_date < ? THEN 1 ELSE 0 END), 0)
		FROM assignment g`
	aargs := []any{db.timeArg(now), db.timeArg(now), db.timeArg(now.Add(dueSoon))}
	if cond != "" {
		aq += ` JOIN assessment a ON a.id = g.assessment_id JOIN resource res ON res.id = a.resource_id WHERE g.state = ? AND ` + cond
		aargs = append(aargs, string(steward.AssignmentActive))
		aargs = append(aargs, cargs...)
	} else {
		aq += ` WHERE g.state = ?`
		aargs = append(aargs, string(steward.AssignmentActive))
	}
	a := &out.Assignments
	if err := db.read.QueryRowContext(ctx, db.bind(aq), aargs...).Scan(&a.Active, &a.Overdue, &a.DueSoon); err != nil {
		return nil, fmt.Errorf("overview: assignment counts: %w", err)
	}
	a.OnTime = a.Active - a.Overdue - a.DueSoon
	return out, nil
}
