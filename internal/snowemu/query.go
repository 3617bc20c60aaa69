package snowemu

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// operators of the encoded query language (§3.2), longest first so the
// parser takes the longest match at a position ("NOT IN" before "IN", ">="
// before ">", "ISNOTEMPTY" before "ISEMPTY", "NOT LIKE" before "LIKE").
var operators = func() []string {
	ops := []string{
		"=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "LIKE", "NOT LIKE", "STARTSWITH", "ENDSWITH",
		"ISEMPTY", "ISNOTEMPTY", "ANYTHING", "EMPTYSTRING", "BETWEEN", "SAMEAS", "NSAMEAS", "ON", "NOTON",
		"RELATIVEGT", "RELATIVELT", "DYNAMIC", "DATEPART", "MORETHAN", "LESSTHAN",
		"VALCHANGES", "CHANGESFROM", "CHANGESTO",
	}
	slices.SortStableFunc(ops, func(a, b string) int { return len(b) - len(a) })
	return ops
}()

// meDynamicFilter is the sys_id of the base system's "Me" dynamic filter,
// the one DYNAMIC value list filters commonly produce.
const meDynamicFilter = "90d1921e5f510100a9ad2572f2b477fe"

// term is one compiled condition.
type term struct {
	path    []*fieldDef // one field, or reference + field of the referenced table (dot-walk)
	op      string
	value   string   // normalised value (dates as yyyy-MM-dd HH:mm:ss)
	values  []string // IN / NOT IN
	lo, hi  string   // BETWEEN, ON, RELATIVE*
	num     float64
	lonum   float64
	hinum   float64
	numOK   bool
	other   *fieldDef // SAMEAS / NSAMEAS
	useDisp bool      // compare against the reference's display value
}

type orderBy struct {
	path []*fieldDef
	desc bool
}

// query is a compiled encoded query: an OR (^NQ) of groups, each an AND of
// clauses, each clause an OR (^OR) of terms.
type query struct {
	groups  [][][]*term
	orders  []orderBy
	invalid bool // an invalid term was seen
}

// queryCtx carries what evaluating a query needs.
type queryCtx struct {
	e    *Emulator
	def  *tableDef
	user *actor
	now  time.Time
	fold bool // case-insensitive string matching
}

// splitQuery splits on "^", treating "^^" as a literal caret in a value.
func splitQuery(s string) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '^' {
			if i+1 < len(s) && s[i+1] == '^' {
				b.WriteByte('^')
				i++
				continue
			}
			out = append(out, b.String())
			b.Reset()
			continue
		}
		b.WriteByte(s[i])
	}
	return append(out, b.String())
}

// parseQuery compiles an encoded query (§3.1). Invalid terms are dropped and
// flagged; the caller decides per §3.5 what that means.
func (c *queryCtx) parseQuery(s string) *query {
	q := &query{}
	group := [][]*term{}
	flush := func() {
		q.groups = append(q.groups, group)
		group = [][]*term{}
	}
	for _, tok := range splitQuery(s) {
		switch {
		case tok == "" || tok == "EQ":
			continue
		case strings.HasPrefix(tok, "ORDERBYDESC"):
			if p := c.resolvePath(tok[len("ORDERBYDESC"):]); p != nil {
				q.orders = append(q.orders, orderBy{path: p, desc: true})
			}
			continue
		case strings.HasPrefix(tok, "ORDERBY"):
			if p := c.resolvePath(tok[len("ORDERBY"):]); p != nil {
				q.orders = append(q.orders, orderBy{path: p})
			}
			continue
		case strings.HasPrefix(tok, "GROUPBY"):
			continue
		case strings.HasPrefix(tok, "NQ"):
			flush()
			tok = tok[2:]
			if tok == "" {
				continue
			}
		}
		or := false
		if strings.HasPrefix(tok, "OR") {
			or, tok = true, tok[2:]
		}
		t := c.parseTerm(tok)
		if t == nil {
			q.invalid = true
			continue
		}
		// ^OR binds to the immediately preceding term (§3.1).
		if or && len(group) > 0 {
			group[len(group)-1] = append(group[len(group)-1], t)
		} else {
			group = append(group, []*term{t})
		}
	}
	flush()
	return q
}

// resolvePath resolves "field" or "ref.field" (one-level dot-walk).
func (c *queryCtx) resolvePath(name string) []*fieldDef {
	first, rest, dotted := strings.Cut(name, ".")
	f := c.def.field(first)
	if f == nil {
		return nil
	}
	if !dotted {
		return []*fieldDef{f}
	}
	if f.kind != kindReference {
		return nil
	}
	for _, tn := range refTables(f.refTable) {
		if td := c.e.schema[tn]; td != nil {
			if g := td.field(rest); g != nil {
				return []*fieldDef{f, g}
			}
		}
	}
	return nil
}

