package snowemu

import (
	"cmp"
	"slices"
	"sort"
	"strings"
)

// Query planning. scan (query.go) is the reference evaluation of a list
// query: test every row, then sort the matches stably. planned answers the
// same query from a smaller set of candidate rows when it can prove the
// candidates hold every match, and never changes what is returned, in what
// order, or the count:
//
//   - Index: when every ^NQ group has a top-level AND term "field=v" or
//     "fieldINv1,...,vn" (not part of an ^OR chain) on an indexed field
//     (sys_id, and the fields of indexedFields), the candidates are the
//     union of the index hits of one such term per group, in insertion
//     order. The index is keyed by foldKey, so its hits are a superset of
//     both the case-insensitive and the case-sensitive matches. Empty
//     values are not indexed, so a term with an empty value does not plan.
//   - Sorted view: a query with ORDERBY keys that are plain, non-reference
//     fields reads a cached copy of the table stably sorted by those keys
//     (rebuilt after any write to the table) instead of sorting its matches.
//     Filtering that view yields the matches in exactly the order a stable
//     sort of the matches gives. When every group bounds the first ORDERBY
//     field with <, <=, >, >=, BETWEEN (or = on a value no case folding can
//     change), only the view's matching slices are filtered. A stale view
//     is patched with the rows written since (table.log) rather than
//     re-sorted, unless more than an eighth of the table changed.
//
// Both paths still evaluate the whole query on each candidate.

// maxViews bounds the sorted views cached per table.
const maxViews = 8

type viewKey struct {
	orders string // "field,-field" (- for descending)
	fold   bool
}

type sortedView struct {
	version uint64
	rows    []*row
}

// planned returns the result of q through an index or a sorted view; false
// means no plan applies and the caller scans.
func (c *queryCtx) planned(t *table, q *query) ([]*row, bool) {
	if rs, ok := c.indexCandidates(t, q); ok {
		return c.filterSort(rs, q), true
	}
	if v := c.view(t, q.orders); v != nil {
		return c.fromView(v, q), true
	}
	return nil, false
}

// indexTerm reports whether t can be answered from the index of its field,
// and with which values.
func indexTerm(tb *table, t *term) ([]string, bool) {
	if len(t.path) != 1 || isNumeric(t.path[0]) {
		return nil, false
	}
	if _, ok := tb.indexes[t.path[0].name]; !ok {
		return nil, false
	}
	var vs []string
	switch t.op {
	case "=":
		vs = []string{t.value}
	case "IN":
		vs = t.values
	default:
		return nil, false
	}
	if slices.Contains(vs, "") {
		return nil, false // empty values are not indexed but match empty fields
	}
	return vs, true
}

// indexCandidates returns, in insertion order, the union over the query's
// groups of the index hits of each group's most selective indexable term;
// false when some group has none.
func (c *queryCtx) indexCandidates(t *table, q *query) ([]*row, bool) {
	var out []*row
	for _, g := range q.groups {
		var best []*row
		found := false
		for _, clause := range g {
			if len(clause) != 1 {
				continue // ^OR chain
			}
			vs, ok := indexTerm(t, clause[0])
			if !ok {
				continue
			}
			rs, _ := t.indexed(clause[0].path[0].name, vs...)
			if !found || len(rs) < len(best) {
				best, found = rs, true
			}
		}
		if !found {
			return nil, false
		}
		out = append(out, best...)
	}
	if len(q.groups) > 1 {
		slices.SortFunc(out, cmpSeq)
		out = slices.Compact(out)
	}
	return out, true
}

