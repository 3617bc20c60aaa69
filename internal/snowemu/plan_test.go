package snowemu

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestFoldKeyMatchesEqualFold: the index key groups exactly the strings
// strings.EqualFold groups, including non-ASCII fold partners of ASCII
// letters and invalid UTF-8.
func TestFoldKeyMatchesEqualFold(t *testing.T) {
	alphabet := []string{"a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "σ", "Σ", "ς", "ß", "ẞ", "1", "-", "\xff", "\xfe", "\ufffd", "é", "É"}
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		var b strings.Builder
		for range rng.IntN(4) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 200_000 {
		a, b := word(), word()
		if (foldKey(a) == foldKey(b)) != strings.EqualFold(a, b) {
			t.Fatalf("foldKey(%q)=%q foldKey(%q)=%q, EqualFold=%v", a, foldKey(a), b, foldKey(b), strings.EqualFold(a, b))
		}
	}
}

// TestPlannedQueriesMatchScan runs randomized queries through the planner
// (index candidates, sorted views, range bounds) and through the plain scan,
// between random writes, and requires the same rows in the same order.
func TestPlannedQueriesMatchScan(t *testing.T) {
	for _, caseSensitive := range []bool{false, true} {
		t.Run(fmt.Sprintf("caseSensitive=%v", caseSensitive), func(t *testing.T) {
			testPlannedQueries(t, caseSensitive)
		})
	}
}

func testPlannedQueries(t *testing.T, caseSensitive bool) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var clock time.Time
	rng := rand.New(rand.NewPCG(7, uint64(len(fmt.Sprint(caseSensitive)))))
	tick := func() { clock = base.Add(time.Duration(rng.IntN(6)) * time.Second) } // few distinct times: ties
	tick()
	e := New(Options{Clock: func() time.Time { return clock }, CaseSensitiveMatching: caseSensitive}, nil)
	defer e.Close()

	corr := []string{"", "steward-1", "STEWARD-1", "steward-2", "\u017fteward-3", "steward-3", "Kx", "\u212ax", "other-9", "steward-1,x"}
	words := []string{"disk full", "Disk", "network", "cpu", "", "scan", "\u017fcan", "SCAN"}
	users := []string{"", "fred.luddy", "beth.anglin", "abel.tuter"}
	var ids []string // every sys_id ever created (deleted ones too)
	create := func() {
		tick()
		rec := Record{
			"correlation_id":    corr[rng.IntN(len(corr))],
			"short_description": words[rng.IntN(len(words))],
			"impact":            fmt.Sprint(1 + rng.IntN(3)),
			"urgency":           fmt.Sprint(1 + rng.IntN(3)),
		}
		if u := users[rng.IntN(len(users))]; u != "" {
			id, err := e.UserID(u)
			if err != nil {
				t.Fatal(err)
			}
			rec["caller_id"] = id
		}
		switch rng.IntN(6) {
		case 0:
			rec["sys_id"] = fmt.Sprintf("ABCDEF%026d", len(ids)) // client-supplied, upper case
		case 1:
			rec["sys_id"] = fmt.Sprintf("\u212a%d", len(ids))
		}
		r, err := e.Create(TableIncident, rec, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r["sys_id"])
	}
	for range 300 {
		create()
	}
	write := func() {
		switch rng.IntN(4) {
		case 0:
			create()
		case 1:
			if err := e.DeleteRecord(TableIncident, ids[rng.IntN(len(ids))], ""); err != nil && !strings.Contains(err.Error(), "not found") {
				t.Logf("delete: %v", err)
			}
		default:
			tick()
			_, _ = e.Update(TableIncident, ids[rng.IntN(len(ids))], Record{
				"correlation_id":    corr[rng.IntN(len(corr))],
				"short_description": words[rng.IntN(len(words))] + fmt.Sprint(rng.IntN(3)),
			}, "")
		}
	}

	caseVariant := func(s string) string {
		switch rng.IntN(4) {
		case 0:
			return strings.ToUpper(s)
		case 1:
			return strings.ToLower(s)
		}
		return s
	}
	anyID := func() string {
		if rng.IntN(10) == 0 {
			return "0123456789abcdef0123456789abcdef" // unknown
		}
		return caseVariant(ids[rng.IntN(len(ids))])
	}
	ts := func() string { return base.Add(time.Duration(rng.IntN(7)-1) * time.Second).Format(timeLayout) }
	number := func() string { return fmt.Sprintf("INC%07d", 10001+rng.IntN(len(ids)+5)) }
	list := func(n int, gen func() string) string {
		vs := make([]string, n)
		for i := range vs {
			vs[i] = gen()
		}
		if rng.IntN(15) == 0 {
			vs = append(vs, "") // an empty value in the list
		}
		return strings.Join(vs, ",")
	}
	genTerm := func() string {
		switch rng.IntN(20) {
		case 0, 1, 2:
			return "sys_idIN" + list(1+rng.IntN(12), anyID)
		case 3:
			return "sys_id=" + anyID()
		case 4, 5:
			return "correlation_idIN" + list(1+rng.IntN(4), func() string { return caseVariant(corr[rng.IntN(len(corr))]) })
		case 6:
			return "correlation_id=" + caseVariant(corr[rng.IntN(len(corr))])
		case 7:
			return "numberIN" + list(1+rng.IntN(5), number)
		case 8:
			return "number=" + strings.ToLower(number())
		case 9:
			return "sys_updated_on" + []string{">=", ">", "<", "<=", "=", "!="}[rng.IntN(6)] + ts()
		case 10:
			return "sys_updated_onBETWEEN" + ts() + "@" + ts()
		case 11:
			return "sys_created_on" + []string{">=", "<", "="}[rng.IntN(3)] + ts()
		case 12:
			return "correlation_idSTARTSWITH" + caseVariant("steward")
		case 13:
			return "impact" + []string{"=", "IN", "!=", ">"}[rng.IntN(4)] + fmt.Sprint(1+rng.IntN(3))
		case 14:
			return "short_descriptionLIKE" + caseVariant("disk")
		case 15:
			return "sys_id>" + anyID()
		case 16:
			return "caller_id.user_name=" + users[rng.IntN(len(users))]
		case 17:
			if rng.IntN(2) == 0 {
				return "short_description=" + caseVariant(words[rng.IntN(len(words))])
			}
			return "correlation_idISEMPTY"
		case 18:
			return "sys_idNOT IN" + list(1+rng.IntN(5), anyID)
		default:
			return "bogus_field=1" // invalid term, dropped
		}
	}
	orders := []string{"ORDERBYsys_updated_on", "ORDERBYDESCsys_updated_on", "ORDERBYsys_id", "ORDERBYDESCsys_id",
		"ORDERBYnumber", "ORDERBYcorrelation_id", "ORDERBYDESCimpact", "ORDERBYcaller_id", "ORDERBYcaller_id.user_name", "ORDERBYsys_created_on", "ORDERBYshort_description", "ORDERBYDESCshort_description"}
	genQuery := func() string {
		var parts []string
		for range 1 + rng.IntN(4) {
			switch p := genTerm(); rng.IntN(10) {
			case 0, 1:
				if len(parts) > 0 {
					parts = append(parts, "OR"+p)
				} else {
					parts = append(parts, p)
				}
			case 2:
				parts = append(parts, "NQ"+p)
			default:
				parts = append(parts, p)
			}
		}
		for range rng.IntN(3) {
			parts = append(parts, orders[rng.IntN(len(orders))])
		}
		// The sync client's keyset query shape.
		if rng.IntN(8) == 0 {
			t1 := ts()
			parts = []string{"sys_updated_on>" + t1, "correlation_idSTARTSWITHsteward", "NQsys_updated_on=" + t1, "sys_id>" + anyID(),
				"correlation_idSTARTSWITHsteward", "ORDERBYsys_updated_on", "ORDERBYsys_id"}
		}
		return strings.Join(parts, "^")
	}

	a := e.actorByName("admin")
	planned := 0
	const queries = 6000
	for i := range queries {
		if rng.IntN(4) == 0 {
			write()
		}
		qs := genQuery()
		e.mu.RLock()
		c := &queryCtx{e: e, def: e.schema[TableIncident], user: a, now: clock, fold: !caseSensitive}
		tb := e.tables[TableIncident]
		q := c.parseQuery(qs)
		want := c.scan(tb, q)
		got, ok := c.planned(tb, q)
		e.mu.RUnlock()
		if !ok {
			continue
		}
		planned++
		if !sameRows(got, want) {
			t.Fatalf("query %d %q: planned %d rows %v, scan %d rows %v", i, qs, len(got), sysIDs(got), len(want), sysIDs(want))
		}
	}
	if planned < queries/3 {
		t.Fatalf("only %d of %d queries planned; the test no longer exercises the planner", planned, queries)
	}
	t.Logf("%d of %d queries planned, all identical to the scan", planned, queries)
}

func sameRows(a, b []*row) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sysIDs(rs []*row) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.fields["sys_id"]
	}
	return out
}
