package main

import (
	"net/url"
	"testing"

	"github.com/stewardhq/steward/internal/store/storetest"
)

// database is where the serve processes of one test keep their data: the
// --db argument and the environment every process needs on it.
type database struct {
	url string
	env []string
}

// newDatabase makes a fresh database of b for t (storetest.ServerDatabaseOn:
// a file in dir, or a PostgreSQL database of its own, skipped without
// STEWARD_TEST_POSTGRES_URL and failed under CI=true), which every process
// reaches with one secret key and one spool directory.
func newDatabase(t *testing.T, b storetest.Backend, dir string) database {
	t.Helper()
	url, key, spool := storetest.ServerDatabaseOn(t, b, dir)
	db := database{url: url}
	if key != "" {
		db.env = []string{"STEWARD_SECRET_KEY=" + key, "STEWARD_SPOOL_DIR=" + spool}
	}
	return db
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
