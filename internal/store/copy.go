package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stewardhq/steward"
	"golang.org/x/sync/errgroup"
)

// This file moves an installation from SQLite to PostgreSQL (`steward
// migrate copy`): every row of Steward's tables and of River's job and
// queue tables, in primary-key order and in batches, then the identity
// sequences; and the verification that reads both databases back and
// compares them row by row.
//
// Steward's own tables hold the same representation in both stores
// (integers, Unix microsecond times, 0/1 booleans, TEXT for text and
// JSON), so their rows are copied value for value. River's schemas differ
// between its SQLite and PostgreSQL drivers (text timestamps against
// timestamptz, SQLite JSONB blobs against jsonb, a JSON array against
// text[] and jsonb[], an integer bitmask against bit(8), text against an
// enum); riverTables says how each column is converted.

// DefaultCopyBatch is the number of rows per transaction on the target:
// 10,000 copied fastest (BenchmarkCopy, docs/postgres.md).
const DefaultCopyBatch = 10000

// CopyOptions tune Copy.
type CopyOptions struct {
	// BatchRows is the number of rows written per transaction on the
	// target (DefaultCopyBatch when 0).
	BatchRows int
	// Progress, when set, is called when a table starts, after each
	// batch, and when the table is done.
	Progress func(CopyProgress)
	// insert writes Steward's tables with multi-row INSERTs instead of
	// COPY: only for measuring one against the other (copy_bench_test.go).
	insert bool
}

// CopyProgress is how far the copy of one table is.
type CopyProgress struct {
	Table       string
	Done, Total int64
	Elapsed     time.Duration // since this table started
	Finished    bool
}

// CopyReport is what Copy did.
type CopyReport struct {
	Tables []TableCopy
	// Skipped are River's tables that are not copied, with the reason.
	Skipped []SkippedTable
	// RescuedJobs is the number of jobs the source's stopped server left
	// running, copied as available (see riverTables).
	RescuedJobs int64
	// Sequences is the number of identity sequences set past the highest
	// copied ID.
	Sequences int
	// InstallationID is the source's, now the target's too.
	InstallationID string
	// Rebuild is the time taken to build the target's secondary indexes
	// and foreign keys again after the rows were in.
	Rebuild time.Duration
}

// TableCopy is one copied table.
type TableCopy struct {
	Table    string
	Rows     int64
	Duration time.Duration
}

// SkippedTable is a table of the source that is deliberately not copied.
type SkippedTable struct {
	Table  string
	Reason string
}

// TableCheck is the verification of one table.
type TableCheck struct {
	Table                  string
	SourceRows, TargetRows int64
	// SourceSum and TargetSum are SHA-256 over the table's rows in
	// primary-key order, each value in a canonical encoding (hex).
	SourceSum, TargetSum string
	// Difference describes the first row that differs, or "".
	Difference string
}

// Match reports whether the table is the same in both databases.
func (c TableCheck) Match() bool {
	return c.SourceRows == c.TargetRows && c.SourceSum == c.TargetSum && c.Difference == ""
}

// valueKind is how a column's values are converted and compared.
type valueKind int

const (
	kindInt   valueKind = iota // integers (and SQLite's 0/1 booleans)
	kindBool                   // a PostgreSQL boolean fed from 0/1
	kindFloat                  // REAL / double precision
	kindText                   // text
	kindBytes                  // BLOB / bytea
	kindJSON                   // JSON compared by meaning (River's jsonb)
	kindTime                   // a timestamp compared in Unix microseconds
)

// copyColumn is one column of a copied table.
type copyColumn struct {
	name string
	kind valueKind
	// srcExpr and dstExpr read the column from the source and the target
	// in a form the kind compares; param wraps the target's placeholder
	// (River's conversions) and is "" for a plain COPY.
	srcExpr, dstExpr, param string
}

// copyTable is one table to copy.
type copyTable struct {
	name  string
	cols  []copyColumn
	pk    []copyColumn // ORDER BY, in key order
	river bool         // River's: written with INSERTs that convert (riverTables)
	// replace: the target's rows are deleted first (meta holds the target's
	// own installation ID, which the source's replaces).
	replace bool
}

// riverSkipped names River's tables that are not copied, and why.
var riverSkipped = map[string]string{
	"river_migration":    "River's schema version: the target has its own, compared instead",
	"river_leader":       "the leader lease of the stopped server: the target's processes elect their own",
	"river_notification": "SQLite-only notification outbox (PostgreSQL uses LISTEN/NOTIFY); transient",
}