// parseTerm compiles "<field><OP><value>". The field ends where the first
// operator token begins (§3.2).
func (c *queryCtx) parseTerm(s string) *term {
	for i := 1; i < len(s); i++ {
		for _, op := range operators {
			if strings.HasPrefix(s[i:], op) {
				path := c.resolvePath(s[:i])
				if path == nil {
					return nil
				}
				return c.compile(path, op, s[i+len(op):])
			}
		}
	}
	return nil
}

func (c *queryCtx) compile(path []*fieldDef, op, raw string) *term {
	t := &term{path: path, op: op}
	f := path[len(path)-1]
	switch op {
	case "ISEMPTY", "ISNOTEMPTY", "ANYTHING", "EMPTYSTRING":
		return t
	case "IN", "NOT IN":
		for _, v := range strings.Split(raw, ",") {
			t.values = append(t.values, c.normalize(f, c.evalJS(v)))
		}
		return t
	case "BETWEEN":
		lo, hi, ok := strings.Cut(raw, "@")
		if !ok {
			return nil
		}
		t.lo, t.hi = c.normalize(f, c.evalJS(lo)), c.normalize(f, c.evalJS(hi))
		t.lonum, t.numOK = parseNum(t.lo)
		var ok2 bool
		t.hinum, ok2 = parseNum(t.hi)
		t.numOK = t.numOK && ok2
		return t
	case "ON", "NOTON":
		parts := strings.Split(raw, "@")
		switch len(parts) {
		case 3:
			t.lo, t.hi = c.normalize(f, c.evalJS(parts[1])), c.normalize(f, c.evalJS(parts[2]))
		case 1:
			d := c.normalize(f, c.evalJS(parts[0]))
			if len(d) < 10 {
				return nil
			}
			t.lo, t.hi = d[:10]+" 00:00:00", d[:10]+" 23:59:59"
		default:
			return nil
		}
		return t
	case "RELATIVEGT", "RELATIVELT":
		// "@hour@ago@1": a point relative to now.
		parts := strings.Split(strings.TrimPrefix(raw, "@"), "@")
		if len(parts) != 3 {
			return nil
		}
		n, err := strconv.Atoi(parts[2])
		if err != nil {
			return nil
		}
		if parts[1] == "ago" {
			n = -n
		}
		var d time.Time
		switch parts[0] {
		case "minute":
			d = c.now.Add(time.Duration(n) * time.Minute)
		case "hour":
			d = c.now.Add(time.Duration(n) * time.Hour)
		case "day":
			d = c.now.AddDate(0, 0, n)
		case "week":
			d = c.now.AddDate(0, 0, 7*n)
		case "month":
			d = c.now.AddDate(0, n, 0)
		case "year":
			d = c.now.AddDate(n, 0, 0)
		default:
			return nil
		}
		t.value = d.UTC().Format(timeLayout)
		return t
	case "SAMEAS", "NSAMEAS":
		t.other = c.def.field(raw)
		if t.other == nil {
			return nil
		}
		return t
	case "DYNAMIC":
		if raw != meDynamicFilter {
			return nil
		}
		t.op, t.value = "=", c.user.sysID
		return t
	case "=", "!=", "<", "<=", ">", ">=", "LIKE", "NOT LIKE", "STARTSWITH", "ENDSWITH":
		t.value = c.normalize(f, c.evalJS(raw))
		t.num, t.numOK = parseNum(t.value)
		if f.kind == kindReference && (op == "LIKE" || op == "NOT LIKE" || op == "STARTSWITH" || op == "ENDSWITH") {
			t.useDisp = true // §3.6: text operators on references match the display value
		}
		return t
	}
	return nil // DATEPART, MORETHAN, LESSTHAN, VAL/CHANGES*: not supported
}

func parseNum(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseFloat(s, 64)
	return n, err == nil
}

// normalize turns date literals into the stored format so chronological
// comparison is a string comparison.
func (c *queryCtx) normalize(f *fieldDef, v string) string {
	if f.kind != kindDateTime || v == "" {
		return v
	}
	if t, err := time.Parse(timeLayout, v); err == nil {
		return t.Format(timeLayout)
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t.Format(timeLayout)
	}
	return v
}

var jsCall = regexp.MustCompile(`^javascript:\s*gs\.(\w+)\((.*)\)\s*;?\s*$`)

