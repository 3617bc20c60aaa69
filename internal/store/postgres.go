package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/stewardhq/steward"
)

// PostgreSQL pool defaults; the database URL's pool_max_conns and
// statement_timeout override them (README, configuration).
const (
	defaultPostgresMaxConns  = 20
	defaultStatementTimeout  = 60 * time.Second
	postgresApplicationName  = "steward"
	postgresMigrationLockKey = 0x5374657761726401 // "Steward\x01": one migrator at a time
)

// IsPostgresURL reports whether url names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsPostgresURL(url string) bool {
	lower := strings.ToLower(url)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// RedactURL is url with any password replaced, for logs and errors.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable database URL)"
	}
	return u.Redacted()
}

// postgresSettings are Steward's own URL parameters, removed from the URL
// before pgx sees it (pgx would send unknown parameters to the server as
// settings, which refuses them).
type postgresSettings struct {
	maxConns int
}

func parsePostgresURL(raw string) (*pgx.ConnConfig, postgresSettings, error) {
	settings := postgresSettings{maxConns: defaultPostgresMaxConns}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, settings, steward.Errorf(steward.CodeInvalid, "database URL is not a valid postgres:// URL")
	}
	q := u.Query()
	if v := q.Get("pool_max_conns"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > 1000 {
			return nil, settings, steward.Errorf(steward.CodeInvalid, "database URL: pool_max_conns must be a whole number from 2 to 1000, not %q", v)
		}
		settings.maxConns = n
		q.Del("pool_max_conns")
	}
	u.RawQuery = q.Encode()
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		// pgx's message can quote the URL; say what is wrong without it.
		return nil, settings, steward.Errorf(steward.CodeInvalid, "database URL %s: %s", u.Redacted(), pgxParseReason(err))
	}
	if _, ok := cfg.RuntimeParams["statement_timeout"]; !ok {
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(defaultStatementTimeout.Milliseconds(), 10)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = postgresApplicationName
	}
	return cfg, settings, nil
}

func pgxParseReason(err error) string {
	var perr *pgconn.ParseConfigError
	if errors.As(err, &perr) && perr.Unwrap() != nil {
		return perr.Unwrap().Error()
	}
	return "cannot be parsed"
}

// openPostgres opens both pools on the PostgreSQL database at url, the
// listener pool River uses for LISTEN/NOTIFY, and migrates the schema.
//
// Unlike SQLite, the writer pool has many connections: PostgreSQL has row
// locks, and the store takes them where it reads to modify (forUpdate).
// The reader pool's sessions are read-only (default_transaction_read_only),
// the same guard the SQLite readers get from query_only.
func openPostgres(ctx context.Context, raw string, logger *slog.Logger) (*DB, error) {
	cfg, settings, err := parsePostgresURL(raw)
	if err != nil {
		return nil, err
	}
	db := &DB{
		Now:     func() time.Time { return time.Now().UTC() },
		dialect: dialectPostgres,
		logger:  logger,
		path:    RedactURL(raw),
	}
	db.write = stdlib.OpenDB(*cfg)
	db.write.SetMaxOpenConns(settings.maxConns)
	db.write.SetMaxIdleConns(settings.maxConns)
	db.write.SetConnMaxIdleTime(5 * time.Minute)

	if err := db.write.PingContext(ctx); err != nil {
		db.write.Close()
		return nil, steward.WrapError(steward.CodeUnavailable, err, "open database %s", db.path)
	}

	readCfg := cfg.Copy()
	readCfg.RuntimeParams["default_transaction_read_only"] = "on"
	db.read = stdlib.OpenDB(*readCfg)
	db.read.SetMaxOpenConns(settings.maxConns)
	db.read.SetMaxIdleConns(settings.maxConns)
	db.read.SetConnMaxIdleTime(5 * time.Minute)

	// River listens for job notifications on connections of its own; each
	// River client holds one for as long as it runs.
	poolCfg, err := pgxpool.ParseConfig("")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open database listener: %w", err)
	}
	poolCfg.ConnConfig = cfg.Copy()
	poolCfg.MaxConns = 4
	poolCfg.MinConns = 0
	db.listen, err = pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open database listener: %w", err)
	}
	db.river = riverdatabasesql.NewWithPgxListener(db.write, db.listen)
	return db.finishOpen(ctx)
}

