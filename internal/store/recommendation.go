package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/stewardhq/steward"
)

// RecommendationSummary is a recommendation with the counts of its
// assessments by status (within the filter's scope and cloud, if any).
type RecommendationSummary struct {
	steward.Recommendation
	Unhealthy     int `json:"unhealthy"`
	Healthy       int `json:"healthy"`
	NotApplicable int `json:"not_applicable"`
}

// RecommendationFilter selects recommendations. Zero fields do not filter.
type RecommendationFilter struct {
	// Scope restricts the counted assessments to resources in the scope and
	// leaves out recommendations with none there. For a summary level
	// (scopesummary.go: a subscription, resource group, AWS account, GCP
	// project or organization, or a root above them) the counts come from
	// recommendation_scope_summary; for any other scope they are computed on
	// the fly.
	Scope      steward.Scope
	Severities []steward.Severity
	// Status keeps only recommendations having at least one assessment in
	// this status (within Scope and Cloud).
	Status steward.AssessmentStatus
	// Cloud restricts the counted assessments to resources in the cloud and
	// leaves out recommendations with none there. Without Scope the
	// per-cloud summary rows are used.
	Cloud  steward.Cloud
	Source string
	Cursor string
	Limit  int

	// onTheFly counts a scope's assessments even when the scope is a
	// summary level (tests compare the two).
	onTheFly bool
}

const recommendationCols = `r.key, r.display_name, r.description, r.remediation, r.severity, r.category, r.source, r.severity_rank`

func scanRecommendation(sc interface{ Scan(...any) error }, s *RecommendationSummary, rank *int, extra ...any) error {
	r := &s.Recommendation
	return sc.Scan(append([]any{&r.Key, &r.DisplayName, &r.Description, &r.Remediation, &r.Severity, &r.Category, &r.Source, rank}, extra...)...)
}

// FindRecommendations lists recommendations, most severe first, then by key
// (bytewise), one page at a time. Without a scope, or with a scope that is a
// summary level, the counts (all clouds, or the filter's cloud) come from the
// summaries that RecomputeRecommendationSummaries maintains, so they lag
// ingest until it runs and a page costs the same whatever the scope holds;
// with another scope they are counted on the fly from the assessments in the
// scope, at a cost that grows with their number. Errors: CodeInvalid for a
// bad cursor, limit, scope, severity or status.
func (db *DB) FindRecommendations(ctx context.Context, f RecommendationFilter) ([]*RecommendationSummary, string, error) {
	out, next, err := db.findRecommendations(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("find recommendations: %w", err)
	}
	return out, next, nil
}

