package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/stewardhq/steward"
)

// Scope summaries: recommendation_scope_summary holds the counts a scoped
// recommendations listing shows, per summary level, cloud ('' for all) and
// recommendation, so that a listing filtered by such a level reads one row
// per recommendation (a keyset range of an index) instead of counting the
// scope's assessments. A scope filter at any other level counts on the fly.
//
// The levels are the scopes people filter by, and the roots above them:
//
//	/subscriptions, /subscriptions/<s>, /subscriptions/<s>/resourcegroups/<g>
//	/aws, /aws/accounts, /aws/accounts/<a>
//	/gcp, /gcp/projects, /gcp/projects/<p>, /gcp/organizations, /gcp/organizations/<o>
//
// A resource counts at every level that holds it in the sense of the scope
// filters (store.scopeRange: norm_id = s or begins with s/), so a level's
// summary is exactly what counting on the fly gives. Each resource is
// mapped once (resource_summary_scope) to the deepest level holding it; the
// levels above follow from that level's own ID, so a recompute counts each
// assessment once and rolls the few resulting groups up in Go.
//
// Freshness is recommendation_summary's: the rows are rebuilt by
// RecomputeRecommendationSummaries for the recommendations it is given,
// which every path changing assessments queues after its commit.

// summaryPatterns are the summary levels as segment patterns ("*": any
// non-empty segment).
var summaryPatterns = [][]string{
	{"subscriptions"},
	{"subscriptions", "*"},
	{"subscriptions", "*", "resourcegroups", "*"},
	{"aws"},
	{"aws", "accounts"},
	{"aws", "accounts", "*"},
	{"gcp"},
	{"gcp", "projects"},
	{"gcp", "projects", "*"},
	{"gcp", "organizations"},
	{"gcp", "organizations", "*"},
}

// maxSummaryDepth is the most segments a summary level has.
const maxSummaryDepth = 4

// metaScopeSummariesPending is the meta key present while the scope
// summaries are incomplete: migration 0017 sets it on a database that
// already holds assessments, and the first recompute, which then recomputes
// everything, removes it.
const metaScopeSummariesPending = "scope_summaries_pending"

// summaryLevels returns the summary levels holding the resource whose
// normalized ID is normID, outermost first (none for IDs of other shapes).
// Segments are byte strings split at '/', as the scope filters' byte ranges
// see them: an empty segment ends the walk, since no normalized scope has
// one.
func summaryLevels(normID string) []string {
	if !strings.HasPrefix(normID, "/") {
		return nil
	}
	var segs []string
	var out []string
	rest := normID[1:]
	for len(segs) < maxSummaryDepth {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "" {
			break
		}
		segs = append(segs, seg)
		if matchesLevel(segs) {
			out = append(out, normID[:1+len(strings.Join(segs, "/"))])
		}
		if !more {
			break
		}
		rest = tail
	}
	return out
}

func matchesLevel(segs []string) bool {
	for _, p := range summaryPatterns {
		if len(p) != len(segs) {
			continue
		}
		ok := true
		for i, want := range p {
			if want != "*" && want != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// summaryLevel returns the normalized scope and whether it is a summary
// level (the scope must be valid).
func summaryLevel(scope steward.Scope) (string, bool) {
	s := string(scope.Normalize())
	levels := summaryLevels(s)
	return s, len(levels) > 0 && levels[len(levels)-1] == s
}

// scopeSummariesBuilt reports whether recommendation_scope_summary is
// complete (see metaScopeSummariesPending).
func scopeSummariesBuilt(ctx context.Context, db *DB, q querier) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, db.bind(`SELECT COUNT(*) FROM meta WHERE key = ?`), metaScopeSummariesPending).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read scope summaries state: %w", err)
	}
	return n == 0, nil
}

// levelSummaries answers whether a listing or lookup scoped to scope can
// read recommendation_scope_summary, and the normalized level if so.
func (db *DB) levelSummaries(ctx context.Context, scope steward.Scope) (string, bool, error) {
	level, ok := summaryLevel(scope)
	if !ok {
		return "", false, nil
	}
	built, err := scopeSummariesBuilt(ctx, db, db.read)
	if err != nil || !built {
		return "", false, err
	}
	return level, true, nil
}

