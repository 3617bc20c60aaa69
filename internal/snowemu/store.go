package snowemu

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// Record is a copy of one stored row: field name → raw value, every value a
// string exactly as the Table API returns it with sysparm_display_value=false.
type Record map[string]string

// row is one stored record. Its fields map is replaced, never mutated, once
// the row is visible, so a reader holding the read lock sees a consistent
// record.
type row struct {
	fields map[string]string
}

// table is the in-memory store of one table. Rows are kept in insertion
// order (the default order of a list without ORDERBY) and indexed by sys_id;
// a few fields that integrations look records up by have secondary indexes
// so correlation_id lookups stay fast with 100,000 records.
type table struct {
	def     *tableDef
	byID    map[string]*row
	order   []*row // insertion order; deleted rows become nil until compaction
	holes   int
	counter int                                     // next number
	indexes map[string]map[string]map[*row]struct{} // field → lower(value) → rows
}

// indexedFields are the fields with a secondary index, per table.
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
		indexes: make(map[string]map[string]map[*row]struct{}),
	}
	for _, f := range indexedFields[def.name] {
		t.indexes[f] = make(map[string]map[*row]struct{})
	}
	return t
}

func (t *table) index(r *row) {
	for f, idx := range t.indexes {
		k := strings.ToLower(r.fields[f])
		if k == "" {
			continue
		}
		set := idx[k]
		if set == nil {
			set = make(map[*row]struct{}, 1)
			idx[k] = set
		}
		set[r] = struct{}{}
	}
}

func (t *table) unindex(r *row) {
	for f, idx := range t.indexes {
		k := strings.ToLower(r.fields[f])
		if set := idx[k]; set != nil {
			delete(set, r)
			if len(set) == 0 {
				delete(idx, k)
			}
		}
	}
}

func (t *table) add(r *row) {
	t.byID[r.fields["sys_id"]] = r
	t.order = append(t.order, r)
	t.index(r)
}

// replace swaps the fields of r, keeping the indexes in step.
func (t *table) replace(r *row, fields map[string]string) {
	t.unindex(r)
	r.fields = fields
	t.index(r)
}

func (t *table) remove(r *row) {
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

// lookup returns the rows whose indexed field equals v case-insensitively,
// and false when the field has no index.
func (t *table) lookup(field, v string) ([]*row, bool) {
	idx, ok := t.indexes[field]
	if !ok {
		return nil, false
	}
	set := idx[strings.ToLower(v)]
	out := make([]*row, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	// Keep insertion order so results do not depend on map iteration.
	if len(out) > 1 {
		pos := make(map[*row]int, len(out))
		for i, r := range t.order {
			if _, ok := set[r]; ok && r != nil {
				pos[r] = i
			}
		}
		sortRows(out, func(a, b *row) int { return pos[a] - pos[b] })
	}
	return out, true
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