// evalJS computes the javascript: helpers of §3.3 in the session user's
// time zone; other values are returned as given.
func (c *queryCtx) evalJS(v string) string {
	if !strings.HasPrefix(v, "javascript:") {
		return v
	}
	m := jsCall.FindStringSubmatch(v)
	if m == nil {
		return v
	}
	var args []string
	if strings.TrimSpace(m[2]) != "" {
		for _, a := range strings.Split(m[2], ",") {
			args = append(args, strings.Trim(strings.TrimSpace(a), `'"`))
		}
	}
	loc := time.UTC
	if c.user != nil && c.user.loc != nil {
		loc = c.user.loc
	}
	now := c.now.In(loc)
	day := func(n int) time.Time {
		y, mo, d := now.Date()
		return time.Date(y, mo, d-n, 0, 0, 0, 0, loc)
	}
	arg := func(i int) int {
		if i >= len(args) {
			return 0
		}
		n, _ := strconv.Atoi(args[i])
		return n
	}
	out := func(t time.Time) string { return t.UTC().Format(timeLayout) }
	switch m[1] {
	case "dateGenerate":
		if len(args) < 1 {
			return v
		}
		tm := "00:00:00"
		if len(args) > 1 {
			switch args[1] {
			case "start":
			case "end":
				tm = "23:59:59"
			default:
				tm = args[1]
			}
		}
		t, err := time.ParseInLocation(timeLayout, args[0]+" "+tm, loc)
		if err != nil {
			return v
		}
		return out(t)
	case "daysAgo":
		return out(now.AddDate(0, 0, -arg(0)))
	case "daysAgoStart":
		return out(day(arg(0)))
	case "daysAgoEnd":
		return out(day(arg(0)).Add(24*time.Hour - time.Second))
	case "beginningOfToday":
		return out(day(0))
	case "endOfToday":
		return out(day(0).Add(24*time.Hour - time.Second))
	case "beginningOfYesterday":
		return out(day(1))
	case "endOfYesterday":
		return out(day(1).Add(24*time.Hour - time.Second))
	case "hoursAgo":
		return out(now.Add(-time.Duration(arg(0)) * time.Hour))
	case "minutesAgo":
		return out(now.Add(-time.Duration(arg(0)) * time.Minute))
	case "nowDateTime":
		return out(now)
	case "getUserID":
		if c.user != nil {
			return c.user.sysID
		}
	case "getUserName":
		if c.user != nil {
			return c.user.userName
		}
	}
	return v
}

// value returns the raw value of a (possibly dot-walked) path on f.
func (c *queryCtx) value(fields map[string]string, path []*fieldDef) string {
	v := fields[path[0].name]
	if len(path) == 1 || v == "" {
		if len(path) > 1 {
			return ""
		}
		return v
	}
	target := c.e.refRowLocked(path[0].refTable, v)
	if target == nil {
		return ""
	}
	return target.fields[path[1].name]
}

func isNumeric(f *fieldDef) bool {
	return f.kind == kindInteger || (f.kind == kindChoice && f.numeric)
}

func (c *queryCtx) eq(a, b string) bool {
	if c.fold {
		return strings.EqualFold(a, b)
	}
	return a == b
}

func (c *queryCtx) lower(s string) string {
	if c.fold {
		return strings.ToLower(s)
	}
	return s
}

// compareValues orders two values of field f: numeric for numbers,
// chronological (= lexical on the stored format) for dates, lexical for the
// rest (§3.2).
func compareValues(f *fieldDef, a, b string, fold bool) int {
	if isNumeric(f) {
		x, okx := parseNum(a)
		y, oky := parseNum(b)
		switch {
		case okx && oky:
			return cmp.Compare(x, y)
		case !okx && oky:
			return -1
		case okx && !oky:
			return 1
		}
	}
	if fold {
		a, b = strings.ToLower(a), strings.ToLower(b)
	}
	return strings.Compare(a, b)
}