// riverTables are the River tables that are copied, with how each column
// is read on each side and written to PostgreSQL. River's SQLite driver
// writes times as UTC text ("2006-01-02 15:04:05.000") and JSON as SQLite
// JSONB blobs (json() reads them back as text).
//
// Jobs the source's server left running (it was stopped, perhaps
// crashed) are copied as available: on SQLite the next `steward serve`
// would make them available at start (RescueOrphanedJobs), which
// PostgreSQL's processes do not do; River's rescuer would otherwise hold
// them for RescueStuckJobsAfter (15 minutes). Every job is idempotent.
var riverTables = map[string][]copyColumn{
	"river_job": {
		{name: "id", kind: kindInt, srcExpr: "id", dstExpr: "id", param: "%s"},
		{name: "args", kind: kindJSON, srcExpr: "json(args)", dstExpr: "args::text", param: "%s::jsonb"},
		{name: "attempt", kind: kindInt, srcExpr: "attempt", dstExpr: "attempt", param: "%s::smallint"},
		{name: "attempted_at", kind: kindTime, srcExpr: "attempted_at", dstExpr: "attempted_at", param: "%s::timestamptz"},
		{name: "attempted_by", kind: kindJSON, srcExpr: "json(attempted_by)", dstExpr: "array_to_json(attempted_by)::text",
			param: jsonArray("jsonb_array_elements_text")},
		{name: "created_at", kind: kindTime, srcExpr: "created_at", dstExpr: "created_at", param: "%s::timestamptz"},
		{name: "errors", kind: kindJSON, srcExpr: "json(errors)", dstExpr: "array_to_json(errors)::text",
			param: jsonArray("jsonb_array_elements")},
		{name: "finalized_at", kind: kindTime, srcExpr: "finalized_at", dstExpr: "finalized_at", param: "%s::timestamptz"},
		{name: "kind", kind: kindText, srcExpr: "kind", dstExpr: "kind", param: "%s"},
		{name: "max_attempts", kind: kindInt, srcExpr: "max_attempts", dstExpr: "max_attempts", param: "%s::smallint"},
		{name: "metadata", kind: kindJSON, srcExpr: "json(metadata)", dstExpr: "metadata::text", param: "%s::jsonb"},
		{name: "priority", kind: kindInt, srcExpr: "priority", dstExpr: "priority", param: "%s::smallint"},
		{name: "queue", kind: kindText, srcExpr: "queue", dstExpr: "queue", param: "%s"},
		{name: "state", kind: kindText, srcExpr: "CASE state WHEN 'running' THEN 'available' ELSE state END", dstExpr: "state::text",
			param: "%s::river_job_state"},
		{name: "scheduled_at", kind: kindTime, srcExpr: "scheduled_at", dstExpr: "scheduled_at", param: "%s::timestamptz"},
		{name: "tags", kind: kindJSON, srcExpr: "json(tags)", dstExpr: "array_to_json(tags)::text",
			param: jsonArray("jsonb_array_elements_text")},
		{name: "unique_key", kind: kindBytes, srcExpr: "unique_key", dstExpr: "unique_key", param: "%s::bytea"},
		// SQLite's bit i (1<<i) is PostgreSQL's bit(8) position 7-i, which
		// is what an integer cast to bit(8) gives.
		{name: "unique_states", kind: kindInt, srcExpr: "unique_states", dstExpr: "unique_states::integer", param: "%s::integer::bit(8)"},
	},
	"river_queue": {
		{name: "name", kind: kindText, srcExpr: "name", dstExpr: "name", param: "%s"},
		{name: "created_at", kind: kindTime, srcExpr: "created_at", dstExpr: "created_at", param: "%s::timestamptz"},
		{name: "metadata", kind: kindJSON, srcExpr: "json(metadata)", dstExpr: "metadata::text", param: "%s::jsonb"},
		{name: "paused_at", kind: kindTime, srcExpr: "paused_at", dstExpr: "paused_at", param: "%s::timestamptz"},
		{name: "updated_at", kind: kindTime, srcExpr: "updated_at", dstExpr: "updated_at", param: "%s::timestamptz"},
	},
}

// jsonArray is the parameter expression that turns a JSON array into a
// PostgreSQL array of its elements (text or jsonb, as elements says), in
// order; NULL stays NULL and [] becomes an empty array (array_agg of
// nothing would be NULL).
func jsonArray(elements string) string {
	return `CASE WHEN %[1]s::jsonb IS NULL THEN NULL ELSE coalesce((SELECT array_agg(e ORDER BY i) FROM ` + elements +
		`(%[1]s::jsonb) WITH ORDINALITY AS x (e, i)), '{}') END`
}

// notCopied are Steward tables that are compared but not copied:
// migrations create schema_migrations on the target.
var notCopied = map[string]bool{"schema_migrations": true}

func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// SchemaVersions are the Steward and River migrations applied to a database.
type SchemaVersions struct {
	Steward []int
	River   []int
}

// Latest is the highest Steward migration applied (0 when none).
func (v SchemaVersions) Latest() int {
	if len(v.Steward) == 0 {
		return 0
	}
	return v.Steward[len(v.Steward)-1]
}

// Versions reads the migrations applied to db.
func (db *DB) Versions(ctx context.Context) (SchemaVersions, error) {
	var v SchemaVersions
	var err error
	if v.Steward, err = readInts(ctx, db.read, `SELECT version FROM schema_migrations ORDER BY version`); err != nil {
		return v, fmt.Errorf("read schema_migrations: %w", err)
	}
	if v.River, err = readInts(ctx, db.read, `SELECT version FROM river_migration WHERE line = 'main' ORDER BY version`); err != nil {
		return v, fmt.Errorf("read river_migration: %w", err)
	}
	return v, nil
}

// SQLiteSchemaVersion is the highest Steward migration applied to the
// SQLite database url names, read without changing anything: 0 when the
// database has none. Errors: CodeNotFound when the file does not exist.
func SQLiteSchemaVersion(ctx context.Context, url string) (int, error) {
	path, _, err := parseURL(url)
	if err != nil {
		return 0, err
	}
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return 0, steward.Errorf(steward.CodeNotFound, "no SQLite database at %s", path)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	var exists int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	if exists == 0 {
		return 0, nil
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema_migrations of %s: %w", path, err)
	}
	return int(v.Int64), nil
}