// findRecommendationsInLevel is findRecommendations for a scope that is a
// summary level: a keyset range of recommendation_scope_summary_listing.
// where and args are the conditions on the recommendation (r); the order
// and the cursor use the summary's copy of the severity rank, so pages stay
// consistent with each other even while a severity change awaits its
// recompute.
func (db *DB) findRecommendationsInLevel(ctx context.Context, level string, f RecommendationFilter, statusCol string,
	ranks []any, after recommendationKey, hasAfter bool, limit int) ([]*RecommendationSummary, string, error) {
	where := []string{"s.scope = ?", "s.cloud = ?"}
	args := []any{level, string(f.Cloud)}
	if len(ranks) > 0 {
		where = append(where, "s.severity_rank IN ("+placeholders(len(ranks))+")")
		args = append(args, ranks...)
	}
	if f.Source != "" {
		where = append(where, "r.source = ?")
		args = append(args, f.Source)
	}
	if statusCol != "" {
		where = append(where, "s."+statusCol+" > 0")
	}
	if hasAfter {
		where = append(where, "(s.severity_rank < ? OR (s.severity_rank = ? AND s.recommendation_key > ?))")
		args = append(args, after.Rank, after.Rank, after.Key)
	}
	q := `SELECT r.key, r.display_name, r.description, r.remediation, r.severity, r.category, r.source, s.severity_rank,
			s.unhealthy, s.healthy, s.not_applicable
		FROM recommendation_scope_summary s JOIN recommendation r ON r.id = s.recommendation_id
		WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY s.severity_rank DESC, s.recommendation_key LIMIT ?`
	args = append(args, limit+1)
	return db.queryRecommendationPage(ctx, q, args, limit)
}

