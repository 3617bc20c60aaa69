package store

import (
	"context"

	"github.com/stewardhq/steward"
)

// FindRecommendationsOnTheFly is FindRecommendations counting a scope's
// assessments even when the scope is a summary level: the oracle the scope
// summaries are checked against.
func (db *DB) FindRecommendationsOnTheFly(ctx context.Context, f RecommendationFilter) ([]*RecommendationSummary, string, error) {
	f.onTheFly = true
	return db.FindRecommendations(ctx, f)
}

// FindRecommendationInScopeOnTheFly is FindRecommendationInScope counting
// on the fly.
func (db *DB) FindRecommendationInScopeOnTheFly(ctx context.Context, key string, scope steward.Scope) (*RecommendationSummary, error) {
	return db.findRecommendationInScope(ctx, key, scope, true)
}

// SummaryLevels exposes the summary levels holding a normalized resource ID.
var SummaryLevels = summaryLevels
