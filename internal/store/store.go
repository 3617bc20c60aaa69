package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect names the SQL backend; the few places where backends differ
// switch on it.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// Pool sizes. The writer has exactly one connection: SQLite serializes
// writers anyway, and riversqlite documents that a one-connection pool is
// what keeps River from hitting SQLITE_BUSY. Readers run concurrently in WAL.
const (
	writerConns = 1
	readerConns = 4
)

// sqlitePragmas are set on every connection of both pools.
//
//   - busy_timeout(10000): a connection that finds the file locked (e.g. a
//     checkpoint, or another process such as the `steward migrate` CLI) waits
//     up to 10s instead of failing at once with SQLITE_BUSY.
//   - foreign_keys(1): SQLite leaves foreign keys off by default; the schema
//     relies on them.
//   - synchronous(NORMAL): in WAL mode this is durable against application
//     crashes and only loses the last transactions on power loss, and it saves
//     an fsync per commit, which matters for ingest throughput.
var sqlitePragmas = []string{"busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)"}

// DB is Steward's database. It is safe for concurrent use.
type DB struct {
	// Now is the clock used for created/updated/ended times. Tests replace
	// it; it defaults to time.Now().UTC().
	Now func() time.Time

	write   *sql.DB // write transactions and River (SQLite: one connection)
	read    *sql.DB // read-only pool for Find* methods
	dialect dialect
	logger  *slog.Logger
	path    string // SQLite: the file; PostgreSQL: the URL without password

	river  riverdriver.Driver[*sql.Tx] // River's driver on the writer pool
	listen *pgxpool.Pool               // PostgreSQL: River's LISTEN connections

	riverMigrations int // number of River migrations in the bundle, for Ready

	box          atomic.Pointer[secret.Box] // seals integration credentials; nil until SetSecretBox
	installation atomic.Pointer[string]     // cached InstallationID
}

// Open opens or creates the database at url and brings its schema up to
// date: Steward's own migrations first, then River's.
//
// url is a PostgreSQL URL (postgres://...), or for SQLite a plain file
// path, "sqlite:PATH" or a SQLite URI "file:PATH?...", whose parent
// directory is created if needed.
func Open(ctx context.Context, url string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if IsPostgresURL(url) {
		return openPostgres(ctx, url, logger)
	}
	path, userQuery, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open database: create directory %s: %w", dir, err)
		}
	}
	if err := createPrivate(path, logger); err != nil {
		return nil, err
	}

	db := &DB{
		Now:     func() time.Time { return time.Now().UTC() },
		dialect: dialectSQLite,
		logger:  logger,
		path:    path,
	}

	// The writer sets WAL (persistent in the file, so readers inherit it) and
	// begins every transaction with BEGIN IMMEDIATE: a write transaction that
	// started deferred and later tried to upgrade its read lock could fail
	// with SQLITE_BUSY regardless of busy_timeout; taking the write lock up
	// front makes it wait instead. It also gets a 64 MiB page cache, since
	// ingest inserts into large indexes.
	db.write, err = sql.Open("sqlite", sqliteDSN(url, path, userQuery,
		append([]string{"journal_mode(WAL)", "cache_size(-65536)"}, sqlitePragmas...), "_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("open database writer: %w", err)
	}
	db.write.SetMaxOpenConns(writerConns)
	db.write.SetMaxIdleConns(writerConns)
	db.write.SetConnMaxIdleTime(0)
	db.write.SetConnMaxLifetime(0)

	// Ping the writer first so WAL is on before any reader connects.
	if err := db.write.PingContext(ctx); err != nil {
		db.write.Close()
		return nil, steward.WrapError(steward.CodeUnavailable, err, "open database %s", path)
	}

	// Readers are query_only so a bug can never write outside the writer's
	// transactions; each has a 16 MiB page cache.
	db.read, err = sql.Open("sqlite", sqliteDSN(url, path, userQuery,
		append([]string{"query_only(1)", "cache_size(-16384)"}, sqlitePragmas...)))
	if err != nil {
		db.write.Close()
		return nil, fmt.Errorf("open database readers: %w", err)
	}
	db.read.SetMaxOpenConns(readerConns)
	db.read.SetMaxIdleConns(readerConns)
	db.river = riversqlite.New(db.write)
	return db.finishOpen(ctx)
}