// view returns the rows of t stably sorted by orders, cached until the next
// write to t; nil when orders is empty or has a dot-walked or reference key
// (whose order depends on other rows).
func (c *queryCtx) view(t *table, orders []orderBy) []*row {
	if len(orders) == 0 {
		return nil
	}
	var b strings.Builder
	for i, o := range orders {
		if len(o.path) != 1 || o.path[0].kind == kindReference {
			return nil
		}
		if i > 0 {
			b.WriteByte(',')
		}
		if o.desc {
			b.WriteByte('-')
		}
		b.WriteString(o.path[0].name)
	}
	key := viewKey{orders: b.String(), fold: c.fold}
	t.viewMu.Lock()
	defer t.viewMu.Unlock()
	var rs []*row
	switch v := t.views[key]; {
	case v != nil && v.version == t.version:
		return v.rows
	case v != nil && v.version >= t.logBase && t.version-t.logBase == uint64(len(t.log)):
		rs = c.patchView(t, v.rows, t.log[v.version-t.logBase:], orders)
	default:
		rs = c.sortedRows(t.rows(), orders)
	}
	if t.views == nil || len(t.views) >= maxViews {
		t.views = make(map[viewKey]*sortedView)
	}
	t.views[key] = &sortedView{version: t.version, rows: rs}
	return rs
}

// sortKey is one row's ORDERBY values, prepared once so that sorting the
// whole table does not look up, lower-case and parse values per comparison.
type sortKey struct {
	r    *row
	strs []string  // value, lower-cased when folding
	nums []float64 // parsed value (numeric fields)
	oks  []bool    // value parsed as a number (numeric fields)
}

// fill sets k to r's ORDERBY values; k's slices have len(orders).
func (c *queryCtx) fill(k *sortKey, r *row, orders []orderBy) {
	k.r = r
	for j, o := range orders {
		v := r.fields[o.path[0].name]
		if isNumeric(o.path[0]) {
			k.nums[j], k.oks[j] = parseNum(v)
		}
		if c.fold {
			v = strings.ToLower(v)
		}
		k.strs[j] = v
	}
}

// cmpKeys orders two rows as c.orderCmp does (compareValues per key) for
// plain, non-reference fields, with ties broken by insertion order: the
// order a stable sort of rows in insertion order gives.
func cmpKeys(orders []orderBy, a, b *sortKey) int {
	for j, o := range orders {
		var r int
		switch {
		case isNumeric(o.path[0]) && a.oks[j] && b.oks[j]:
			r = cmp.Compare(a.nums[j], b.nums[j])
		case isNumeric(o.path[0]) && !a.oks[j] && b.oks[j]:
			r = -1
		case isNumeric(o.path[0]) && a.oks[j] && !b.oks[j]:
			r = 1
		default:
			r = strings.Compare(a.strs[j], b.strs[j])
		}
		if o.desc {
			r = -r
		}
		if r != 0 {
			return r
		}
	}
	return cmpSeq(a.r, b.r)
}

// sortedRows sorts rs exactly as slices.SortStableFunc(rs in insertion
// order, c.orderCmp(orders)) would, for orders of plain, non-reference
// fields, computing each row's keys once.
func (c *queryCtx) sortedRows(rs []*row, orders []orderBy) []*row {
	n, m := len(rs), len(orders)
	keys := make([]sortKey, n)
	strs, nums, oks := make([]string, n*m), make([]float64, n*m), make([]bool, n*m)
	for i, r := range rs {
		k := &keys[i]
		k.strs, k.nums, k.oks = strs[i*m:(i+1)*m], nums[i*m:(i+1)*m], oks[i*m:(i+1)*m]
		c.fill(k, r, orders)
	}
	slices.SortFunc(keys, func(a, b sortKey) int { return cmpKeys(orders, &a, &b) })
	for i := range keys {
		rs[i] = keys[i].r
	}
	return rs
}