func readInts(ctx context.Context, q querier, query string, args ...any) ([]int, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// CheckCopyable refuses a copy from src to dst that cannot be made: dst
// must be PostgreSQL and src SQLite, both at the same schema version,
// with dst empty (no Steward row but its own installation ID, no job) and
// no steward serve running on it. Errors: CodeInvalid, CodeConflict.
func CheckCopyable(ctx context.Context, src, dst *DB) error {
	if src.dialect != dialectSQLite {
		return steward.Errorf(steward.CodeInvalid, "the source must be a SQLite database, not %s", src.path)
	}
	if dst.dialect != dialectPostgres {
		return steward.Errorf(steward.CodeInvalid, "the target must be a PostgreSQL database (postgres://...), not %s", dst.path)
	}
	sv, err := src.Versions(ctx)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	dv, err := dst.Versions(ctx)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if !slices.Equal(sv.Steward, dv.Steward) {
		return steward.Errorf(steward.CodeConflict,
			"the source's schema (migrations %s) differs from the target's (%s): open both with the same steward version", versionList(sv.Steward), versionList(dv.Steward))
	}
	if !slices.Equal(sv.River, dv.River) {
		return steward.Errorf(steward.CodeConflict,
			"the source's job queue schema (River migrations %s) differs from the target's (%s): open both with the same steward version", versionList(sv.River), versionList(dv.River))
	}
	var leader string
	err = dst.read.QueryRowContext(ctx, `SELECT leader_id FROM river_leader WHERE expires_at > now() LIMIT 1`).Scan(&leader)
	if err == nil {
		return steward.Errorf(steward.CodeConflict, "a steward process is running on the target (job leader %s): stop every steward serve on %s first", leader, dst.path)
	} else if !isNoRows(err) {
		return fmt.Errorf("target: read river_leader: %w", err)
	}
	tables, err := tableNames(ctx, dst)
	if err != nil {
		return err
	}
	var busy []string
	for _, t := range tables {
		if notCopied[t] || (strings.HasPrefix(t, "river_") && t != "river_job") {
			continue
		}
		query := `SELECT count(*) FROM ` + quoteIdent(t)
		if t == "meta" {
			// Open wrote the target's own installation ID, which the
			// source's replaces.
			query += ` WHERE key <> '` + metaInstallationID + `'`
		}
		var n int64
		if err := dst.read.QueryRowContext(ctx, query).Scan(&n); err != nil {
			return fmt.Errorf("target: count %s: %w", t, err)
		}
		if n > 0 {
			busy = append(busy, fmt.Sprintf("%s (%d rows)", t, n))
		}
	}
	if len(busy) > 0 {
		return steward.Errorf(steward.CodeConflict, "the target %s already holds data: %s; copy into an empty database", dst.path, strings.Join(busy, ", "))
	}
	return nil
}

func versionList(v []int) string {
	if len(v) == 0 {
		return "none"
	}
	if len(v) > 1 && v[len(v)-1]-v[0] == len(v)-1 {
		return fmt.Sprintf("%04d-%04d", v[0], v[len(v)-1])
	}
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprintf("%04d", n)
	}
	return strings.Join(s, ",")
}

// tableNames lists db's tables (SQLite's own sqlite_* excluded), in
// creation order on SQLite and by name on PostgreSQL.
func tableNames(ctx context.Context, db *DB) ([]string, error) {
	query := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY rowid`
	if db.dialect == dialectPostgres {
		query = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	rows, err := db.read.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", db.path, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list tables of %s: %w", db.path, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// pgColumn is a column of the target.
type pgColumn struct {
	dataType string // information_schema's data_type
	nullable bool
}

// plan works out what to copy: the source's tables in creation order
// (the target's foreign keys are dropped while rows are copied, so the
// order need not follow them), each with its columns' kinds taken from the
// target's types. It fails when the schemas differ in a way a copy would
// lose data over.
func plan(ctx context.Context, src, dst *DB) ([]*copyTable, []SkippedTable, error) {
	srcTables, err := tableNames(ctx, src)
	if err != nil {
		return nil, nil, err
	}
	dstCols, err := pgColumns(ctx, dst)
	if err != nil {
		return nil, nil, err
	}
	var tables []*copyTable
	var skipped []SkippedTable
	for _, name := range srcTables {
		if notCopied[name] {
			continue
		}
		if reason, ok := riverSkipped[name]; ok {
			skipped = append(skipped, SkippedTable{Table: name, Reason: reason})
			continue
		}
		cols, ok := dstCols[name]
		if !ok {
			return nil, nil, steward.Errorf(steward.CodeConflict, "the target has no table %s: the schemas differ", name)
		}
		t, err := planTable(ctx, src, name, cols)
		if err != nil {
			return nil, nil, err
		}
		tables = append(tables, t)
	}
	return tables, skipped, nil
}

func planTable(ctx context.Context, src *DB, name string, dstCols map[string]pgColumn) (*copyTable, error) {
	t := &copyTable{name: name, replace: name == "meta" || name == "river_queue"}
	type srcCol struct {
		name string
		pk   int
	}
	rows, err := src.read.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info(?) ORDER BY cid`, name)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", name, err)
	}
	var scols []srcCol
	for rows.Next() {
		var c srcCol
		if err := rows.Scan(&c.name, &c.pk); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read columns of %s: %w", name, err)
		}
		scols = append(scols, c)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", name, err)
	}

	if river, ok := riverTables[name]; ok {
		t.river = true
		t.cols = river
		if len(scols) != len(river) {
			return nil, steward.Errorf(steward.CodeConflict, "River's table %s has %d columns in the source, %d expected: this steward version cannot copy it", name, len(scols), len(river))
		}
		for _, c := range scols {
			if _, ok := dstCols[c.name]; !ok || !slices.ContainsFunc(river, func(r copyColumn) bool { return r.name == c.name }) {
				return nil, steward.Errorf(steward.CodeConflict, "River's table %s has a column %s this steward version cannot copy", name, c.name)
			}
		}
	} else {
		for _, c := range scols {
			dc, ok := dstCols[c.name]
			if !ok {
				return nil, steward.Errorf(steward.CodeConflict, "the target's table %s has no column %s: the schemas differ", name, c.name)
			}
			kind, err := kindOf(dc.dataType)
			if err != nil {
				return nil, steward.Errorf(steward.CodeConflict, "column %s.%s: %s", name, c.name, err)
			}
			q := quoteIdent(c.name)
			t.cols = append(t.cols, copyColumn{name: c.name, kind: kind, srcExpr: q, dstExpr: q})
		}
		for col, dc := range dstCols {
			if !slices.ContainsFunc(scols, func(s srcCol) bool { return s.name == col }) && !dc.nullable {
				// Both are at the same migration version, so a column only
				// the target has is a translation that went wrong; a
				// nullable one is left NULL.
				return nil, steward.Errorf(steward.CodeConflict, "the target's table %s has a column %s the source lacks: the schemas differ", name, col)
			}
		}
	}
	// pragma's pk is the column's position in the primary key (0: not in it).
	pks := slices.DeleteFunc(slices.Clone(scols), func(c srcCol) bool { return c.pk == 0 })
	slices.SortFunc(pks, func(a, b srcCol) int { return a.pk - b.pk })
	if len(pks) == 0 {
		return nil, steward.Errorf(steward.CodeConflict, "table %s has no primary key: this steward version cannot copy it", name)
	}
	for _, p := range pks {
		i := slices.IndexFunc(t.cols, func(c copyColumn) bool { return c.name == p.name })
		t.pk = append(t.pk, t.cols[i])
	}
	return t, nil
}