// recomputeScopeSummaries rebuilds recommendation_scope_summary for the
// recommendations with the given keys (all when none), in tx, which holds
// the summary lock. Until the summaries are complete every recompute is a
// full one, which completes them.
func (tx *Tx) recomputeScopeSummaries(ctx context.Context, keys []string) error {
	built, err := scopeSummariesBuilt(ctx, tx.db, tx.tx)
	if err != nil {
		return err
	}
	full := len(keys) == 0 || !built
	if err := tx.mapResourceScopes(ctx, full); err != nil {
		return err
	}
	var ids []int64
	if !full {
		keys = slices.Compact(slices.Sorted(slices.Values(keys)))
		if ids, err = queryInIDs(ctx, tx, `SELECT id FROM recommendation WHERE key IN (%s)`, nil, keys); err != nil {
			return fmt.Errorf("find recommendations: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
	}

	// Count each assessment once, at the deepest level holding its
	// resource, per recommendation and cloud.
	type group struct {
		rid, scopeID int64
		cloud        string
		n            [3]int64
	}
	var groups []group
	scan := func(rows *sql.Rows) error {
		var g group
		if err := rows.Scan(&g.rid, &g.scopeID, &g.cloud, &g.n[0], &g.n[1], &g.n[2]); err != nil {
			return err
		}
		groups = append(groups, g)
		return nil
	}
	// Two ways to count: every assessment, walking the mapped resources and
	// reading each one's assessments from the covering assessment_resource
	// index (SQLite keeps a CROSS JOIN's order as written), or one
	// recommendation's assessments after another through
	// assessment_identity, which costs a lookup of the assessment row, its
	// resource and mapping per assessment. Over 1M assessments the first
	// took a third to half the time of the second (3-4 s against 8-16 s,
	// shared 2-core machine), so it serves every recompute asked for a
	// quarter or more of the recommendations, keeping only their groups.
	const counts = `SUM(CASE WHEN a.status = 'Unhealthy' THEN 1 ELSE 0 END),
			SUM(CASE WHEN a.status = 'Healthy' THEN 1 ELSE 0 END),
			SUM(CASE WHEN a.status = 'NotApplicable' THEN 1 ELSE 0 END)`
	scanAll := full
	if !full {
		var total int
		if err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM recommendation`).Scan(&total); err != nil {
			return fmt.Errorf("count recommendations: %w", err)
		}
		scanAll = 4*len(ids) >= total
	}
	if full {
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM recommendation_scope_summary`); err != nil {
			return fmt.Errorf("clear scope summaries: %w", err)
		}
	} else if err := execIn(ctx, tx, `DELETE FROM recommendation_scope_summary WHERE recommendation_id IN (%s)`, nil, ids); err != nil {
		return fmt.Errorf("clear scope summaries: %w", err)
	}
	if scanAll {
		if !full {
			wanted := make(map[int64]bool, len(ids))
			for _, id := range ids {
				wanted[id] = true
			}
			all := scan
			scan = func(rows *sql.Rows) error {
				if err := all(rows); err != nil {
					return err
				}
				if !wanted[groups[len(groups)-1].rid] {
					groups = groups[:len(groups)-1]
				}
				return nil
			}
		}
		stmt, err := tx.stmt(ctx, `SELECT a.recommendation_id, m.scope_id, res.cloud, `+counts+`
			FROM resource_summary_scope m CROSS JOIN resource res CROSS JOIN assessment a
			WHERE res.id = m.resource_id AND a.resource_id = m.resource_id AND m.scope_id IS NOT NULL
			GROUP BY m.scope_id, a.recommendation_id, res.cloud`)
		if err != nil {
			return err
		}
		if err := queryEach(ctx, stmt, nil, scan); err != nil {
			return fmt.Errorf("count assessments by scope: %w", err)
		}
	} else if err := queryIn(ctx, tx, `SELECT a.recommendation_id, m.scope_id, res.cloud, `+counts+`
		FROM assessment a JOIN resource_summary_scope m ON m.resource_id = a.resource_id
		JOIN resource res ON res.id = a.resource_id
		WHERE m.scope_id IS NOT NULL AND a.recommendation_id IN (%s)
		GROUP BY a.recommendation_id, m.scope_id, res.cloud`, nil, ids, scan); err != nil {
		return fmt.Errorf("count assessments by scope: %w", err)
	}

	// What the rows copy: the levels' IDs and the recommendations' order.
	levels := make(map[int64][]string)
	stmt, err := tx.stmt(ctx, `SELECT id, scope FROM summary_scope`)
	if err != nil {
		return err
	}
	if err := queryEach(ctx, stmt, nil, func(rows *sql.Rows) error {
		var id int64
		var s string
		if err := rows.Scan(&id, &s); err != nil {
			return err
		}
		levels[id] = summaryLevels(s)
		return nil
	}); err != nil {
		return fmt.Errorf("read summary scopes: %w", err)
	}
	type recOrder struct {
		rank int64
		key  string
	}
	recs := make(map[int64]recOrder)
	rids := make([]int64, 0, len(groups))
	for _, g := range groups {
		rids = append(rids, g.rid)
	}
	rids = slices.Compact(slices.Sorted(slices.Values(rids)))
	if err := queryIn(ctx, tx, `SELECT id, severity_rank, key FROM recommendation WHERE id IN (%s)`, nil, rids, func(rows *sql.Rows) error {
		var id int64
		var o recOrder
		if err := rows.Scan(&id, &o.rank, &o.key); err != nil {
			return err
		}
		recs[id] = o
		return nil
	}); err != nil {
		return fmt.Errorf("read recommendations: %w", err)
	}

	// Roll each recommendation's groups up to every level above them, for
	// their cloud and for all clouds, and write them.
	slices.SortFunc(groups, func(a, b group) int { return cmp.Compare(a.rid, b.rid) })
	type sumKey struct{ scope, cloud string }
	const cols = 8
	var rows []any
	flush := func(force bool) error {
		if len(rows) == 0 || !force && len(rows) < insertRows*cols {
			return nil
		}
		for start := 0; start < len(rows); start += insertRows * cols {
			batch := rows[start:min(start+insertRows*cols, len(rows))]
			stmt, err := tx.stmt(ctx, `INSERT INTO recommendation_scope_summary
				(recommendation_id, scope, cloud, severity_rank, recommendation_key, unhealthy, healthy, not_applicable) VALUES `+
				rowsPlaceholders(len(batch)/cols, cols))
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, batch...); err != nil {
				return fmt.Errorf("write scope summaries: %w", err)
			}
		}
		rows = rows[:0]
		return nil
	}
	for start := 0; start < len(groups); {
		rid := groups[start].rid
		end := start
		sums := make(map[sumKey]*[3]int64)
		add := func(k sumKey, n [3]int64) {
			s := sums[k]
			if s == nil {
				s = new([3]int64)
				sums[k] = s
			}
			for i := range n {
				s[i] += n[i]
			}
		}
		for ; end < len(groups) && groups[end].rid == rid; end++ {
			g := groups[end]
			for _, l := range levels[g.scopeID] {
				add(sumKey{l, g.cloud}, g.n)
				if g.cloud != "" {
					add(sumKey{l, ""}, g.n)
				}
			}
		}
		o := recs[rid]
		for _, k := range slices.SortedFunc(maps.Keys(sums), func(a, b sumKey) int {
			if c := strings.Compare(a.scope, b.scope); c != 0 {
				return c
			}
			return strings.Compare(a.cloud, b.cloud)
		}) {
			n := sums[k]
			rows = append(rows, rid, k.scope, k.cloud, o.rank, o.key, n[0], n[1], n[2])
		}
		if err := flush(false); err != nil {
			return err
		}
		start = end
	}
	if err := flush(true); err != nil {
		return err
	}
	if !built {
		if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`DELETE FROM meta WHERE key = ?`), metaScopeSummariesPending); err != nil {
			return fmt.Errorf("mark scope summaries built: %w", err)
		}
	}
	return nil
}