// finishOpen brings a freshly opened database's schema up to date and makes
// sure it has an installation ID; on failure it closes the database.
func (db *DB) finishOpen(ctx context.Context) (*DB, error) {
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if _, err := db.ensureInstallationID(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// parseURL extracts the file path (and any URI query the user gave) from url.
// createPrivate creates the database file with mode 0600 when it does not
// exist yet. SQLite creates the -wal and -shm files with the mode of the
// database file, so they inherit it; left to SQLite, all three would be
// created 0644 under the usual umask and readable by every local user. An
// existing file is left as it is, with a warning when others can read it.
func createPrivate(path string, logger *slog.Logger) error {
	// O_EXCL: never truncate or re-mode a database that exists.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			logger.Warn("the database file is readable by other users; restrict it with chmod 600 (and its -wal and -shm files)",
				"path", path, "mode", st.Mode().Perm().String())
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("open database: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("open database: create %s: %w", path, err)
	}
	return nil
}

// FilePath is the file a SQLite database URL names, in any form Open
// accepts. Errors: CodeInvalid for a URL Open refuses or a PostgreSQL URL.
func FilePath(url string) (string, error) {
	path, _, err := parseURL(url)
	return path, err
}

func parseURL(url string) (path, query string, err error) {
	lower := strings.ToLower(url)
	switch {
	case IsPostgresURL(url):
		return "", "", steward.Errorf(steward.CodeInvalid, "%s is a PostgreSQL database, not a SQLite file", RedactURL(url))
	case strings.HasPrefix(lower, "sqlite:"):
		path = url[len("sqlite:"):]
		path = strings.TrimPrefix(path, "//") // sqlite:///abs/path
	case strings.HasPrefix(lower, "file:"):
		path = url[len("file:"):]
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path, query = path[:i], path[i+1:]
		}
		path = strings.TrimPrefix(path, "//") // file:///abs/path
	default:
		path = url
	}
	if strings.TrimSpace(path) == "" {
		return "", "", steward.Errorf(steward.CodeInvalid, "database URL %q has no file path", url)
	}
	if path == ":memory:" || strings.Contains(query, "mode=memory") {
		// Two pools on an in-memory database would be two databases.
		return "", "", steward.Errorf(steward.CodeInvalid, "in-memory SQLite databases are not supported; use a file path")
	}
	return path, query, nil
}

// sqliteDSN builds a modernc DSN: the path (or the user's file: URI) plus our
// pragmas. User-given parameters are kept and come first.
func sqliteDSN(url, path, userQuery string, pragmas []string, extra ...string) string {
	var params []string
	if userQuery != "" {
		params = append(params, userQuery)
	}
	for _, p := range pragmas {
		params = append(params, "_pragma="+p)
	}
	params = append(params, extra...)
	base := path
	if strings.HasPrefix(strings.ToLower(url), "file:") {
		base = "file:" + path
	}
	return base + "?" + strings.Join(params, "&")
}