// withMigrationLock runs fn while this process holds the database's
// migration lock: several processes starting at once on one PostgreSQL
// migrate one after the other, and the later ones find nothing to do. SQLite
// needs none (one process per file holds the file lock).
func (db *DB) withMigrationLock(ctx context.Context, fn func() error) error {
	if db.dialect != dialectPostgres {
		return fn()
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(postgresMigrationLockKey)); err != nil {
		return fmt.Errorf("migrate: take the migration lock: %w", mapError(err))
	}
	defer func() {
		// A fresh context: the lock must be released even when ctx ended.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(postgresMigrationLockKey)); err != nil {
			db.logger.WarnContext(ctx, "release migration lock", slog.Any("err", err))
		}
	}()
	return fn()
}

// mapPostgresError is mapError's PostgreSQL half.
func mapPostgresError(err error) (error, bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err, false
	}
	switch {
	case strings.HasPrefix(pgErr.Code, "23"): // integrity constraint violation
		what := pgErr.ConstraintName
		if what == "" {
			what = "constraint violated"
		} else {
			what = "constraint " + what
		}
		return steward.WrapError(steward.CodeConflict, err, "conflicting change: %s", what), true
	case pgErr.Code == "40001", pgErr.Code == "40P01", pgErr.Code == "55P03": // serialization, deadlock, lock not available
		return steward.WrapError(steward.CodeUnavailable, err, "database is busy; try again"), true
	case pgErr.Code == "57014": // statement timeout or cancel
		return steward.WrapError(steward.CodeUnavailable, err, "database statement timed out; try again"), true
	case strings.HasPrefix(pgErr.Code, "08"), pgErr.Code == "57P01", pgErr.Code == "57P03": // connection, shutdown, starting up
		return steward.WrapError(steward.CodeUnavailable, err, "database is unavailable"), true
	}
	return err, true
}

// forUpdate is the row-lock clause a read that precedes a write of the same
// rows appends: PostgreSQL's writers run concurrently, so the row must be
// locked until the transaction ends; SQLite's one writer (BEGIN IMMEDIATE)
// already excludes every other.
func (db *DB) forUpdate() string {
	if db.dialect == dialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// forUpdateOf is forUpdate for a query that joins other tables: only the
// rows of the named tables (aliases) are locked, and PostgreSQL refuses
// FOR UPDATE on the nullable side of an outer join.
func (db *DB) forUpdateOf(tables string) string {
	if db.dialect == dialectPostgres {
		return " FOR UPDATE OF " + tables
	}
	return ""
}

// Keys of the transaction-scoped advisory locks (docs/architecture.md,
// "Several writers"). They share pg_advisory_lock's key space with
// postgresMigrationLockKey.
const (
	// ingestLockKey serializes the writes of ingest chunks (file imports,
	// the push API, live sources) as SQLite's one writer does: a chunk
	// reads the stored assessments and writes their changes.
	ingestLockKey = 0x5374657761726402 // "Steward\x02"
	// ruleLockKey serializes governance rule writes: the priority clash
	// check reads every other rule, which no constraint can express.
	ruleLockKey = 0x5374657761726403 // "Steward\x03"
	// summaryLockKey serializes recomputes of the recommendation summaries,
	// which delete and insert the same rows.
	summaryLockKey = 0x5374657761726404 // "Steward\x04"
	// scopeTagLockSpace is the first key of the two-key advisory locks on
	// one scope's tags (the second is the scope's hashtext).
	scopeTagLockSpace = 0x53746501
)

// advisoryLock takes a transaction-scoped advisory lock on PostgreSQL,
// held until tx ends; SQLite's one writer needs none.
func (tx *Tx) advisoryLock(ctx context.Context, key int64) error {
	if tx.db.dialect != dialectPostgres {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
		return fmt.Errorf("take advisory lock: %w", mapError(err))
	}
	return nil
}

// lock runs query, a SELECT ... FOR UPDATE (or FOR SHARE), on PostgreSQL
// to lock the rows it selects until tx ends; SQLite's one writer needs no
// row locks, so there it does nothing. Rows that do not exist lock
// nothing and are no error.
func (tx *Tx) lock(ctx context.Context, query string, args ...any) error {
	if tx.db.dialect != dialectPostgres {
		return nil
	}
	rows, err := tx.tx.QueryContext(ctx, tx.db.bind(query), args...)
	if err != nil {
		return fmt.Errorf("lock: %w", mapError(err))
	}
	for rows.Next() {
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("lock: %w", mapError(err))
	}
	return nil
}

// groupConcat aggregates the text expr of a group's rows, joined by
// commas in no particular order: SQLite's group_concat, PostgreSQL's
// string_agg.
func (db *DB) groupConcat(expr string) string {
	if db.dialect == dialectPostgres {
		return "string_agg(" + expr + ", ',')"
	}
	return "group_concat(" + expr + ", ',')"
}

// Postgres reports whether the database is PostgreSQL.
func (db *DB) Postgres() bool { return db.dialect == dialectPostgres }