// patchView returns old (the view before the writes that touched the given
// rows) brought up to date: touched rows are taken out, and those still
// live are re-inserted at their new places. The result equals a fresh
// sortedRows of the table, since (keys, insertion order) is a total order
// and untouched rows kept their keys.
func (c *queryCtx) patchView(t *table, old, touched []*row, orders []orderBy) []*row {
	dirty := make(map[*row]bool, len(touched))
	var fresh []*row
	for _, r := range touched {
		if !dirty[r] {
			dirty[r] = true
			if t.byID[r.fields["sys_id"]] == r {
				fresh = append(fresh, r)
			}
		}
	}
	fresh = c.sortedRows(fresh, orders)
	out := make([]*row, 0, len(old)+len(fresh))
	m := len(orders)
	a := sortKey{strs: make([]string, m), nums: make([]float64, m), oks: make([]bool, m)}
	b := sortKey{strs: make([]string, m), nums: make([]float64, m), oks: make([]bool, m)}
	kept := make([]*row, 0, len(old))
	for _, r := range old {
		if !dirty[r] {
			kept = append(kept, r)
		}
	}
	i := 0
	for _, f := range fresh {
		c.fill(&b, f, orders)
		j := i + sort.Search(len(kept)-i, func(k int) bool {
			c.fill(&a, kept[i+k], orders)
			return cmpKeys(orders, &a, &b) > 0
		})
		out = append(out, kept[i:j]...)
		out = append(out, f)
		i = j
	}
	return append(out, kept[i:]...)
}

// fromView filters the sorted view v, restricted to the slices that can
// hold matches of some group.
func (c *queryCtx) fromView(v []*row, q *query) []*row {
	type span struct{ lo, hi int }
	var spans []span
	for _, g := range q.groups {
		lo, hi := 0, len(v)
		for _, clause := range g {
			if len(clause) != 1 {
				continue
			}
			if a, b, ok := c.bound(v, q.orders[0], clause[0]); ok {
				lo, hi = max(lo, a), min(hi, b)
			}
		}
		if lo < hi {
			spans = append(spans, span{lo, hi})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return a.lo - b.lo })
	var out []*row
	next := 0 // first index not yet visited
	for _, s := range spans {
		for i := max(s.lo, next); i < s.hi; i++ {
			if c.matches(q, v[i].fields) {
				out = append(out, v[i])
			}
		}
		next = max(next, s.hi)
	}
	return out
}

// bound returns the index range [lo, hi) of the view v (sorted by o first)
// outside which no row matches t; false when t does not bound o's field.
func (c *queryCtx) bound(v []*row, o orderBy, t *term) (int, int, bool) {
	f := o.path[0]
	if len(t.path) != 1 || t.path[0].name != f.name || isNumeric(f) || f.kind == kindReference {
		return 0, 0, false
	}
	// For these operators a match implies compareValues(f, value, x) has
	// the operator's sign, and compareValues is the view's first key.
	cmpAt := func(i int, x string) int {
		r := compareValues(f, v[i].fields[f.name], x, c.fold)
		if o.desc {
			r = -r
		}
		return r
	}
	// first index whose value sorts at or after x, and strictly after x,
	// in view order.
	from := func(x string) int { return sort.Search(len(v), func(i int) bool { return cmpAt(i, x) >= 0 }) }
	after := func(x string) int { return sort.Search(len(v), func(i int) bool { return cmpAt(i, x) > 0 }) }
	n := len(v)
	op := t.op
	switch op {
	case "=":
		if c.fold && !foldInvariant(t.value) {
			return 0, 0, false
		}
		return from(t.value), after(t.value), true
	case "BETWEEN":
		if o.desc {
			return from(t.hi), after(t.lo), true
		}
		return from(t.lo), after(t.hi), true
	case ">", ">=", "<", "<=":
	default:
		return 0, 0, false
	}
	if o.desc {
		// Descending: a value above x sorts before x in view order.
		op = map[string]string{">": "<", ">=": "<=", "<": ">", "<=": ">="}[op]
	}
	switch op {
	case ">=":
		return from(t.value), n, true
	case ">":
		return after(t.value), n, true
	case "<":
		return 0, from(t.value), true
	default: // "<="
		return 0, after(t.value), true
	}
}

// foldInvariant reports whether every string EqualFold to s equals s: s is
// ASCII without letters (ASCII letters have non-ASCII fold partners such as
// U+212A KELVIN SIGN and U+017F LONG S).
func foldInvariant(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