// mapResourceScopes records the deepest summary level of each resource not
// mapped yet. Resources are never deleted and their norm_id never changes,
// and ingest inserts them one chunk at a time (on PostgreSQL under its
// advisory lock), so IDs are committed in increasing order and the new ones
// are those above the highest mapped; a full recompute looks for every
// unmapped one instead. A resource committed after this ran is counted by
// the recompute its own ingest queues.
func (tx *Tx) mapResourceScopes(ctx context.Context, full bool) error {
	const page = 5000
	q := `SELECT id, norm_id FROM resource WHERE id > ? AND id > (SELECT COALESCE(MAX(resource_id), 0) FROM resource_summary_scope)
		ORDER BY id LIMIT ?`
	if full {
		q = `SELECT r.id, r.norm_id FROM resource r WHERE r.id > ?
			AND NOT EXISTS (SELECT 1 FROM resource_summary_scope m WHERE m.resource_id = r.id) ORDER BY r.id LIMIT ?`
	}
	scopeIDs := make(map[string]int64)
	var after int64
	for {
		type mapped struct {
			id    int64
			level string
		}
		var got []mapped
		stmt, err := tx.stmt(ctx, q)
		if err != nil {
			return err
		}
		if err := queryEach(ctx, stmt, []any{after, page}, func(rows *sql.Rows) error {
			var m mapped
			var norm string
			if err := rows.Scan(&m.id, &norm); err != nil {
				return err
			}
			if l := summaryLevels(norm); len(l) > 0 {
				m.level = l[len(l)-1]
			}
			got = append(got, m)
			return nil
		}); err != nil {
			return fmt.Errorf("read unmapped resources: %w", err)
		}
		if len(got) == 0 {
			return nil
		}
		var missing []string
		for _, m := range got {
			if _, ok := scopeIDs[m.level]; !ok && m.level != "" {
				scopeIDs[m.level] = 0
				missing = append(missing, m.level)
			}
		}
		if err := tx.summaryScopeIDs(ctx, missing, scopeIDs); err != nil {
			return err
		}
		args := make([]any, 0, 2*len(got))
		for _, m := range got {
			var sid any // NULL: no level holds the resource
			if m.level != "" {
				sid = scopeIDs[m.level]
			}
			args = append(args, m.id, sid)
		}
		for start := 0; start < len(args); start += insertRows * 2 {
			batch := args[start:min(start+insertRows*2, len(args))]
			stmt, err := tx.stmt(ctx, `INSERT INTO resource_summary_scope (resource_id, scope_id) VALUES `+rowsPlaceholders(len(batch)/2, 2))
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, batch...); err != nil {
				return fmt.Errorf("map resources to summary scopes: %w", err)
			}
		}
		if len(got) < page {
			return nil
		}
		after = got[len(got)-1].id
	}
}

// summaryScopesQuery finds summary scopes by name (%s: the placeholders).
const summaryScopesQuery = `SELECT id, scope FROM summary_scope WHERE scope IN (%s)`

// scanSummaryScopeIDs records each row of summaryScopesQuery in ids.
func scanSummaryScopeIDs(ids map[string]int64) func(*sql.Rows) error {
	return func(rows *sql.Rows) error {
		var id int64
		var s string
		if err := rows.Scan(&id, &s); err != nil {
			return err
		}
		ids[s] = id
		return nil
	}
}

// summaryScopeIDs fills ids with the summary_scope IDs of scopes, creating
// the missing ones.
func (tx *Tx) summaryScopeIDs(ctx context.Context, scopes []string, ids map[string]int64) error {
	if len(scopes) == 0 {
		return nil
	}
	if err := queryIn(ctx, tx, summaryScopesQuery, nil, scopes, scanSummaryScopeIDs(ids)); err != nil {
		return fmt.Errorf("find summary scopes: %w", err)
	}
	for _, s := range scopes {
		if ids[s] != 0 {
			continue
		}
		var id int64
		if err := tx.tx.QueryRowContext(ctx, tx.db.bind(`INSERT INTO summary_scope (scope) VALUES (?) RETURNING id`), s).Scan(&id); err != nil {
			return fmt.Errorf("add summary scope %q: %w", s, err)
		}
		ids[s] = id
	}
	return nil
}
