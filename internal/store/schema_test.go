package store_test

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/store/pgtest"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// column is what both schemas must agree on about a column.
type column struct {
	Name       string
	Kind       string // int, text, bytes, float
	NotNull    bool
	HasDefault bool
}

// index is what both schemas must agree on about an index.
type index struct {
	Unique, Partial bool
}

type schema struct {
	Columns map[string][]column
	Indexes map[string]map[string]index // table -> index name -> index
	Checks  map[string]int              // table -> number of CHECK constraints
}

// kindExceptions are columns whose declared type differs on purpose.
var kindExceptions = map[string]string{
	// SQLite declares them TEXT (they hold Unix microseconds, which SQLite
	// then stores as decimal text); PostgreSQL declares what they are.
	"ticket_group.created_at": "text/int",
	"ticket_group.closed_at":  "text/int",
}

// TestSchemasMatch: after all migrations, the PostgreSQL schema has the
// same tables, columns (in order, with the same kind of type, nullability
// and presence of a default), indexes (names, uniqueness, partial or not)
// and number of CHECK constraints per table as SQLite's, and every text
// column compares bytes (COLLATE "C").
func TestSchemasMatch(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	lite := storetest.MustOpenBackend(t, storetest.SQLite)
	pg := storetest.MustOpenBackend(t, storetest.Postgres)
	a, b := sqliteSchema(t, lite.Writer()), postgresSchema(t, pg.Writer())

	require.ElementsMatch(t, keys(a.Columns), keys(b.Columns), "tables")
	for table, cols := range a.Columns {
		pcols := b.Columns[table]
		require.Len(t, pcols, len(cols), "columns of %s", table)
		for i, c := range cols {
			p := pcols[i]
			if kindExceptions[table+"."+c.Name] == c.Kind+"/"+p.Kind {
				c.Kind = p.Kind
			}
			require.Equal(t, c, p, "column %d of %s", i+1, table)
		}
		require.Equal(t, a.Indexes[table], b.Indexes[table], "indexes of %s", table)
		require.Equal(t, a.Checks[table], b.Checks[table], "CHECK constraints of %s", table)
	}

	var notC []string
	rows, err := pg.Writer().QueryContext(t.Context(), `SELECT table_name, column_name, COALESCE(collation_name, '')
		FROM information_schema.columns WHERE table_schema = current_schema() AND data_type = 'text'
		AND table_name NOT LIKE 'river\_%' ORDER BY table_name, ordinal_position`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var table, col, coll string
		require.NoError(t, rows.Scan(&table, &col, &coll))
		if coll != "C" {
			notC = append(notC, table+"."+col)
		}
	}
	require.NoError(t, rows.Err())
	require.Empty(t, notC, "text columns without COLLATE \"C\"")
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// skipTable leaves out River's tables and the bookkeeping of migrations,
// whose DDL each backend writes its own way.
func skipTable(name string) bool {
	return strings.HasPrefix(name, "river_") || strings.HasPrefix(name, "sqlite_") || name == "schema_migrations"
}

func sqliteSchema(t *testing.T, db *sql.DB) schema {
	t.Helper()
	ctx := t.Context()
	s := schema{Columns: map[string][]column{}, Indexes: map[string]map[string]index{}, Checks: map[string]int{}}
	var tables []string
	rows, err := db.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'table'`)
	require.NoError(t, err)
	for rows.Next() {
		var name, ddl string
		require.NoError(t, rows.Scan(&name, &ddl))
		if !skipTable(name) {
			tables = append(tables, name)
			s.Checks[name] = strings.Count(strings.ToUpper(ddl), "CHECK (")
		}
	}
	require.NoError(t, rows.Close())
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, `SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid`, table)
		require.NoError(t, err)
		var pkCols int
		for rows.Next() {
			var c column
			var typ string
			var dflt sql.NullString
			var pk int
			require.NoError(t, rows.Scan(&c.Name, &typ, &c.NotNull, &dflt, &pk))
			if pk > 0 {
				pkCols++
				c.NotNull = true // PostgreSQL's primary keys are NOT NULL; SQLite's INTEGER PRIMARY KEY is the rowid
			}
			c.HasDefault = dflt.Valid
			c.Kind = map[string]string{"INTEGER": "int", "TEXT": "text", "BLOB": "bytes", "REAL": "float"}[strings.ToUpper(typ)]
			require.NotEmpty(t, c.Kind, "type %s of %s.%s", typ, table, c.Name)
			s.Columns[table] = append(s.Columns[table], c)
		}
		require.NoError(t, rows.Close())
		// The identity column of PostgreSQL has a default; SQLite's
		// INTEGER PRIMARY KEY (the rowid) fills itself in.
		if pkCols == 1 {
			for i, c := range s.Columns[table] {
				if c.Name == "id" && c.Kind == "int" {
					s.Columns[table][i].HasDefault = true
				}
			}
		}
		s.Indexes[table] = map[string]index{}
		rows, err = db.QueryContext(ctx, `SELECT name, "unique", partial, origin FROM pragma_index_list(?)`, table)
		require.NoError(t, err)
		for rows.Next() {
			var name, origin string
			var ix index
			require.NoError(t, rows.Scan(&name, &ix.Unique, &ix.Partial, &origin))
			if origin != "c" {
				continue // made by a PRIMARY KEY or UNIQUE constraint: named differently in each
			}
			s.Indexes[table][name] = ix
		}
		require.NoError(t, rows.Close())
	}
	return s
}

func postgresSchema(t *testing.T, db *sql.DB) schema {
	t.Helper()
	ctx := t.Context()
	s := schema{Columns: map[string][]column{}, Indexes: map[string]map[string]index{}, Checks: map[string]int{}}
	rows, err := db.QueryContext(ctx, `SELECT table_name, column_name, data_type, is_nullable = 'NO',
		column_default IS NOT NULL OR is_identity = 'YES'
		FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	require.NoError(t, err)
	for rows.Next() {
		var table, typ string
		var c column
		require.NoError(t, rows.Scan(&table, &c.Name, &typ, &c.NotNull, &c.HasDefault))
		if skipTable(table) {
			continue
		}
		c.Kind = map[string]string{"bigint": "int", "text": "text", "bytea": "bytes", "double precision": "float"}[typ]
		require.NotEmpty(t, c.Kind, "type %s of %s.%s", typ, table, c.Name)
		s.Columns[table] = append(s.Columns[table], c)
		if s.Indexes[table] == nil {
			s.Indexes[table] = map[string]index{}
		}
	}
	require.NoError(t, rows.Close())
	// Indexes not made by a constraint (primary keys and UNIQUE columns
	// are named differently in each backend).
	rows, err = db.QueryContext(ctx, `SELECT t.relname, i.relname, ix.indisunique, ix.indpred IS NOT NULL
		FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE n.nspname = current_schema() AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid)`)
	require.NoError(t, err)
	for rows.Next() {
		var table, name string
		var ix index
		require.NoError(t, rows.Scan(&table, &name, &ix.Unique, &ix.Partial))
		if skipTable(table) {
			continue
		}
		if s.Indexes[table] == nil {
			require.Fail(t, fmt.Sprintf("index %s on unknown table %s", name, table))
		}
		s.Indexes[table][name] = ix
	}
	require.NoError(t, rows.Close())
	rows, err = db.QueryContext(ctx, `SELECT t.relname, COUNT(*) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = current_schema() AND c.contype = 'c' GROUP BY t.relname`)
	require.NoError(t, err)
	for rows.Next() {
		var table string
		var n int
		require.NoError(t, rows.Scan(&table, &n))
		if !skipTable(table) {
			s.Checks[table] = n
		}
	}
	require.NoError(t, rows.Close())
	return s
}