func (c *queryCtx) match(t *term, fields map[string]string) bool {
	f := t.path[len(t.path)-1]
	v := c.value(fields, t.path)
	switch t.op {
	case "ANYTHING":
		return true
	case "ISEMPTY", "EMPTYSTRING":
		return v == ""
	case "ISNOTEMPTY":
		return v != ""
	case "SAMEAS":
		// Empty values are NULL in the database and never equal (§3.6 fidelity).
		return v != "" && c.eq(v, fields[t.other.name])
	case "NSAMEAS":
		return !c.eq(v, fields[t.other.name])
	case "IN", "NOT IN":
		in := slices.ContainsFunc(t.values, func(x string) bool { return c.eqTyped(f, v, x) })
		return in == (t.op == "IN")
	case "=":
		return c.eqTyped(f, v, t.value)
	case "!=":
		return !c.eqTyped(f, v, t.value)
	case "<", "<=", ">", ">=":
		if v == "" {
			return false
		}
		var r int
		if isNumeric(f) {
			n, ok := parseNum(v)
			if !ok || !t.numOK {
				return false
			}
			r = cmp.Compare(n, t.num)
		} else {
			r = compareValues(f, v, t.value, c.fold)
		}
		switch t.op {
		case "<":
			return r < 0
		case "<=":
			return r <= 0
		case ">":
			return r > 0
		default:
			return r >= 0
		}
	case "BETWEEN", "ON", "NOTON":
		if v == "" {
			return t.op == "NOTON"
		}
		var in bool
		if isNumeric(f) && t.numOK {
			n, ok := parseNum(v)
			in = ok && n >= t.lonum && n <= t.hinum
		} else {
			in = compareValues(f, v, t.lo, c.fold) >= 0 && compareValues(f, v, t.hi, c.fold) <= 0
		}
		return in == (t.op != "NOTON")
	case "RELATIVEGT":
		return v != "" && v > t.value
	case "RELATIVELT":
		return v != "" && v < t.value
	}
	// Text operators.
	if t.useDisp {
		v = c.e.displayLocked(f, v)
	}
	lv, lq := c.lower(v), c.lower(t.value)
	switch t.op {
	case "LIKE":
		return strings.Contains(lv, lq)
	case "NOT LIKE":
		return !strings.Contains(lv, lq)
	case "STARTSWITH":
		return strings.HasPrefix(lv, lq)
	case "ENDSWITH":
		return strings.HasSuffix(lv, lq)
	}
	return false
}

func (c *queryCtx) eqTyped(f *fieldDef, v, want string) bool {
	if isNumeric(f) {
		x, okx := parseNum(v)
		y, oky := parseNum(want)
		if okx && oky {
			return x == y
		}
	}
	return c.eq(v, want)
}

// matches evaluates the whole query on one record.
func (c *queryCtx) matches(q *query, fields map[string]string) bool {
	for _, g := range q.groups {
		if c.matchGroup(g, fields) {
			return true
		}
	}
	return len(q.groups) == 0
}

func (c *queryCtx) matchGroup(g [][]*term, fields map[string]string) bool {
	for _, clause := range g {
		ok := false
		for _, t := range clause {
			if c.match(t, fields) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// run returns the matching rows, ordered. It plans the query (plan.go):
// the result is always exactly what scan returns.
func (c *queryCtx) run(t *table, q *query) []*row {
	if q.invalid && c.e.opts.InvalidQueryReturnsNoRows {
		return nil // §3.5 glide.invalid_query.returns_no_rows=true
	}
	if rs, ok := c.planned(t, q); ok {
		return rs
	}
	return c.scan(t, q)
}

// scan is the reference evaluation: every live row in insertion order is
// tested against the whole query, then the matches are stably sorted by
// the ORDERBY keys.
func (c *queryCtx) scan(t *table, q *query) []*row {
	return c.filterSort(t.rows(), q)
}

// filterSort keeps the rows of rs (in insertion order) that match q and
// sorts them stably by q's ORDERBY keys.
func (c *queryCtx) filterSort(rs []*row, q *query) []*row {
	var out []*row
	for _, r := range rs {
		if c.matches(q, r.fields) {
			out = append(out, r)
		}
	}
	if len(q.orders) > 0 {
		slices.SortStableFunc(out, c.orderCmp(q.orders))
	}
	return out
}

// orderCmp compares two rows by ORDERBY keys.
func (c *queryCtx) orderCmp(orders []orderBy) func(a, b *row) int {
	return func(a, b *row) int {
		for _, o := range orders {
			f := o.path[len(o.path)-1]
			va, vb := c.value(a.fields, o.path), c.value(b.fields, o.path)
			if f.kind == kindReference {
				// References sort by display value, as list columns do.
				va, vb = c.e.displayLocked(f, va), c.e.displayLocked(f, vb)
			}
			r := compareValues(f, va, vb, c.fold)
			if o.desc {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return 0
	}
}

// refRowLocked finds the referenced row in the reference's table(s).
func (e *Emulator) refRowLocked(refTable, id string) *row {
	for _, tn := range refTables(refTable) {
		if t := e.tables[tn]; t != nil {
			if r := t.byID[id]; r != nil {
				return r
			}
		}
	}
	return nil
}

// displayLocked returns the display value of a stored value (§2.4).
func (e *Emulator) displayLocked(f *fieldDef, v string) string {
	switch f.kind {
	case kindReference:
		if v == "" {
			return ""
		}
		r := e.refRowLocked(f.refTable, v)
		if r == nil {
			if f.name == "sys_domain" {
				return v // the "global" domain is not a stored group
			}
			return ""
		}
		for _, tn := range refTables(f.refTable) {
			if t := e.tables[tn]; t != nil && t.byID[v] == r {
				return r.fields[t.def.displayField]
			}
		}
		return ""
	case kindChoice:
		return f.choiceLabel(v)
	case kindJournal:
		return "" // [uncertain] §2.4; history lives in sys_journal_field
	}
	return v
}
