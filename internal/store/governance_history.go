package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// The governance report's daily counts from history (docs/reports.md
// defines each number), the daily snapshots that store them, and the daily
// series read from either.
//
// governanceFromHistory is the one definition of every daily number. It
// reads the assessments in ID order, a chunk at a time, with their status
// changes and assignments (the due date changes, few, are loaded first),
// and turns each finding's history into intervals of time: unhealthy, and
// assigned on time or overdue. Day D counts an interval when its sample
// instant t_D (the day's last microsecond, or asOf for asOf's own day) lies
// inside it; since t_D grows with D, an interval covers a run of days, added
// to per-key difference arrays in O(1). Memory is the per-key per-day
// counters and one chunk of rows, whatever the number of assessments.

// Times in the history are µs since the epoch (timeArg); forever ends an
// interval that has not ended.
const (
	microsPerDay = int64(dayLength / time.Microsecond)
	forever      = math.MaxInt64
)

// historyChunk is how many assessments one round of the pass reads.
const historyChunk = 5000

// microsDay is the UTC day holding the instant us (µs since the epoch).
func microsDay(us int64) day {
	d := us / microsPerDay
	if us%microsPerDay < 0 {
		d--
	}
	return day(d)
}

// govHistory is what governanceFromHistory computed: per key and day of
// [from, to], the day's counts.
type govHistory struct {
	from, to day
	// owner: the selection named an owner, so the finding columns are zero.
	owner bool
	keys  []govKey
	accs  []*govAcc // by key index, as keys
}

// govAcc holds one key's counters by day offset from govHistory.from. During
// the pass unhealthy, onTime and overdue are difference arrays (one slot
// more than days); finish turns them into counts.
type govAcc struct {
	unhealthy, onTime, overdue, completed, newly []int32
}

func newGovAcc(days int) *govAcc {
	buf := make([]int32, 5*(days+1))
	n := days + 1
	return &govAcc{unhealthy: buf[:n:n], onTime: buf[n : 2*n : 2*n], overdue: buf[2*n : 3*n : 3*n],
		completed: buf[3*n : 4*n : 4*n], newly: buf[4*n:]}
}

func (h *govHistory) days() int { return int(h.to-h.from) + 1 }

// finish turns the difference arrays into counts.
func (h *govHistory) finish() {
	for _, a := range h.accs {
		for _, arr := range [][]int32{a.unhealthy, a.onTime, a.overdue} {
			for i := 1; i < len(arr); i++ {
				arr[i] += arr[i-1]
			}
		}
	}
}

// counts returns key k's counts on day d (within [from, to]).
func (h *govHistory) counts(k int, d day) govCounts {
	a, i := h.accs[k], int(d-h.from)
	c := govCounts{
		Unhealthy: int(a.unhealthy[i]),
		OnTime:    int(a.onTime[i]),
		Overdue:   int(a.overdue[i]),
		Completed: int(a.completed[i]),
		New:       int(a.newly[i]),
	}
	c.Assigned = c.OnTime + c.Overdue
	if !h.owner {
		c.Unassigned = c.Unhealthy - c.Assigned
	}
	return c
}

// total returns the sum over every key of day d's counts.
func (h *govHistory) total(d day) govCounts {
	var c govCounts
	for k := range h.keys {
		c.add(h.counts(k, d))
	}
	return c
}

// govSpan is an interval of time [s, e) in µs.
type govSpan struct{ s, e int64 }

// govFinding, govChange and govAssignment are the rows the pass reads;
// statuses only matter as Unhealthy or not.
type govFinding struct {
	id        int64
	key       int
	firstSeen int64
	unhealthy bool
}

type govChange struct {
	assessment, at int64
	from, to       bool
}

type govAssignment struct {
	assessment, id      int64
	created, ended, due int64 // ended: forever while active
	completed           bool
}

// govDueChange is one change of an assignment's due date: at at, it
// stopped being from.
type govDueChange struct{ at, from int64 }

// govPass is the state of one governanceFromHistory pass.
type govPass struct {
	h     *govHistory
	asOf  int64 // µs
	dues  map[int64][]govDueChange
	spans []govSpan
	// Key lookups without allocating per row: the snapshot level by the
	// resource ID's first three segments (levelPrefix), the cloud by its
	// bytes, the key by level, cloud and severity.
	levels map[string]string
	clouds map[string]string
	keyIdx map[govKey]int
}