func kindOf(pgType string) (valueKind, error) {
	switch pgType {
	case "smallint", "integer", "bigint":
		return kindInt, nil
	case "boolean":
		return kindBool, nil
	case "real", "double precision":
		return kindFloat, nil
	case "text", "character varying", "character":
		return kindText, nil
	case "bytea":
		return kindBytes, nil
	case "json", "jsonb":
		return kindJSON, nil
	case "timestamp with time zone", "timestamp without time zone":
		return kindTime, nil
	}
	return 0, fmt.Errorf("the target's type %s is not one a copy converts to", pgType)
}

func pgColumns(ctx context.Context, dst *DB) (map[string]map[string]pgColumn, error) {
	rows, err := dst.read.QueryContext(ctx, `SELECT table_name, column_name, data_type, is_nullable = 'YES'
		FROM information_schema.columns WHERE table_schema = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("read the target's columns: %w", err)
	}
	defer rows.Close()
	out := make(map[string]map[string]pgColumn)
	for rows.Next() {
		var table, col string
		var c pgColumn
		if err := rows.Scan(&table, &col, &c.dataType, &c.nullable); err != nil {
			return nil, fmt.Errorf("read the target's columns: %w", err)
		}
		if out[table] == nil {
			out[table] = make(map[string]pgColumn)
		}
		out[table][col] = c
	}
	return out, rows.Err()
}

func (t *copyTable) selectList(dst bool) string {
	exprs := make([]string, len(t.cols))
	for i, c := range t.cols {
		exprs[i] = c.srcExpr
		if dst {
			exprs[i] = c.dstExpr
		}
	}
	return strings.Join(exprs, ", ")
}

// orderBy is the primary-key order, the same on both sides: PostgreSQL
// compares text in byte order only with COLLATE "C" (SQLite's BINARY).
func (t *copyTable) orderBy(dst bool) string {
	keys := make([]string, len(t.pk))
	for i, c := range t.pk {
		keys[i] = c.srcExpr
		if dst {
			keys[i] = c.dstExpr
			if c.kind == kindText {
				keys[i] += ` COLLATE "C"`
			}
		}
	}
	return strings.Join(keys, ", ")
}

func (t *copyTable) columnNames() []string {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	return names
}

// Copy copies every row of src (SQLite) into dst (PostgreSQL), after
// CheckCopyable, table by table in primary-key order; each batch of rows
// is one transaction on dst.
//
// Like pg_restore, it loads the rows first and builds the target's
// secondary indexes and foreign keys afterwards: it drops them in the
// transaction of the first batch and creates them again at the end, which
// also validates every foreign key. That loads assessments 4 times faster
// than with the indexes and per-row foreign key checks in place
// (copy_bench_test.go). A copy that fails empties the target's tables and
// restores its indexes and foreign keys, so the target is as it was; only
// a copy killed mid-way leaves it partly filled, without them, and a second
// copy refuses it: drop and create the database again.
func Copy(ctx context.Context, src, dst *DB, opts CopyOptions) (*CopyReport, error) {
	if opts.BatchRows <= 0 {
		opts.BatchRows = DefaultCopyBatch
	}
	if err := CheckCopyable(ctx, src, dst); err != nil {
		return nil, err
	}
	tables, skipped, err := plan(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	report := &CopyReport{Skipped: skipped}
	if slices.ContainsFunc(tables, func(t *copyTable) bool { return t.name == "river_job" }) {
		if err := src.read.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE state = 'running'`).Scan(&report.RescuedJobs); err != nil {
			return nil, fmt.Errorf("count running jobs: %w", err)
		}
	}
	deferred, err := readDeferrable(ctx, dst)
	if err != nil {
		return nil, err
	}
	c := &copier{src: src, dst: dst, opts: opts, pending: deferred.drop()}
	for _, t := range tables {
		start := time.Now()
		n, err := c.copyRows(ctx, t)
		if err != nil {
			return report, c.undo(ctx, tables, deferred, fmt.Errorf("copy %s: %w", t.name, err))
		}
		report.Tables = append(report.Tables, TableCopy{Table: t.name, Rows: n, Duration: time.Since(start)})
	}
	if c.dropped {
		start := time.Now()
		if err := execLong(ctx, dst, deferred.create()); err != nil {
			return report, c.undo(ctx, tables, deferred, err)
		}
		report.Rebuild = time.Since(start)
	}
	if report.Sequences, err = setSequences(ctx, src, dst, tables); err != nil {
		return report, err
	}
	// The target's cached installation ID is the one Open made up.
	dst.installation.Store(nil)
	if report.InstallationID, err = dst.InstallationID(ctx); err != nil {
		return report, err
	}
	return report, nil
}