func (db *DB) findRecommendations(ctx context.Context, f RecommendationFilter) ([]*RecommendationSummary, string, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", err
	}
	after, hasAfter, err := decodeCursor[recommendationKey](cursorRecommendation, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	scopeCond, scopeArgs, err := scopeRange("res.norm_id", f.Scope)
	if err != nil {
		return nil, "", err
	}
	statusCol := ""
	switch f.Status {
	case "":
	case steward.StatusUnhealthy:
		statusCol = "unhealthy"
	case steward.StatusHealthy:
		statusCol = "healthy"
	case steward.StatusNotApplicable:
		statusCol = "not_applicable"
	default:
		return nil, "", steward.Errorf(steward.CodeInvalid, "unknown status %q", f.Status)
	}

	// Conditions on the recommendation itself.
	var where []string
	var args []any
	var ranks []any
	if len(f.Severities) > 0 {
		for _, s := range f.Severities {
			if s.Rank() == 0 {
				return nil, "", steward.Errorf(steward.CodeInvalid, "unknown severity %q", s)
			}
			ranks = append(ranks, s.Rank())
		}
		where = append(where, "r.severity_rank IN ("+placeholders(len(ranks))+")")
		args = append(args, ranks...)
	}
	if scopeCond != "" && !f.onTheFly {
		level, ok, err := db.levelSummaries(ctx, f.Scope)
		if err != nil {
			return nil, "", err
		}
		if ok {
			return db.findRecommendationsInLevel(ctx, level, f, statusCol, ranks, after, hasAfter, limit)
		}
	}
	if f.Source != "" {
		where = append(where, "r.source = ?")
		args = append(args, f.Source)
	}
	// Keyset: severity descending, then key ascending (bytewise; PostgreSQL
	// needs key COLLATE "C" for the same order).
	keyset := func(after recommendationKey) (string, []any) {
		return "(r.severity_rank < ? OR (r.severity_rank = ? AND r.key > ?))", []any{after.Rank, after.Rank, after.Key}
	}

	if scopeCond == "" {
		// Summary path: one summary row per recommendation (cloud '' = all).
		join := "LEFT JOIN"
		if f.Cloud != "" {
			join = "JOIN" // no row for the cloud: no assessment there
			where = append(where, "(s.unhealthy + s.healthy + s.not_applicable) > 0")
		}
		if statusCol != "" {
			where = append(where, "s."+statusCol+" > 0")
		}
		if hasAfter {
			c, a := keyset(after)
			where = append(where, c)
			args = append(args, a...)
		}
		q := `SELECT ` + recommendationCols + `, COALESCE(s.unhealthy, 0), COALESCE(s.healthy, 0), COALESCE(s.not_applicable, 0)
			FROM recommendation r ` + join + ` recommendation_summary s ON s.recommendation_id = r.id AND s.cloud = ?`
		args = append([]any{string(f.Cloud)}, args...)
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		q += " ORDER BY r.severity_rank DESC, r.key LIMIT ?"
		args = append(args, limit+1)
		return db.queryRecommendationPage(ctx, q, args, limit)
	}

	// Scoped path: count the assessments of the resources in scope (a range
	// on resource.norm_id, then the covering assessment_resource index) per
	// recommendation, and page over the recommendations that have any. The
	// cost grows with the number of assessments in scope, not in the store.
	cte := `WITH counts AS (
		SELECT a.recommendation_id AS rid,
			SUM(CASE WHEN a.status = 'Unhealthy' THEN 1 ELSE 0 END) AS unhealthy,
			SUM(CASE WHEN a.status = 'Healthy' THEN 1 ELSE 0 END) AS healthy,
			SUM(CASE WHEN a.status = 'NotApplicable' THEN 1 ELSE 0 END) AS not_applicable
		FROM resource res JOIN assessment a ON a.resource_id = res.id
		WHERE ` + scopeCond
	cteArgs := scopeArgs
	if f.Cloud != "" {
		cte += " AND res.cloud = ?"
		cteArgs = append(cteArgs, string(f.Cloud))
	}
	cte += " GROUP BY a.recommendation_id)\n"
	if statusCol != "" {
		where = append(where, "c."+statusCol+" > 0")
	}
	if hasAfter {
		c, a := keyset(after)
		where = append(where, c)
		args = append(args, a...)
	}
	q := cte + `SELECT ` + recommendationCols + `, c.unhealthy, c.healthy, c.not_applicable
		FROM counts c JOIN recommendation r ON r.id = c.rid`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY r.severity_rank DESC, r.key LIMIT ?"
	args = append(append(cteArgs, args...), limit+1)
	return db.queryRecommendationPage(ctx, q, args, limit)
}

