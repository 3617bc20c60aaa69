package main

import (
	"encoding/base64"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/stewardhq/steward/internal/store/pgtest"
)

// backend is a store the end-to-end tests of real `steward serve`
// processes run against.
type backend string

const (
	sqliteBackend   backend = "SQLite"
	postgresBackend backend = "PostgreSQL"
)

var backends = []backend{sqliteBackend, postgresBackend}

// database is where the serve processes of one test keep their data: the
// --db argument and the environment every process needs on it.
type database struct {
	url string
	env []string
}

// newDatabase makes a fresh database of b for t: a file in dir, or a
// PostgreSQL database of its own (skipped without
// STEWARD_TEST_POSTGRES_URL, failed under CI=true), which every process
// reaches with one secret key and one spool directory.
func newDatabase(t *testing.T, b backend, dir string) database {
	t.Helper()
	if b == sqliteBackend {
		return database{url: filepath.Join(dir, "steward.db")}
	}
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	return database{url: pgtest.URL(t), env: []string{
		"STEWARD_SECRET_KEY=" + base64.StdEncoding.EncodeToString(key),
		"STEWARD_SPOOL_DIR=" + filepath.Join(dir, "spool"),
	}}
}

// password is the database URL's password, which no log may show.
func (d database) password() string {
	u, err := url.Parse(d.url)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}