// levelPrefix returns normID up to its fourth '/' (its first three
// segments), on which its snapshot level alone depends: the only summary
// level of four segments is a resource group, which snapshots skip.
func levelPrefix(normID []byte) []byte {
	n := 0
	for i, c := range normID {
		if c == '/' {
			if n++; n == 4 {
				return normID[:i]
			}
		}
	}
	return normID
}

func (p *govPass) keyOf(normID, cloud []byte, severity int) int {
	level, ok := p.levels[string(levelPrefix(normID))]
	if !ok {
		prefix := string(levelPrefix(normID))
		level = snapshotLevel(prefix)
		p.levels[prefix] = level
	}
	c, ok := p.clouds[string(cloud)]
	if !ok {
		c = string(cloud)
		p.clouds[c] = c
	}
	k := govKey{Level: level, Cloud: c, Severity: severity}
	i, ok := p.keyIdx[k]
	if !ok {
		i = len(p.h.keys)
		p.keyIdx[k] = i
		p.h.keys = append(p.h.keys, k)
		p.h.accs = append(p.h.accs, newGovAcc(p.h.days()))
	}
	return i
}

// span adds 1 to arr over the days whose sample instant lies in [s, e).
func (p *govPass) span(arr []int32, s, e int64) {
	if s > p.asOf || s >= e {
		return
	}
	h := p.h
	lo, hi := microsDay(s), h.to+1
	if e <= p.asOf {
		// The day holding e samples at or after e (its end, or asOf), so
		// the interval covers the days before it.
		hi = microsDay(e)
	}
	lo, hi = max(lo, h.from), min(hi, h.to+1)
	if lo < hi {
		arr[lo-h.from]++
		arr[hi-h.from]--
	}
}

// point adds 1 to arr on the day holding us, an event at or before asOf.
func (p *govPass) point(arr []int32, us int64) {
	if us > p.asOf {
		return
	}
	if d := microsDay(us); d >= p.h.from && d <= p.h.to {
		arr[d-p.h.from]++
	}
}

// finding counts one finding: f with its status changes (by time) and
// assignments.
func (p *govPass) finding(f govFinding, changes []govChange, assignments []govAssignment) {
	if f.firstSeen > p.asOf {
		return // it does not exist yet, nor do its assignments
	}
	acc := p.h.accs[f.key]
	owner := p.h.owner

	// Its status at first_seen: the last change at or before it, else the
	// first change's from status, else the current status.
	unhealthy := f.unhealthy
	if len(changes) > 0 {
		unhealthy = changes[0].from
	}
	i := 0
	for ; i < len(changes) && changes[i].at <= f.firstSeen; i++ {
		unhealthy = changes[i].to
	}
	p.spans = p.spans[:0]
	start := f.firstSeen
	lastNew := day(math.MinInt64)
	if unhealthy && !owner {
		p.point(acc.newly, f.firstSeen)
		lastNew = microsDay(f.firstSeen)
	}
	for ; i < len(changes) && changes[i].at <= p.asOf; i++ {
		c := changes[i]
		if c.to == unhealthy {
			continue
		}
		if c.to {
			start = c.at
			if d := microsDay(c.at); d != lastNew && !owner {
				p.point(acc.newly, c.at)
				lastNew = d
			}
		} else {
			p.spans = append(p.spans, govSpan{start, c.at})
		}
		unhealthy = c.to
	}
	if unhealthy {
		p.spans = append(p.spans, govSpan{start, forever})
	}
	if !owner {
		for _, s := range p.spans {
			p.span(acc.unhealthy, s.s, s.e)
		}
	}

	for _, g := range assignments {
		if g.completed {
			p.point(acc.completed, g.ended)
		}
		if g.created > p.asOf || len(p.spans) == 0 {
			continue
		}
		// The due date over the assignment's life: each due date change
		// at c.at ends a stretch whose due date was c.from; the last
		// stretch has the current one.
		segStart := g.created
		for _, c := range p.dues[g.id] {
			if c.at > segStart {
				p.assigned(acc, segStart, min(c.at, g.ended), c.from)
				segStart = c.at
			}
			if segStart >= g.ended {
				break
			}
		}
		p.assigned(acc, segStart, g.ended, g.due)
	}
}