// queryRecommendationPage runs a listing query whose rows are
// recommendationCols plus the three counts, ordered by severity and key,
// and returns one page of it (the query asks for limit+1 rows).
func (db *DB) queryRecommendationPage(ctx context.Context, q string, args []any, limit int) ([]*RecommendationSummary, string, error) {
	rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []*RecommendationSummary
	var ranks []int
	for rows.Next() {
		s := new(RecommendationSummary)
		var rank int
		if err := scanRecommendation(rows, s, &rank, &s.Unhealthy, &s.Healthy, &s.NotApplicable); err != nil {
			return nil, "", err
		}
		out = append(out, s)
		ranks = append(ranks, rank)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	return pageRecommendations(out, ranks, limit)
}

// pageRecommendations trims a limit+1 result to a page and its next cursor.
func pageRecommendations(out []*RecommendationSummary, ranks []int, limit int) ([]*RecommendationSummary, string, error) {
	if len(out) <= limit {
		return out, "", nil
	}
	out = out[:limit]
	last := out[limit-1]
	return out, encodeCursor(cursorRecommendation, recommendationKey{Rank: ranks[limit-1], Key: last.Key}), nil
}

// FindRecommendationByKey returns one recommendation with its summary counts
// (as of the last RecomputeRecommendationSummaries), or CodeNotFound.
func (db *DB) FindRecommendationByKey(ctx context.Context, key string) (*RecommendationSummary, error) {
	return findRecommendationByKey(ctx, db, db.read, key)
}

// FindRecommendationByKey is DB.FindRecommendationByKey inside the
// transaction, which sees what the transaction wrote.
func (tx *Tx) FindRecommendationByKey(ctx context.Context, key string) (*RecommendationSummary, error) {
	return findRecommendationByKey(ctx, tx.db, tx.tx, key)
}

func findRecommendationByKey(ctx context.Context, db *DB, q querier, key string) (*RecommendationSummary, error) {
	s := new(RecommendationSummary)
	var rank int
	row := q.QueryRowContext(ctx, db.bind(`SELECT `+recommendationCols+`,
		COALESCE(s.unhealthy, 0), COALESCE(s.healthy, 0), COALESCE(s.not_applicable, 0)
		FROM recommendation r LEFT JOIN recommendation_summary s ON s.recommendation_id = r.id AND s.cloud = ''
		WHERE r.key = ?`), key)
	err := scanRecommendation(row, s, &rank, &s.Unhealthy, &s.Healthy, &s.NotApplicable)
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "recommendation %q not found", key)
	} else if err != nil {
		return nil, fmt.Errorf("find recommendation %q: %w", key, err)
	}
	return s, nil
}

// FindRecommendationInScope is FindRecommendationByKey with the counts of
// the assessments in scope only (from recommendation_scope_summary for a
// summary level, as FindRecommendations reads them, else computed on the
// fly); a recommendation with none there is CodeNotFound, as if it did not
// exist (a caller limited to a scope must not learn about the rest).
func (db *DB) FindRecommendationInScope(ctx context.Context, key string, scope steward.Scope) (*RecommendationSummary, error) {
	return db.findRecommendationInScope(ctx, key, scope, false)
}

func (db *DB) findRecommendationInScope(ctx context.Context, key string, scope steward.Scope, onTheFly bool) (*RecommendationSummary, error) {
	scopeCond, scopeArgs, err := scopeRange("res.norm_id", scope)
	if err != nil {
		return nil, err
	}
	if scopeCond == "" {
		return db.FindRecommendationByKey(ctx, key)
	}
	s := new(RecommendationSummary)
	var rank int
	if !onTheFly {
		level, ok, err := db.levelSummaries(ctx, scope)
		if err != nil {
			return nil, err
		}
		if ok {
			row := db.read.QueryRowContext(ctx, db.bind(`SELECT `+recommendationCols+`, s.unhealthy, s.healthy, s.not_applicable
				FROM recommendation r JOIN recommendation_scope_summary s ON s.recommendation_id = r.id AND s.scope = ? AND s.cloud = ''
				WHERE r.key = ?`), level, key)
			err := scanRecommendation(row, s, &rank, &s.Unhealthy, &s.Healthy, &s.NotApplicable)
			if isNoRows(err) {
				return nil, steward.Errorf(steward.CodeNotFound, "recommendation %q not found", key)
			} else if err != nil {
				return nil, fmt.Errorf("find recommendation %q in scope: %w", key, err)
			}
			return s, nil
		}
	}
	row := db.read.QueryRowContext(ctx, db.bind(`SELECT `+recommendationCols+`,
		SUM(CASE WHEN a.status = 'Unhealthy' THEN 1 ELSE 0 END),
		SUM(CASE WHEN a.status = 'Healthy' THEN 1 ELSE 0 END),
		SUM(CASE WHEN a.status = 'NotApplicable' THEN 1 ELSE 0 END)
		FROM recommendation r JOIN assessment a ON a.recommendation_id = r.id JOIN resource res ON res.id = a.resource_id
		WHERE r.key = ? AND `+scopeCond+` GROUP BY r.id`), append([]any{key}, scopeArgs...)...)
	err = scanRecommendation(row, s, &rank, &s.Unhealthy, &s.Healthy, &s.NotApplicable)
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "recommendation %q not found", key)
	} else if err != nil {
		return nil, fmt.Errorf("find recommendation %q in scope: %w", key, err)
	}
	return s, nil
}