// deferrable are the target's secondary indexes (those that back no
// constraint) and foreign keys, built after the rows are in.
type deferrable struct {
	indexes     []schemaObject // name, CREATE INDEX statement
	foreignKeys []schemaObject // table, name, definition
}

type schemaObject struct{ table, name, def string }

func readDeferrable(ctx context.Context, dst *DB) (deferrable, error) {
	var d deferrable
	var err error
	d.indexes, err = readObjects(ctx, dst, `SELECT c.relname, ic.relname, pg_get_indexdef(i.indexrelid)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
		WHERE c.relnamespace = current_schema()::regnamespace
		AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY 1, 2`)
	if err != nil {
		return d, fmt.Errorf("read the target's indexes: %w", err)
	}
	d.foreignKeys, err = readObjects(ctx, dst, `SELECT cl.relname, c.conname, pg_get_constraintdef(c.oid)
		FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid
		WHERE c.contype = 'f' AND cl.relnamespace = current_schema()::regnamespace ORDER BY 1, 2`)
	if err != nil {
		return d, fmt.Errorf("read the target's foreign keys: %w", err)
	}
	return d, nil
}

func readObjects(ctx context.Context, db *DB, query string) ([]schemaObject, error) {
	rows, err := db.read.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []schemaObject
	for rows.Next() {
		var o schemaObject
		if err := rows.Scan(&o.table, &o.name, &o.def); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

func (d deferrable) drop() []string {
	var stmts []string
	for _, fk := range d.foreignKeys {
		stmts = append(stmts, `ALTER TABLE `+quoteIdent(fk.table)+` DROP CONSTRAINT `+quoteIdent(fk.name))
	}
	for _, ix := range d.indexes {
		stmts = append(stmts, `DROP INDEX `+quoteIdent(ix.name))
	}
	return stmts
}

func (d deferrable) create() []string {
	var stmts []string
	for _, ix := range d.indexes {
		stmts = append(stmts, ix.def)
	}
	for _, fk := range d.foreignKeys {
		stmts = append(stmts, `ALTER TABLE `+quoteIdent(fk.table)+` ADD CONSTRAINT `+quoteIdent(fk.name)+` `+fk.def)
	}
	return stmts
}

// execLong runs statements in one transaction without the pool's
// statement timeout: an index over millions of rows takes longer.
func execLong(ctx context.Context, db *DB, stmts []string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
		return mapError(err)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, mapError(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapError(err))
	}
	return nil
}

// copier writes the batches; pending holds the statements that drop the
// deferred indexes and foreign keys, run in the first batch's transaction
// so that the target never lacks them while it holds no row (a copy killed
// before that changed nothing; one killed after left rows, which a second
// copy refuses).
type copier struct {
	src, dst *DB
	opts     CopyOptions
	pending  []string
	dropped  bool
}

// undo empties the copied tables and restores the deferred indexes and
// foreign keys after a failed copy, and returns cause (with what undo
// could not do).
func (c *copier) undo(ctx context.Context, tables []*copyTable, d deferrable, cause error) error {
	ctx = context.WithoutCancel(ctx)
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = quoteIdent(t.name)
	}
	stmts := []string{`TRUNCATE ` + strings.Join(names, ", ") + ` RESTART IDENTITY`}
	if c.dropped {
		stmts = append(stmts, d.create()...)
	}
	if err := execLong(ctx, c.dst, stmts); err != nil {
		return fmt.Errorf("%w; emptying the target again failed too (%v): drop and create the target database before copying again", cause, err)
	}
	return fmt.Errorf("%w (the target was emptied again)", cause)
}

