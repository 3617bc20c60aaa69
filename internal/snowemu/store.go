package snowemu

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Record is a copy of one stored row: field name → raw value, every value a
// string exactly as the Table API returns it with sysparm_display_value=false.
type Record map[string]string

// row is one stored record. Its fields map is replaced, never mutated, once
// the row is visible, so a reader holding the read lock sees a consistent
// record.
type row struct {
	fields map[string]string
	seq    uint64 // insertion sequence: the default list order
}

// table is the in-memory store of one table. Rows are kept in insertion
// order (the default order of a list without ORDERBY) and indexed by sys_id;
// sys_id and a few fields that integrations look records up by also have
// case-folded secondary indexes, so sys_idIN / correlation_id lookups stay
// fast with 100,000 records (see plan.go).
type table struct {
	def     *tableDef
	byID    map[string]*row
	order   []*row // insertion order; deleted rows become nil until compaction
	holes   int
	counter int                          // next number
	seq     uint64                       // next row.seq
	indexes map[string]map[string][]*row // field → foldKey(value) → rows (any order)

	// version counts writes (add, replace, remove); sorted views of an
	// older version are stale. Written under the emulator's write lock.
	version uint64
	viewMu  sync.Mutex
	views   map[viewKey]*sortedView
	// log holds the row of each write since version logBase: log[i] was
	// written by the write that made version logBase+i+1. Kept only while
	// views are cached, and at most about an eighth of the table.
	log     []*row
	logBase uint64
}

// indexedFields are the fields with a secondary index besides sys_id, per
// table.
var indexedFields = map[string][]string{
	TableIncident:      {"number", "correlation_id"},
	TableProblem:       {"number", "correlation_id"},
	TableChangeRequest: {"number", "correlation_id"},
	TableUser:          {"user_name", "email"},
	TableGroup:         {"name"},
	TableJournal:       {"element_id"},
	TableAudit:         {"documentkey"},
}

func newTable(def *tableDef) *table {
	t := &table{
		def:     def,
		byID:    make(map[string]*row),
		counter: def.firstNumber,
		indexes: make(map[string]map[string][]*row),
	}
	t.indexes["sys_id"] = make(map[string][]*row)
	for _, f := range indexedFields[def.name] {
		t.indexes[f] = make(map[string][]*row)
	}
	return t
}

// foldKey maps s to a key such that foldKey(a) == foldKey(b) exactly when
// strings.EqualFold(a, b): each rune (invalid bytes count as U+FFFD, as in
// EqualFold) is replaced by a fixed member of its simple case-folding orbit.
// ASCII strings map to their lower case.
func foldKey(s string) string {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			var b strings.Builder
			b.Grow(len(s))
			for _, r := range s {
				b.WriteRune(foldRune(r))
			}
			return b.String()
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if upper {
		return strings.ToLower(s)
	}
	return s
}

// foldRune returns the smallest rune of r's simple folding orbit, lowered
// when that is an ASCII capital (so ASCII keys are plain lower case).
func foldRune(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	if 'A' <= m && m <= 'Z' {
		m += 'a' - 'A'
	}
	return m
}

func (t *table) index(r *row) {
	for f, idx := range t.indexes {
		k := foldKey(r.fields[f])
		if k == "" {
			continue
		}
		idx[k] = append(idx[k], r)
	}
}

func (t *table) unindex(r *row) {
	for f, idx := range t.indexes {
		k := foldKey(r.fields[f])
		rs := idx[k]
		if i := slices.Index(rs, r); i >= 0 {
			rs[i] = rs[len(rs)-1]
			rs[len(rs)-1] = nil
			rs = rs[:len(rs)-1]
			if len(rs) == 0 {
				delete(idx, k)
			} else {
				idx[k] = rs
			}
		}
	}
}

// wrote records a write to r: views older than the new version are stale.
// Called under the emulator's write lock, so no reader holds viewMu.
func (t *table) wrote(r *row) {
	if len(t.views) == 0 || len(t.log) >= len(t.byID)/8+64 {
		clear(t.log)
		t.log, t.logBase = t.log[:0], t.version
	}
	t.log = append(t.log, r)
	t.version++
}

func (t *table) add(r *row) {
	r.seq = t.seq
	t.seq++
	t.wrote(r)
	t.byID[r.fields["sys_id"]] = r
	t.order = append(t.order, r)
	t.index(r)
}

// replace swaps the fields of r, keeping the indexes in step.
func (t *table) replace(r *row, fields map[string]string) {
	t.wrote(r)
	t.unindex(r)
	r.fields = fields
	t.index(r)
}

func (t *table) remove(r *row) {
	t.wrote(r)
	t.unindex(r)
	delete(t.byID, r.fields["sys_id"])
	for i, o := range t.order {
		if o == r {
			t.order[i] = nil
			t.holes++
			break
		}
	}
	// Compact once holes dominate so scans stay proportional to live rows.
	if t.holes > 64 && t.holes*2 > len(t.order) {
		live := make([]*row, 0, len(t.byID))
		for _, o := range t.order {
			if o != nil {
				live = append(live, o)
			}
		}
		t.order, t.holes = live, 0
	}
}

// rows returns the live rows in insertion order.
func (t *table) rows() []*row {
	out := make([]*row, 0, len(t.byID))
	for _, r := range t.order {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// indexed returns the rows whose field equals one of vs case-insensitively
// (strings.EqualFold), each once, in insertion order; false when the field
// has no index.
func (t *table) indexed(field string, vs ...string) ([]*row, bool) {
	idx, ok := t.indexes[field]
	if !ok {
		return nil, false
	}
	var out []*row
	for _, v := range vs {
		out = append(out, idx[foldKey(v)]...)
	}
	if len(out) > 1 {
		slices.SortFunc(out, func(a, b *row) int { return cmpSeq(a, b) })
		out = slices.Compact(out)
	}
	return out, true
}

func cmpSeq(a, b *row) int {
	switch {
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

// lookup returns the rows whose indexed field equals v case-insensitively,
// in insertion order, and false when the field has no index.
func (t *table) lookup(field, v string) ([]*row, bool) {
	return t.indexed(field, v)
}

func (t *table) nextNumber() string {
	n := fmt.Sprintf("%s%07d", t.def.numberPrefix, t.counter)
	t.counter++
	return n
}

// newSysID returns 32 lowercase hex characters (§4.1).
func newSysID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

func copyFields(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