// assigned counts the stretch [s, e) of an assignment due at due, where it
// overlaps the finding's unhealthy spans: on time until due, overdue after.
func (p *govPass) assigned(acc *govAcc, s, e, due int64) {
	if s >= e {
		return
	}
	for _, u := range p.spans {
		lo, hi := max(s, u.s), min(e, u.e)
		if lo >= hi {
			continue
		}
		// Overdue at t: t > due.
		p.span(acc.onTime, lo, min(hi, due+1))
		p.span(acc.overdue, max(lo, due+1), hi)
	}
}

// governanceFromHistory computes the daily counts of sel for the days
// [from, to] (those after asOf's day are left out), sampling each day at its
// last microsecond, or at asOf for asOf's own day.
func (db *DB) governanceFromHistory(ctx context.Context, sel govSelection, from, to day, asOf time.Time) (*govHistory, error) {
	if a := dayOf(asOf); to > a {
		to = a
	}
	h := &govHistory{from: from, to: to, owner: sel.Owner != ""}
	if to < from {
		return h, nil
	}
	if err := db.historyPass(ctx, sel, h, asOf); err != nil {
		return nil, fmt.Errorf("daily counts from history: %w", err)
	}
	h.finish()
	return h, nil
}

func (db *DB) historyPass(ctx context.Context, sel govSelection, h *govHistory, asOf time.Time) error {
	// One read transaction: the chunks see one state of the database
	// (PostgreSQL needs repeatable read for that; a SQLite read
	// transaction is a snapshot).
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect == dialectPostgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.read.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read only

	p := &govPass{h: h, asOf: asOf.UnixMicro(), levels: make(map[string]string),
		clouds: make(map[string]string), keyIdx: make(map[govKey]int)}
	if p.dues, err = db.dueChanges(ctx, tx); err != nil {
		return err
	}

	// The assessments: CROSS JOIN keeps SQLite walking assessments in ID
	// order (the keyset) and looking each resource up, rather than a
	// scope's resources first and a sort per chunk.
	where := []string{"a.id > ?", "res.id = a.resource_id"}
	var args []any
	if sel.Scope != "" {
		cond, cargs, err := scopeRange("res.norm_id", sel.Scope)
		if err != nil {
			return err
		}
		if cond != "" {
			where = append(where, cond)
			args = append(args, cargs...)
		}
	}
	if sel.Cloud != "" {
		where = append(where, "res.cloud = ?")
		args = append(args, string(sel.Cloud))
	}
	if sel.Severity != "" {
		where = append(where, "a.severity_rank = ?")
		args = append(args, sel.Severity.Rank())
	}
	owner := strings.ToLower(strings.TrimSpace(sel.Owner))
	if owner != "" {
		// The owner's assignments (assignment_owner) give the few
		// assessments to read.
		where = append(where, "a.id IN (SELECT o.assessment_id FROM assignment o WHERE o.owner_norm = ?)")
		args = append(args, owner)
	}
	findingsQ := db.bind(`SELECT a.id, res.norm_id, res.cloud, a.severity_rank, a.first_seen,
			CASE WHEN a.status = 'Unhealthy' THEN 1 ELSE 0 END
		FROM assessment a CROSS JOIN resource res WHERE ` + strings.Join(where, " AND ") + ` ORDER BY a.id LIMIT ?`)
	// A chunk's status changes and assignments: a range of assessment IDs
	// when the chunk holds most of its range (every assessment selected),
	// else the chunk's IDs, so that a narrow selection reads only its own.
	const changesQ = `SELECT assessment_id, at, CASE WHEN from_status = 'Unhealthy' THEN 1 ELSE 0 END,
			CASE WHEN to_status = 'Unhealthy' THEN 1 ELSE 0 END
		FROM assessment_status_change WHERE %s ORDER BY assessment_id, at, id`
	assignQ := `SELECT assessment_id, id, created_at, ended_at, due_date, CASE WHEN state = 'completed' THEN 1 ELSE 0 END
		FROM assignment WHERE %s`
	if owner != "" {
		assignQ += ` AND owner_norm = ?`
	}
	assignQ += ` ORDER BY assessment_id, id`

	var (
		findings    []govFinding
		changes     []govChange
		assignments []govAssignment
		after       int64
	)
	for {
		findings = findings[:0]
		err := eachRow(ctx, tx, findingsQ, append(append([]any{after}, args...), historyChunk), func(rows *sql.Rows) error {
			var f govFinding
			var norm, cloud sql.RawBytes
			var severity, unhealthy int
			if err := rows.Scan(&f.id, &norm, &cloud, &severity, &f.firstSeen, &unhealthy); err != nil {
				return err
			}
			f.key, f.unhealthy = p.keyOf(norm, cloud, severity), unhealthy == 1
			findings = append(findings, f)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read assessments: %w", err)
		}
		if len(findings) == 0 {
			return nil
		}
		lo, hi := findings[0].id, findings[len(findings)-1].id
		cond, cargs := "assessment_id >= ? AND assessment_id <= ?", []any{lo, hi}
		if hi-lo+1 > 2*int64(len(findings)) {
			cond, cargs = "assessment_id IN ("+placeholders(len(findings))+")", cargs[:0]
			for _, f := range findings {
				cargs = append(cargs, f.id)
			}
		}

		changes = changes[:0]
		if err := eachRow(ctx, tx, db.bind(fmt.Sprintf(changesQ, cond)), cargs, func(rows *sql.Rows) error {
			var c govChange
			var from, to int
			if err := rows.Scan(&c.assessment, &c.at, &from, &to); err != nil {
				return err
			}
			c.from, c.to = from == 1, to == 1
			changes = append(changes, c)
			return nil
		}); err != nil {
			return fmt.Errorf("read status changes: %w", err)
		}

		assignments = assignments[:0]
		if owner != "" {
			cargs = append(cargs, owner)
		}
		if err := eachRow(ctx, tx, db.bind(fmt.Sprintf(assignQ, cond)), cargs, func(rows *sql.Rows) error {
			var g govAssignment
			var ended sql.NullInt64
			var completed int
			if err := rows.Scan(&g.assessment, &g.id, &g.created, &ended, &g.due, &completed); err != nil {
				return err
			}
			g.ended, g.completed = forever, completed == 1
			if ended.Valid {
				g.ended = ended.Int64
			}
			assignments = append(assignments, g)
			return nil
		}); err != nil {
			return fmt.Errorf("read assignments: %w", err)
		}

		// Merge: all three are in assessment order; rows of assessments
		// the selection left out are skipped.
		ci, gi := 0, 0
		for _, f := range findings {
			for ci < len(changes) && changes[ci].assessment < f.id {
				ci++
			}
			cs := ci
			for ci < len(changes) && changes[ci].assessment == f.id {
				ci++
			}
			for gi < len(assignments) && assignments[gi].assessment < f.id {
				gi++
			}
			gs := gi
			for gi < len(assignments) && assignments[gi].assessment == f.id {
				gi++
			}
			p.finding(f, changes[cs:ci], assignments[gs:gi])
		}
		if len(findings) < historyChunk {
			return nil
		}
		after = hi
	}
}

// dueChanges loads every change of an assignment's due date, by assignment
// and in time order: the "updated" events whose changes hold "due_date"
// (times as changeTime writes them).
func (db *DB) dueChanges(ctx context.Context, tx *sql.Tx) (map[int64][]govDueChange, error) {
	dues := make(map[int64][]govDueChange)
	err := eachRow(ctx, tx, db.bind(`SELECT assignment_id, id, at, changes FROM assignment_event
		WHERE action = ? AND changes LIKE ? ORDER BY assignment_id, at, id`),
		[]any{steward.ActionUpdated, `%"due_date"%`}, func(rows *sql.Rows) error {
			var id, eventID, at int64
			var raw []byte
			if err := rows.Scan(&id, &eventID, &at, &raw); err != nil {
				return err
			}
			var changes map[string]struct{ From string }
			if err := json.Unmarshal(raw, &changes); err != nil {
				return fmt.Errorf("decode changes of event %d: %w", eventID, err)
			}
			c, ok := changes["due_date"]
			if !ok {
				return nil
			}
			from, err := time.Parse(time.RFC3339Nano, c.From)
			if err != nil {
				// One unreadable event must not stop every report: the
				// assignment keeps its later due date over that stretch.
				db.logger.WarnContext(ctx, "governance report: skipping a due date change", slog.Int64("event", eventID), slog.Any("err", err))
				return nil
			}
			dues[id] = append(dues[id], govDueChange{at: at, from: from.UnixMicro()})
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read due date changes: %w", err)
	}
	return dues, nil
}

// eachRow runs query in tx and calls scan for each row.
func eachRow(ctx context.Context, tx *sql.Tx, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	return scanRows(rows, scan)
}

// Snapshot sources (governance_day.source).
const (
	sourceDaily    = "daily"
	sourceBackfill = "backfill"
)

// snapshotChunkRows bounds the rows one snapshot transaction writes (it
// writes whole days, at least one).
const snapshotChunkRows = 5000

// provisionalMinAge is how old today's provisional counts must be before a
// change of history refreshes them: at most one history pass a minute
// however busy the estate.
const provisionalMinAge = time.Minute

// historyMark is the high-water mark of the history the daily counts are
// computed from: the last assessment, status change and assignment event.
// Any change a count could show moves one of them (an assignment's every
// change adds an event).
func (db *DB) historyMark(ctx context.Context) (string, error) {
	var a, c, e int64
	if err := db.read.QueryRowContext(ctx, `SELECT
			(SELECT COALESCE(MAX(id), 0) FROM assessment),
			(SELECT COALESCE(MAX(id), 0) FROM assessment_status_change),
			(SELECT COALESCE(MAX(id), 0) FROM assignment_event)`).Scan(&a, &c, &e); err != nil {
		return "", fmt.Errorf("read history mark: %w", err)
	}
	return fmt.Sprintf("%d/%d/%d", a, c, e), nil
}

// TakeGovernanceSnapshots takes the daily snapshots due at now: the ended
// days not final yet, each exactly once across calls and processes, then
// today's provisional counts when they are missing, older than refresh, or
// older than a minute while the history has changed since.
//
// The days to finalize run from the day after the last final one through
// yesterday; on the first run (no final day) they start at the earliest
// assessment's (or provisional snapshot's) day, at most
// steward.MaxReportDays back: a backfill from history, as is a run after a
// gap of more than a day. They are computed in one pass and written a few
// days per transaction, each day claimed (governance_day made final) in
// the transaction that writes its rows: a day another process claimed
// first is skipped.
func (db *DB) TakeGovernanceSnapshots(ctx context.Context, now time.Time, refresh time.Duration) (GovernanceSnapshots, error) {
	out, err := db.takeGovernanceSnapshots(ctx, now, refresh)
	if err != nil {
		return out, fmt.Errorf("governance snapshots: %w", err)
	}
	return out, nil
}

func (db *DB) takeGovernanceSnapshots(ctx context.Context, now time.Time, refresh time.Duration) (GovernanceSnapshots, error) {
	var out GovernanceSnapshots
	today := dayOf(now)
	yesterday := today - 1

	var lastFinal, earliest, todayFinal, todayTaken sql.NullInt64
	var todayMark sql.NullString
	if err := db.read.QueryRowContext(ctx, db.bind(`SELECT
			(SELECT MAX(day) FROM governance_day WHERE final = 1),
			(SELECT MIN(day) FROM governance_day),
			(SELECT final FROM governance_day WHERE day = ?),
			(SELECT taken_at FROM governance_day WHERE day = ?),
			(SELECT history_mark FROM governance_day WHERE day = ?)`), int64(today), int64(today), int64(today)).
		Scan(&lastFinal, &earliest, &todayFinal, &todayTaken, &todayMark); err != nil {
		return out, fmt.Errorf("read snapshot days: %w", err)
	}
	// Read before the history it marks, so that a change made during the
	// pass below shows as a change next time.
	mark, err := db.historyMark(ctx)
	if err != nil {
		return out, err
	}
	first := yesterday + 1 // none to finalize
	if lastFinal.Valid {
		first = day(lastFinal.Int64) + 1
	} else {
		var firstSeen sql.NullInt64
		if err := db.read.QueryRowContext(ctx, `SELECT MIN(first_seen) FROM assessment`).Scan(&firstSeen); err != nil {
			return out, fmt.Errorf("read earliest assessment: %w", err)
		}
		if firstSeen.Valid {
			first = min(first, microsDay(firstSeen.Int64))
		}
		if earliest.Valid {
			first = min(first, day(earliest.Int64))
		}
		first = max(first, today-steward.MaxReportDays)
	}
	finalize := first <= yesterday
	// Today's counts are refreshed when they are older than refresh (due
	// dates pass with time alone), or when the history changed since they
	// were taken and they are older than provisionalMinAge.
	stale := now.Add(-refresh).UnixMicro()
	if todayMark.String != mark {
		stale = max(stale, now.Add(-provisionalMinAge).UnixMicro())
	}
	provisional := !todayFinal.Valid || todayFinal.Int64 == 0 && todayTaken.Int64 < stale
	if !finalize && !provisional {
		return out, nil
	}
	from, to := first, yesterday
	if !finalize {
		from = today
	}
	if provisional {
		to = today
	}
	h, err := db.governanceFromHistory(ctx, govSelection{}, from, to, now)
	if err != nil {
		return out, err
	}
	ids, err := db.snapshotScopeIDs(ctx, h.keys)
	if err != nil {
		return out, err
	}
	// Rows are written in key order: the same days give the same
	// statements whichever process writes them.
	order := make([]int, len(h.keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return compareGovKeys(h.keys[a], h.keys[b]) })
	takenAt := db.timeArg(now)

	if finalize {
		source := sourceDaily
		if !lastFinal.Valid || first < yesterday {
			source, out.Backfilled = sourceBackfill, true
		}
		for d := first; d <= yesterday; {
			// One transaction writes whole days up to about
			// snapshotChunkRows rows.
			end, rows := d, 0
			for ; end <= yesterday && (end == d || rows < snapshotChunkRows); end++ {
				rows += h.nonZero(order, end)
			}
			err := db.WithTx(ctx, func(tx *Tx) error {
				for cur := d; cur < end; cur++ {
					claimed, err := tx.claimSnapshotDay(ctx, cur, source, takenAt)
					if err != nil {
						return err
					}
					if !claimed {
						continue
					}
					n, err := tx.writeSnapshotDay(ctx, h, order, ids, cur)
					if err != nil {
						return err
					}
					out.Finalized++
					out.Rows += n
				}
				return nil
			})
			if err != nil {
				return GovernanceSnapshots{}, err
			}
			d = end
		}
	}

	if provisional {
		err := db.WithTx(ctx, func(tx *Tx) error {
			// Conditional on it still being provisional and stale: a
			// process that refreshed (or finalized) it meanwhile wins.
			res, err := tx.tx.ExecContext(ctx, db.bind(`INSERT INTO governance_day (day, final, source, taken_at, history_mark) VALUES (?, 0, ?, ?, ?)
				ON CONFLICT (day) DO UPDATE SET taken_at = excluded.taken_at, history_mark = excluded.history_mark
				WHERE governance_day.final = 0 AND governance_day.taken_at < ?`), int64(today), sourceDaily, takenAt, mark, stale)
			if err != nil {
				return fmt.Errorf("claim today's snapshot: %w", mapError(err))
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("claim today's snapshot: %w", err)
			}
			if n == 0 {
				return nil
			}
			rows, err := tx.writeSnapshotDay(ctx, h, order, ids, today)
			if err != nil {
				return err
			}
			out.Provisional = true
			out.Rows += rows
			return nil
		})
		if err != nil {
			return GovernanceSnapshots{}, err
		}
	}
	return out, nil
}

func compareGovKeys(a, b govKey) int {
	return cmp.Or(strings.Compare(a.Level, b.Level), strings.Compare(a.Cloud, b.Cloud), cmp.Compare(a.Severity, b.Severity))
}

// nonZero is how many keys have counts on day d.
func (h *govHistory) nonZero(order []int, d day) int {
	n := 0
	for _, k := range order {
		if !h.counts(k, d).zero() {
			n++
		}
	}
	return n
}

// claimSnapshotDay makes day d final unless it is already: it reports
// whether this transaction took it. On PostgreSQL a second process
// claiming at once waits for the first's transaction, then gets false.
func (tx *Tx) claimSnapshotDay(ctx context.Context, d day, source string, takenAt any) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, tx.db.bind(`INSERT INTO governance_day (day, final, source, taken_at) VALUES (?, 1, ?, ?)
		ON CONFLICT (day) DO UPDATE SET final = 1, source = excluded.source, taken_at = excluded.taken_at
		WHERE governance_day.final = 0`), int64(d), source, takenAt)
	if err != nil {
		return false, fmt.Errorf("claim snapshot of %s: %w", d, mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim snapshot of %s: %w", d, err)
	}
	return n == 1, nil
}

// writeSnapshotDay replaces day d's snapshot rows with h's non-zero counts
// and their rollups, and returns how many level rows it wrote.
func (tx *Tx) writeSnapshotDay(ctx context.Context, h *govHistory, order []int, ids map[string]int64, d day) (int, error) {
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`DELETE FROM governance_snapshot WHERE day = ?`), int64(d)); err != nil {
		return 0, fmt.Errorf("clear snapshot of %s: %w", d, err)
	}
	const cols = 11
	var args []any
	n := 0
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		stmt, err := tx.stmt(ctx, `INSERT INTO governance_snapshot (day, scope_id, cloud, severity_rank,
			unhealthy, assigned, unassigned, on_time, overdue, completed, new_unhealthy) VALUES `+rowsPlaceholders(len(args)/cols, cols))
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("write snapshot of %s: %w", d, mapError(err))
		}
		args = args[:0]
		return nil
	}
	add := func(scopeID int64, key govKey, c govCounts) error {
		args = append(args, int64(d), scopeID, key.Cloud, key.Severity,
			c.Unhealthy, c.Assigned, c.Unassigned, c.OnTime, c.Overdue, c.Completed, c.New)
		if len(args) == insertRows*cols {
			return flush()
		}
		return nil
	}
	type rollupKey struct {
		scopeID  int64
		cloud    string
		severity int
	}
	rollups := map[rollupKey]*govCounts{}
	var rollupOrder []rollupKey
	rollUp := func(scopeID int64, key govKey, c govCounts) {
		rk := rollupKey{scopeID, key.Cloud, key.Severity}
		if rollups[rk] == nil {
			rollups[rk] = &govCounts{}
			rollupOrder = append(rollupOrder, rk)
		}
		rollups[rk].add(c)
	}
	for _, k := range order {
		c := h.counts(k, d)
		if c.zero() {
			continue
		}
		key := h.keys[k]
		if err := add(ids[key.Level], key, c); err != nil {
			return 0, err
		}
		n++
		rollUp(snapshotAll, key, c)
		for _, root := range rollupLevels(key.Level) {
			rollUp(rollupScopeID(ids[root]), key, c)
		}
	}
	slices.SortFunc(rollupOrder, func(a, b rollupKey) int {
		return cmp.Or(cmp.Compare(a.scopeID, b.scopeID), strings.Compare(a.cloud, b.cloud), cmp.Compare(a.severity, b.severity))
	})
	for _, rk := range rollupOrder {
		if err := add(rk.scopeID, govKey{Cloud: rk.cloud, Severity: rk.severity}, *rollups[rk]); err != nil {
			return 0, err
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return n, nil
}

// snapshotScopeIDs returns the summary_scope IDs of the keys' levels ("" is
// 0), creating the missing ones. It takes the summary lock to create them,
// as the summaries' recompute, which creates them too, does.
func (db *DB) snapshotScopeIDs(ctx context.Context, keys []govKey) (map[string]int64, error) {
	ids := map[string]int64{"": 0}
	var levels []string
	for _, k := range keys {
		for _, l := range append(rollupLevels(k.Level), k.Level) {
			if _, ok := ids[l]; !ok {
				ids[l] = 0
				levels = append(levels, l)
			}
		}
	}
	if err := readIn(ctx, db, summaryScopesQuery, levels, scanSummaryScopeIDs(ids)); err != nil {
		return nil, fmt.Errorf("find summary scopes: %w", err)
	}
	var missing []string
	for _, l := range levels {
		if ids[l] == 0 {
			missing = append(missing, l)
		}
	}
	if len(missing) == 0 {
		return ids, nil
	}
	err := db.WithTx(ctx, func(tx *Tx) error {
		if err := tx.advisoryLock(ctx, summaryLockKey); err != nil {
			return err
		}
		return tx.summaryScopeIDs(ctx, missing, ids)
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// GovernanceDaily answers the daily series of the governance report for f
// at now (the days of [f.From, f.To] up to today, oldest first) and where
// it came from: the snapshots when they cover the selection (everything or
// a snapshot level, no owner: the days with a governance_day row), the
// history otherwise (computed for the request, every day of the period,
// today's sampled at now). Today's counts are marked provisional.
func (db *DB) GovernanceDaily(ctx context.Context, f steward.GovernanceFilter, now time.Time) ([]steward.GovernanceDay, string, error) {
	if f.Scope != "" {
		if err := f.Scope.Validate(); err != nil {
			return nil, "", err
		}
	}
	from, to := dayOf(f.From), dayOf(f.To)
	if level, ok := snapshotScope(f.Scope); ok && f.Owner == "" {
		days, err := db.snapshotSeries(ctx, level, f, from, to)
		if err != nil {
			return nil, "", fmt.Errorf("daily series from snapshots: %w", err)
		}
		return days, steward.DailyFromSnapshots, nil
	}
	h, err := db.governanceFromHistory(ctx, govSelection{Scope: f.Scope, Cloud: f.Cloud, Severity: f.Severity, Owner: f.Owner}, from, to, now)
	if err != nil {
		return nil, "", err
	}
	today := dayOf(now)
	days := make([]steward.GovernanceDay, 0, max(h.days(), 0))
	for d := h.from; d <= h.to; d++ {
		days = append(days, governanceDay(d, h.total(d), d == today))
	}
	return days, steward.DailyFromHistory, nil
}

func governanceDay(d day, c govCounts, provisional bool) steward.GovernanceDay {
	return steward.GovernanceDay{Date: d.String(), Unhealthy: c.Unhealthy, Assigned: c.Assigned, Unassigned: c.Unassigned,
		OnTime: c.OnTime, Overdue: c.Overdue, Completed: c.Completed, New: c.New, Provisional: provisional}
}

// snapshotSeries sums the snapshot rows of level ("" for everything), f's
// cloud and severity per day of [from, to], over the days with a
// governance_day row (a day with no matching rows is an all-zero day). It
// reads one scope_id: the level's own rows for an account level, the
// rollup rows for everything or a root (snapshotAll, rollupScopeID), so a
// day costs at most a row per cloud and severity whatever the estate holds.
func (db *DB) snapshotSeries(ctx context.Context, level string, f steward.GovernanceFilter, from, to day) ([]steward.GovernanceDay, error) {
	var filters []string
	var fargs []any
	if f.Cloud != "" {
		filters = append(filters, " AND s.cloud = ?")
		fargs = append(fargs, string(f.Cloud))
	}
	if f.Severity != "" {
		filters = append(filters, " AND s.severity_rank = ?")
		fargs = append(fargs, f.Severity.Rank())
	}
	scopeID, err := db.snapshotSeriesScope(ctx, level)
	if err != nil {
		return nil, err
	}
	// Each day's rows of one scope_id are a seek of governance_snapshot's
	// key (day, scope_id, …) from the range of governance_day.
	args := append(append([]any{scopeID}, fargs...), int64(from), int64(to))
	sum := func(col string) string { return "CAST(COALESCE(SUM(s." + col + "), 0) AS BIGINT)" }
	q := `SELECT d.day, d.final, ` + sum("unhealthy") + `, ` + sum("assigned") + `, ` + sum("unassigned") + `, ` +
		sum("on_time") + `, ` + sum("overdue") + `, ` + sum("completed") + `, ` + sum("new_unhealthy") + `
		FROM governance_day d LEFT JOIN governance_snapshot s ON s.day = d.day AND s.scope_id = ?` +
		strings.Join(filters, "") + `
		WHERE d.day >= ? AND d.day <= ? GROUP BY d.day, d.final ORDER BY d.day`
	days := []steward.GovernanceDay{}
	err = db.eachRead(ctx, q, args, func(rows *sql.Rows) error {
		var d, final int64
		var c govCounts
		if err := rows.Scan(&d, &final, &c.Unhealthy, &c.Assigned, &c.Unassigned, &c.OnTime, &c.Overdue, &c.Completed, &c.New); err != nil {
			return err
		}
		days = append(days, governanceDay(day(d), c, final == 0))
		return nil
	})
	return days, err
}