// Close closes the pools.
func (db *DB) Close() error {
	var errs []error
	if db.listen != nil {
		db.listen.Close()
	}
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// Writer returns the pool that write transactions use (SQLite: its one
// connection).
func (db *DB) Writer() *sql.DB { return db.write }

// RiverDriver is River's driver on the writer pool: River must be built on
// it so that jobs inserted with InsertTx share Steward's transactions
// (riversqlite for SQLite; for PostgreSQL riverdatabasesql, whose
// transactions are the same *sql.Tx, with pgx connections for LISTEN).
func (db *DB) RiverDriver() riverdriver.Driver[*sql.Tx] { return db.river }

// Ready reports whether the database is reachable and every migration,
// Steward's and River's, is applied. Any failure is steward.CodeUnavailable.
func (db *DB) Ready(ctx context.Context) error {
	unavailable := func(err error, format string, args ...any) error {
		return steward.WrapError(steward.CodeUnavailable, err, format, args...)
	}
	if err := db.read.PingContext(ctx); err != nil {
		return unavailable(err, "database is unreachable")
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		return unavailable(err, "database schema is not migrated")
	}
	want, err := migrationFiles(db.dialect)
	if err != nil {
		return unavailable(err, "read embedded migrations")
	}
	if n < len(want) {
		return unavailable(nil, "database schema has %d of %d migrations applied", n, len(want))
	}
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM river_migration WHERE line = 'main'`).Scan(&n); err != nil {
		return unavailable(err, "job queue schema is not migrated")
	}
	if n < db.riverMigrations {
		return unavailable(nil, "job queue schema has %d of %d migrations applied", n, db.riverMigrations)
	}
	return nil
}

// migrate applies Steward's migrations, then River's on the writer pool.
func (db *DB) migrate(ctx context.Context) error {
	return db.withMigrationLock(ctx, func() error { return db.migrateLocked(ctx) })
}

func (db *DB) migrateLocked(ctx context.Context) error {
	if err := db.migrateSteward(ctx); err != nil {
		return err
	}
	// The migrator's own lines (info only) would repeat the one logged
	// below for each migration; its failures come back as errors.
	migrator, err := rivermigrate.New(db.river, &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	db.riverMigrations = len(migrator.AllVersions())
	res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	for _, v := range res.Versions {
		db.logger.InfoContext(ctx, "river migration applied", slog.Int("version", v.Version), slog.String("name", v.Name))
	}
	return nil
}

// Path is the database file's path (PostgreSQL: its URL without password).
func (db *DB) Path() string { return db.path }

// WithTx runs fn in one write transaction and commits it if fn returns nil.
// It rolls back when fn returns an error or panics (the panic continues).
func (db *DB) WithTx(ctx context.Context, fn func(tx *Tx) error) error {
	stx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", mapError(err))
	}
	tx := &Tx{tx: stx, db: db}
	// Roll back on every way out but a successful commit: an error, a panic
	// (which continues) or runtime.Goexit (t.FailNow in a test). A leaked
	// transaction would hold the writer's only connection for good.
	done := false
	defer func() {
		if !done {
			if rerr := stx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
				db.logger.WarnContext(ctx, "rollback failed", slog.Any("error", rerr))
			}
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	done = true
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", mapError(err))
	}
	return nil
}

// Tx is one write transaction, valid only inside the WithTx callback.
type Tx struct {
	tx    *sql.Tx
	db    *DB
	stmts map[string]*sql.Stmt // prepared once per transaction; closed with it
}

// SQL returns the underlying transaction, e.g. for River's InsertTx.
func (tx *Tx) SQL() *sql.Tx { return tx.tx }

// stmt returns a statement prepared in this transaction, reusing it across
// calls. database/sql closes the statements when the transaction ends.
func (tx *Tx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := tx.stmts[query]; ok {
		return s, nil
	}
	s, err := tx.tx.PrepareContext(ctx, tx.db.bind(query))
	if err != nil {
		return nil, err
	}
	if tx.stmts == nil {
		tx.stmts = make(map[string]*sql.Stmt)
	}
	tx.stmts[query] = s
	return s, nil
}

// txStmts is a querier that on SQLite prepares each query once per
// transaction (Tx.stmt) and reuses it: a batch applying a hundred remote
// views runs the same reads a hundred times, and parsing them again each
// time was most of a batch's cost. PostgreSQL parses cheaply on the
// server, where an explicit prepare would cost a round trip of its own.
type txStmts struct{ tx *Tx }

func (q txStmts) cached(ctx context.Context, query string) *sql.Stmt {
	if q.tx.db.Postgres() {
		return nil
	}
	stmt, err := q.tx.stmt(ctx, query)
	if err != nil {
		return nil // the direct call below reports it
	}
	return stmt
}

func (q txStmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if stmt := q.cached(ctx, query); stmt != nil {
		return stmt.QueryContext(ctx, args...)
	}
	return q.tx.tx.QueryContext(ctx, query, args...)
}

func (q txStmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if stmt := q.cached(ctx, query); stmt != nil {
		return stmt.QueryRowContext(ctx, args...)
	}
	return q.tx.tx.QueryRowContext(ctx, query, args...)
}

func (q txStmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if stmt := q.cached(ctx, query); stmt != nil {
		return stmt.ExecContext(ctx, args...)
	}
	return q.tx.tx.ExecContext(ctx, query, args...)
}

// querier is what read helpers need: the reader pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// bind rewrites the ? placeholders of a query for the dialect: PostgreSQL
// wants $1, $2, ... . Queries in this package never put ? inside string
// literals except where skipped below.
func (db *DB) bind(query string) string {
	if db.dialect != dialectPostgres {
		return query
	}
	return rebindDollar(query)
}

// Bind is bind for code outside the store that writes SQL of its own
// (tests, tools): query's ? placeholders in the dialect's form.
func (db *DB) Bind(query string) string { return db.bind(query) }

func rebindDollar(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	inQuote := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// timeArg converts a time into the stored representation: UTC Unix
// microseconds in INTEGER (PostgreSQL: BIGINT) columns, in both stores.
// Compact, fast to index and compare, immune to drivers' time formats, and
// the same value in both, so queries and `steward migrate copy` need no
// conversion.
func (db *DB) timeArg(t time.Time) any {
	return t.UnixMicro()
}

// boolArg is the stored form of a boolean: INTEGER 0/1 in SQLite and
// BIGINT 0/1 in PostgreSQL, so both stores hold the same values. pgx does
// not encode a Go bool into a bigint parameter; database/sql scans 0/1
// back into a bool in both.
func boolArg(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// nullTimeArg is timeArg for nullable columns; nil and zero map to NULL.
func (db *DB) nullTimeArg(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return db.timeArg(*t)
}

// dbTime scans a stored time (Unix microseconds or a time.Time) into T.
type dbTime struct {
	T     time.Time
	Valid bool
}

func (d *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		d.T, d.Valid = time.Time{}, false
	case int64:
		d.T, d.Valid = time.UnixMicro(v).UTC(), true
	case time.Time:
		d.T, d.Valid = v.UTC(), true
	default:
		return fmt.Errorf("scan time: unsupported type %T", src)
	}
	return nil
}

func (d dbTime) ptr() *time.Time {
	if !d.Valid {
		return nil
	}
	t := d.T
	return &t
}

// storedTime is t as it reads back from the database (UTC, microseconds).
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// now returns db.Now() at stored precision.
func (db *DB) now() time.Time { return storedTime(db.Now()) }

// mapError turns constraint violations into steward.CodeConflict and
// SQLITE_BUSY into CodeUnavailable; other errors pass through.
func mapError(err error) error {
	if mapped, ok := mapPostgresError(err); ok {
		return mapped
	}
	var serr *sqlite.Error
	if errors.As(err, &serr) {
		switch serr.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT:
			return steward.WrapError(steward.CodeConflict, err, "conflicting change: %s", constraintMessage(serr))
		case sqlite3.SQLITE_BUSY:
			return steward.WrapError(steward.CodeUnavailable, err, "database is busy; try again")
		}
	}
	return err
}

func constraintMessage(err *sqlite.Error) string {
	msg := err.Error()
	if i := strings.Index(msg, "constraint failed"); i >= 0 {
		return msg[i:]
	}
	return "constraint violated"
}

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// rowsPlaceholders returns "(?, ?), (?, ?)" for rows rows of cols columns.
func rowsPlaceholders(rows, cols int) string {
	one := "(" + placeholders(cols) + ")"
	var b strings.Builder
	b.Grow(rows * (len(one) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	return b.String()
}

// scopeRange returns the SQL condition and args that restrict col (a
// normalized resource ID column) to scope, or "" when the scope contains
// everything. It is a range on an indexed column: col = s, or s/ <= col < s0
// ('0' is the byte after '/'), which is segment-wise because the next byte
// after the scope must be '/'. Lowercasing in NormalizeResourceID and
// Scope.Normalize makes it case-insensitive. PostgreSQL: the column must use
// COLLATE "C" for the byte range to hold.
func scopeRange(col string, scope steward.Scope) (string, []any, error) {
	if err := scope.Validate(); err != nil {
		return "", nil, err
	}
	s := string(scope.Normalize())
	if s == "/" {
		return "", nil, nil
	}
	// Written as one range [s, s0) plus a residual test (the spec's
	// col = s OR (col >= s/ AND col < s0)) so the planner walks the index in
	// order instead of merging two lookups; IDs such as s-x or s.x that sort
	// between s and s/ are read and dropped.
	return "(" + col + " >= ? AND " + col + " < ? AND (" + col + " = ? OR " + col + " >= ?))", []any{s, s + "0", s, s + "/"}, nil
}

// Page size limits.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

func pageLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultLimit, nil
	case limit < 0:
		return 0, steward.Errorf(steward.CodeInvalid, "limit must be positive")
	case limit > MaxLimit:
		return 0, steward.Errorf(steward.CodeInvalid, "limit %d is over the maximum of %d", limit, MaxLimit)
	}
	return limit, nil
}