// copyRows streams t from src in primary-key order and writes it to dst in
// batches.
func (c *copier) copyRows(ctx context.Context, t *copyTable) (int64, error) {
	start := time.Now()
	var total int64
	if err := c.src.read.QueryRowContext(ctx, `SELECT count(*) FROM `+quoteIdent(t.name)).Scan(&total); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	report := func(done int64, finished bool) {
		if c.opts.Progress != nil {
			c.opts.Progress(CopyProgress{Table: t.name, Done: done, Total: total, Elapsed: time.Since(start), Finished: finished})
		}
	}
	report(0, false)
	if t.replace {
		if _, err := c.dst.write.ExecContext(ctx, `DELETE FROM `+quoteIdent(t.name)); err != nil {
			return 0, fmt.Errorf("empty the target's table: %w", mapError(err))
		}
	}
	conn, err := c.dst.write.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect to the target: %w", err)
	}
	defer conn.Close()

	// Reading the next batch from SQLite overlaps writing this one to
	// PostgreSQL: each takes a core.
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan [][]any, 1)
	g.Go(func() error {
		defer close(batches)
		return c.readBatches(gctx, t, batches)
	})
	var done int64
	g.Go(func() error {
		for batch := range batches {
			var err error
			if t.river || c.opts.insert {
				err = insertBatch(gctx, conn, t, c.pending, batch)
			} else {
				err = copyBatch(gctx, conn, t, c.pending, batch)
			}
			if err != nil {
				return err
			}
			if len(c.pending) > 0 {
				c.pending, c.dropped = nil, true
			}
			done += int64(len(batch))
			report(done, false)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return done, err
	}
	report(done, true)
	return done, nil
}

// readBatches reads t from the source in primary-key order, converts each
// row for the target and sends the rows in batches.
func (c *copier) readBatches(ctx context.Context, t *copyTable, out chan<- [][]any) error {
	rows, err := c.src.read.QueryContext(ctx, `SELECT `+t.selectList(false)+` FROM `+quoteIdent(t.name)+` ORDER BY `+t.orderBy(false))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	defer rows.Close()
	send := func(batch [][]any) error {
		select {
		case out <- batch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	batch := make([][]any, 0, c.opts.BatchRows)
	var n int64
	ptrs := make([]any, len(t.cols))
	for rows.Next() {
		n++
		vals := make([]any, len(t.cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		for i, col := range t.cols {
			v, err := toTarget(col.kind, vals[i])
			if err != nil {
				return fmt.Errorf("row %d, column %s: %w", n, col.name, err)
			}
			vals[i] = v
		}
		batch = append(batch, vals)
		if len(batch) == c.opts.BatchRows {
			if err := send(batch); err != nil {
				return err
			}
			batch = make([][]any, 0, c.opts.BatchRows)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if len(batch) > 0 {
		return send(batch)
	}
	return nil
}

// copyBatch writes rows with COPY in one transaction, after the prelude
// statements.
func copyBatch(ctx context.Context, conn *sql.Conn, t *copyTable, prelude []string, rows [][]any) error {
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return mapError(err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
		for _, s := range prelude {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, mapError(err))
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.columnNames(), pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("write: %w", mapError(err))
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", mapError(err))
		}
		return nil
	})
}

// insertBatch writes rows with multi-row INSERTs, whose placeholders carry
// each column's conversion (River's tables), in one transaction, after the
// prelude statements.
func insertBatch(ctx context.Context, conn *sql.Conn, t *copyTable, prelude []string, rows [][]any) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for _, s := range prelude {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, mapError(err))
		}
	}
	// PostgreSQL takes at most 65535 parameters per statement.
	per := max(1, 60000/len(t.cols))
	for len(rows) > 0 {
		n := min(per, len(rows))
		var b strings.Builder
		b.WriteString(`INSERT INTO ` + quoteIdent(t.name) + ` (` + strings.Join(t.columnNames(), ", ") + `) VALUES `)
		args := make([]any, 0, n*len(t.cols))
		for r := range n {
			if r > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for i, c := range t.cols {
				if i > 0 {
					b.WriteString(", ")
				}
				args = append(args, rows[r][i])
				param := c.param
				if param == "" {
					param = "%s"
				}
				fmt.Fprintf(&b, param, "$"+strconv.Itoa(len(args)))
			}
			b.WriteByte(')')
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("write: %w", mapError(err))
		}
		rows = rows[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapError(err))
	}
	return nil
}

// setSequences sets every identity or serial sequence of the copied tables
// past the highest copied ID, or past SQLite's AUTOINCREMENT high-water mark
// (sqlite_sequence: River's job IDs are never reused), whichever is higher.
func setSequences(ctx context.Context, src, dst *DB, tables []*copyTable) (int, error) {
	rows, err := dst.read.QueryContext(ctx, `SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name)
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL`)
	if err != nil {
		return 0, fmt.Errorf("read the target's sequences: %w", err)
	}
	type seq struct{ table, col, name string }
	var seqs []seq
	for rows.Next() {
		var s seq
		if err := rows.Scan(&s.table, &s.col, &s.name); err != nil {
			rows.Close()
			return 0, fmt.Errorf("read the target's sequences: %w", err)
		}
		seqs = append(seqs, s)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("read the target's sequences: %w", err)
	}
	highWater := make(map[string]int64)
	if hw, err := src.read.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`); err == nil {
		for hw.Next() {
			var name string
			var n int64
			if err := hw.Scan(&name, &n); err == nil {
				highWater[name] = n
			}
		}
		hw.Close()
	}
	n := 0
	for _, s := range seqs {
		if !slices.ContainsFunc(tables, func(t *copyTable) bool { return t.name == s.table }) {
			continue
		}
		var maxID sql.NullInt64
		if err := dst.read.QueryRowContext(ctx, `SELECT max(`+quoteIdent(s.col)+`) FROM `+quoteIdent(s.table)).Scan(&maxID); err != nil {
			return n, fmt.Errorf("read the highest %s.%s: %w", s.table, s.col, err)
		}
		next := max(maxID.Int64, highWater[s.table])
		var err error
		if next > 0 {
			_, err = dst.write.ExecContext(ctx, `SELECT setval($1, $2, true)`, s.name, next)
		} else {
			_, err = dst.write.ExecContext(ctx, `SELECT setval($1, 1, false)`, s.name)
		}
		if err != nil {
			return n, fmt.Errorf("set sequence %s: %w", s.name, mapError(err))
		}
		n++
	}
	return n, nil
}

// toTarget converts a value read from SQLite into what the target column
// of kind takes. SQLite's column affinity may hold an integer as text (a
// TEXT column given an integer), which converts exactly or not at all.
func toTarget(kind valueKind, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch kind {
	case kindInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return int64(x), nil
			}
		case string:
			if n, err := strconv.ParseInt(x, 10, 64); err == nil {
				return n, nil
			}
		case []byte:
			if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return n, nil
			}
		}
	case kindBool:
		if n, err := toTarget(kindInt, v); err == nil && (n == int64(0) || n == int64(1)) {
			return n == int64(1), nil
		}
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case kindFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case string:
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				return f, nil
			}
		}
	case kindText, kindJSON:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
	case kindBytes:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	case kindTime:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		case int64:
			return time.UnixMicro(x).UTC(), nil
		case string:
			return parseSQLiteTime(x)
		case []byte:
			return parseSQLiteTime(string(x))
		}
	}
	return nil, fmt.Errorf("cannot convert %T %v", v, v)
}

// parseSQLiteTime reads the UTC text times River's SQLite driver and
// SQLite's CURRENT_TIMESTAMP write.
func parseSQLiteTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot read time %q", s)
}

// Verify compares every copied table of src and dst row by row, in
// primary-key order, and returns one check per table plus the skipped
// ones. It reads both completely; nothing may write to either meanwhile.
func Verify(ctx context.Context, src, dst *DB) ([]TableCheck, error) {
	tables, _, err := plan(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(tables, func(a, b *copyTable) int { return strings.Compare(a.name, b.name) })
	checks := make([]TableCheck, 0, len(tables))
	for _, t := range tables {
		c, err := verifyTable(ctx, src, dst, t)
		if err != nil {
			return checks, fmt.Errorf("verify %s: %w", t.name, err)
		}
		checks = append(checks, c)
	}
	return checks, nil
}

// sideResult is what reading one side of a table found.
type sideResult struct {
	n   int64
	sum []byte
	err error
}

// streamTable reads one side of t in primary-key order and sends each
// row's canonical encoding, in chunks, until the end; it closes out.
func streamTable(ctx context.Context, db *DB, t *copyTable, dst bool, out chan<- [][]byte) (res sideResult) {
	defer close(out)
	// One read-only transaction, so that PostgreSQL's statement timeout
	// can be lifted for it: reading a large table takes longer.
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return sideResult{err: err}
	}
	defer tx.Rollback() //nolint:errcheck // read only
	if db.dialect == dialectPostgres {
		if _, err := tx.ExecContext(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return sideResult{err: err}
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+t.selectList(dst)+` FROM `+quoteIdent(t.name)+` ORDER BY `+t.orderBy(dst))
	if err != nil {
		return sideResult{err: err}
	}
	defer rows.Close()
	vals := make([]any, len(t.cols))
	ptrs := make([]any, len(t.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	sum := sha256.New()
	const chunkRows = 1024
	chunk := make([][]byte, 0, chunkRows)
	send := func() error {
		select {
		case out <- chunk:
			chunk = make([][]byte, 0, chunkRows)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return sideResult{err: err}
		}
		var row []byte
		for i, c := range t.cols {
			if row, err = canonical(row, c.kind, vals[i]); err != nil {
				return sideResult{err: fmt.Errorf("row %d, column %s: %w", res.n+1, c.name, err)}
			}
		}
		sum.Write(row)
		res.n++
		if chunk = append(chunk, row); len(chunk) == chunkRows {
			if err := send(); err != nil {
				return sideResult{err: err}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return sideResult{err: err}
	}
	if len(chunk) > 0 {
		if err := send(); err != nil {
			return sideResult{err: err}
		}
	}
	res.sum = sum.Sum(nil)
	return res
}

// verifyTable reads both sides of t at once, each in its own goroutine,
// and compares them row by row.
func verifyTable(ctx context.Context, src, dst *DB, t *copyTable) (TableCheck, error) {
	check := TableCheck{Table: t.name}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	schan, dchan := make(chan [][]byte, 4), make(chan [][]byte, 4)
	var sres, dres sideResult
	var wg sync.WaitGroup
	wg.Go(func() { sres = streamTable(ctx, src, t, false, schan) })
	wg.Go(func() { dres = streamTable(ctx, dst, t, true, dchan) })
	var sbuf, dbuf [][]byte
	next := func(ch <-chan [][]byte, buf *[][]byte) ([]byte, bool) {
		for len(*buf) == 0 {
			chunk, ok := <-ch
			if !ok {
				return nil, false
			}
			*buf = chunk
		}
		row := (*buf)[0]
		*buf = (*buf)[1:]
		return row, true
	}
	for {
		srow, sok := next(schan, &sbuf)
		drow, dok := next(dchan, &dbuf)
		if !sok && !dok {
			break
		}
		if check.Difference == "" {
			check.Difference = rowDifference(t, srow, drow, sok, dok)
		}
	}
	wg.Wait()
	if sres.err != nil {
		return check, fmt.Errorf("read source: %w", sres.err)
	}
	if dres.err != nil {
		return check, fmt.Errorf("read target: %w", dres.err)
	}
	check.SourceRows, check.TargetRows = sres.n, dres.n
	check.SourceSum, check.TargetSum = hex.EncodeToString(sres.sum), hex.EncodeToString(dres.sum)
	return check, nil
}

// rowDifference describes how two encoded rows differ, or "".
func rowDifference(t *copyTable, srow, drow []byte, sok, dok bool) string {
	switch {
	case sok && !dok:
		return fmt.Sprintf("row %s is missing from the target", keyOf(t, srow))
	case !sok && dok:
		return fmt.Sprintf("row %s is only in the target", keyOf(t, drow))
	case bytes.Equal(srow, drow):
		return ""
	}
	if sk, dk := keyOf(t, srow), keyOf(t, drow); sk != dk {
		return fmt.Sprintf("the target has row %s where the source has %s", dk, sk)
	}
	scols, dcols := splitCanonical(srow), splitCanonical(drow)
	for i, c := range t.cols {
		if i < len(scols) && i < len(dcols) && !bytes.Equal(scols[i], dcols[i]) {
			return fmt.Sprintf("row %s, column %s: source %s, target %s", keyOf(t, srow), c.name, showCanonical(scols[i]), showCanonical(dcols[i]))
		}
	}
	return fmt.Sprintf("row %s differs", keyOf(t, srow))
}

// keyOf shows the primary key of an encoded row: "(id=42)".
func keyOf(t *copyTable, row []byte) string {
	cols := splitCanonical(row)
	var parts []string
	for _, k := range t.pk {
		i := slices.IndexFunc(t.cols, func(c copyColumn) bool { return c.name == k.name })
		if i < len(cols) {
			parts = append(parts, k.name+"="+showCanonical(cols[i]))
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// splitCanonical splits an encoded row into its encoded values.
func splitCanonical(row []byte) [][]byte {
	var out [][]byte
	for len(row) > 0 {
		n := 1
		switch row[0] {
		case 'I', 'F':
			n = 9
		case 'S', 'B', 'J':
			l, w := binary.Uvarint(row[1:])
			if w <= 0 {
				return out
			}
			n = 1 + w + int(l)
		}
		if n > len(row) {
			return out
		}
		out = append(out, row[:n])
		row = row[n:]
	}
	return out
}

// showCanonical shows one encoded value for a difference message.
func showCanonical(v []byte) string {
	switch v[0] {
	case 'N':
		return "NULL"
	case 'I':
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(v[1:])), 10)
	case 'F':
		return strconv.FormatFloat(math.Float64frombits(binary.BigEndian.Uint64(v[1:])), 'g', -1, 64)
	}
	_, w := binary.Uvarint(v[1:])
	s := v[1+w:]
	if len(s) > 80 {
		s = append(slices.Clip(s[:77]), "..."...)
	}
	return strconv.Quote(string(s))
}

// canonical appends the canonical encoding of v, a value of kind read from
// either database: a tag byte, then integers as 8 bytes, floats as their
// IEEE bits, times as Unix microseconds, booleans as the integers 0/1,
// text and bytes length-prefixed, JSON re-encoded (keys sorted, numbers
// normalized) because jsonb does not keep the text it was given.
func canonical(b []byte, kind valueKind, v any) ([]byte, error) {
	if v == nil {
		return append(b, 'N'), nil
	}
	appendInt := func(n int64) []byte {
		return binary.BigEndian.AppendUint64(append(b, 'I'), uint64(n))
	}
	appendBytes := func(tag byte, p []byte) []byte {
		b = binary.AppendUvarint(append(b, tag), uint64(len(p)))
		return append(b, p...)
	}
	switch kind {
	case kindInt, kindBool:
		x, err := toTarget(kindInt, v)
		if err != nil {
			return b, err
		}
		return appendInt(x.(int64)), nil
	case kindFloat:
		var f float64
		switch x := v.(type) {
		case float32:
			f = float64(x)
		default:
			y, err := toTarget(kindFloat, v)
			if err != nil {
				return b, err
			}
			f = y.(float64)
		}
		return binary.BigEndian.AppendUint64(append(b, 'F'), math.Float64bits(f)), nil
	case kindTime:
		x, err := toTarget(kindTime, v)
		if err != nil {
			return b, err
		}
		return appendInt(x.(time.Time).UnixMicro()), nil
	case kindText:
		x, err := toTarget(kindText, v)
		if err != nil {
			return b, err
		}
		return appendBytes('S', []byte(x.(string))), nil
	case kindBytes:
		x, err := toTarget(kindBytes, v)
		if err != nil {
			return b, err
		}
		return appendBytes('B', x.([]byte)), nil
	case kindJSON:
		x, err := toTarget(kindJSON, v)
		if err != nil {
			return b, err
		}
		j, err := canonicalJSON(x.(string))
		if err != nil {
			return b, err
		}
		return appendBytes('J', j), nil
	}
	return b, fmt.Errorf("unknown kind %d", kind)
}

func canonicalJSON(s string) ([]byte, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("read JSON: %w", err)
	}
	return json.Marshal(normalizeNumbers(v))
}

// normalizeNumbers rewrites numbers so that 1.0, 1 and 1e0 compare equal,
// as jsonb makes them.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return json.Number(strconv.FormatInt(n, 10))
		}
		if f, err := x.Float64(); err == nil {
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	return v
}
