// Package storetest runs store tests against every backend and builds
// fixtures. Other packages use MustOpen and the builders for their own
// store-backed tests; Run is the behaviour suite every backend must pass.
package storetest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/pgtest"
	"github.com/stretchr/testify/require"
)

// Backend names a database backend tests run on.
type Backend string

// Backends.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Backends lists the backends ForEachBackend runs on. PostgreSQL runs on
// the server STEWARD_TEST_POSTGRES_URL names: skipped without it, required
// under CI=true (pgtest).
var Backends = []Backend{SQLite, Postgres}

// ForEachBackend runs fn as a parallel subtest per backend, each with a
// fresh, migrated database that is closed when the subtest ends.
func ForEachBackend(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			fn(t, MustOpenBackend(t, b))
		})
	}
}

// ForEachBackendURL runs fn as a parallel subtest per backend with the URL
// of a fresh, empty database, for tests that open it themselves (to reopen
// it, or to open it more than once).
func ForEachBackendURL(t *testing.T, fn func(t *testing.T, b Backend, url string)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			fn(t, b, NewURL(t, b))
		})
	}
}

// ForEachBackendPair runs fn as a parallel subtest per backend with two
// handles on one fresh database, each a *store.DB with pools of its own,
// as two Steward processes sharing the database have them. On SQLite the
// two writers take turns on the file's lock; on PostgreSQL they run
// concurrently, and only the store's locks and constraints keep them
// apart.
func ForEachBackendPair(t *testing.T, fn func(t *testing.T, a, b *store.DB)) {
	t.Helper()
	ForEachBackendURL(t, func(t *testing.T, _ Backend, url string) {
		fn(t, MustOpenURL(t, url), MustOpenURL(t, url))
	})
}

// NewURL returns the URL of a fresh, empty database on backend b: a file
// in a temporary directory, or a database of its own on the PostgreSQL
// test server (pgtest.URL, which skips or fails t without one).
func NewURL(t testing.TB, b Backend) string {
	t.Helper()
	switch b {
	case SQLite:
		return filepath.Join(t.TempDir(), "steward.db")
	case Postgres:
		return pgtest.URL(t)
	}
	t.Fatalf("unknown backend %q", b)
	return ""
}

// MustOpen opens a fresh database and closes it when the test ends: a
// SQLite file in a temporary directory, or with STEWARD_TEST_STORE=postgres
// a PostgreSQL database of its own (TestStore), so a package's tests can
// run on either store.
func MustOpen(t testing.TB) *store.DB {
	t.Helper()
	return MustOpenBackend(t, TestStore(t))
}

// TestStore is the backend tests run on where they run on one:
// STEWARD_TEST_STORE (sqlite, the default, or postgres).
func TestStore(t testing.TB) Backend {
	t.Helper()
	switch v := os.Getenv("STEWARD_TEST_STORE"); v {
	case "", "sqlite":
		return SQLite
	case "postgres":
		return Postgres
	default:
		t.Fatalf("STEWARD_TEST_STORE is sqlite or postgres, not %q", v)
		return ""
	}
}

// ServerDatabase sets a server configuration's database for a test, on
// the backend TestStore names: a SQLite file in dir, or a fresh PostgreSQL
// database with the secret key and spool directory several processes on
// it would share.
func ServerDatabase(t testing.TB, dir string) (url, secretKey, spoolDir string) {
	t.Helper()
	return ServerDatabaseOn(t, TestStore(t), dir)
}

// ServerDatabaseOn is ServerDatabase on backend b, for tests about one
// store (such as SQLite's file lock).
func ServerDatabaseOn(t testing.TB, b Backend, dir string) (url, secretKey, spoolDir string) {
	t.Helper()
	if b == SQLite {
		return filepath.Join(dir, "steward.db"), "", ""
	}
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i + 1)
	}
	return pgtest.URL(t), base64.StdEncoding.EncodeToString(key), filepath.Join(dir, "spool")
}

// MustOpenBackend opens a fresh database on backend b.
func MustOpenBackend(t testing.TB, b Backend) *store.DB {
	t.Helper()
	return MustOpenURL(t, NewURL(t, b))
}

// MustOpenURL opens the database at url and closes it when the test ends.
func MustOpenURL(t testing.TB, url string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), url, Logger(t))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db
}

// Logger logs warnings and errors to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Observation builds a valid observation of recommendation rec (severity
// High) on Azure resource res with status.
func Observation(rec, res string, status steward.AssessmentStatus) steward.Observation {
	name := res[strings.LastIndex(res, "/")+1:]
	return steward.Observation{
		Resource: steward.Resource{ID: res, Name: name, Type: "microsoft.compute/virtualmachines", Cloud: steward.CloudAzure},
		Recommendation: steward.Recommendation{
			Key: rec, DisplayName: "Recommendation " + rec, Severity: steward.SeverityHigh, Source: "test",
		},
		Status: status,
	}
}

// WithSeverity returns o with the recommendation's severity set.
func WithSeverity(o steward.Observation, s steward.Severity) steward.Observation {
	o.Recommendation.Severity = s
	return o
}

// WithCloud returns o with the resource's cloud set.
func WithCloud(o steward.Observation, c steward.Cloud) steward.Observation {
	o.Resource.Cloud = c
	return o
}

// Apply applies observations at time at in one transaction.
func Apply(t testing.TB, db *store.DB, at time.Time, obs ...steward.Observation) store.ApplyResult {
	t.Helper()
	var res store.ApplyResult
	err := db.WithTx(t.Context(), func(tx *store.Tx) error {
		var err error
		res, err = tx.ApplyObservations(t.Context(), obs, at)
		return err
	})
	require.NoError(t, err)
	return res
}

// Assessment applies an observation of rec on res with status and returns
// the stored assessment.
func Assessment(t testing.TB, db *store.DB, rec, res string, status steward.AssessmentStatus) *steward.Assessment {
	t.Helper()
	Apply(t, db, time.Time{}, Observation(rec, res, status))
	got, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{RecommendationKey: rec, ResourceID: res})
	require.NoError(t, err)
	require.Len(t, got, 1)
	return got[0]
}

// Assignment creates a manual assignment on an assessment, owned by owner and
// due at due.
func Assignment(t testing.TB, db *store.DB, assessmentID int64, owner string, due time.Time) *steward.Assignment {
	t.Helper()
	a := &steward.Assignment{AssessmentID: assessmentID, Owner: owner, DueDate: due}
	require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error {
		return tx.CreateAssignment(t.Context(), a, "tester@example.com", "test")
	}))
	return a
}

// RequireCode fails unless err carries code.
func RequireCode(t testing.TB, err error, code steward.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, steward.ErrorCode(err), "error: %v", err)
}

// Box returns a secret.Box with a fresh random key.
func Box(t testing.TB) *secret.Box {
	t.Helper()
	key := make([]byte, secret.KeySize)
	_, _ = rand.Read(key)
	box, err := secret.NewBox(key)
	require.NoError(t, err)
	return box
}

// Integration creates an active ServiceNow integration named name over
// scope, with basic-auth credentials. It gives db a secret box first if it
// has none.
func Integration(t testing.TB, db *store.DB, name string, scope steward.Scope) *steward.Integration {
	t.Helper()
	if !db.HasSecretBox() {
		db.SetSecretBox(Box(t))
	}
	in := &steward.Integration{Name: name, Scope: scope, InstanceURL: "https://example.service-now.com",
		AuthMode: steward.AuthBasic, Username: "steward"}
	require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error {
		return tx.CreateIntegration(t.Context(), in, store.IntegrationSecrets{Password: secret.New("pw-" + name)}, "admin@example.com")
	}))
	return in
}

// ServiceNowAssignment creates a ServiceNow-type assignment on an
// assessment together with its pending incident ticket on integrationID
// (correlation ID "test-<assignment id>"), as ticket creation does.
func ServiceNowAssignment(t testing.TB, db *store.DB, assessmentID, integrationID int64, owner string, due time.Time) *steward.Assignment {
	t.Helper()
	a := &steward.Assignment{AssessmentID: assessmentID, Type: steward.AssignmentServiceNow, Owner: owner, DueDate: due}
	require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error {
		if err := tx.CreateAssignment(t.Context(), a, "tester@example.com", "test"); err != nil {
			return err
		}
		tk := &steward.Ticket{AssignmentID: a.ID, IntegrationID: integrationID, Type: steward.TicketTypeIncident, Table: "incident",
			CorrelationID: fmt.Sprintf("test-%d", a.ID), ShortDescription: "Fix it", Description: "Please fix it", CallerEmail: owner}
		if err := tx.CreateTicket(t.Context(), tk); err != nil {
			return err
		}
		a.Ticket = tk
		return nil
	}))
	return a
}

// JobArgsQuery selects the JSON arguments of River's jobs of one kind (the
// query's one parameter), in order, in db's dialect: River keeps them as
// JSONB on both stores, which SQLite's json() and PostgreSQL's ::text turn
// into text.
func JobArgsQuery(db *store.DB) string {
	if db.Postgres() {
		return `SELECT args::text FROM river_job WHERE kind = $1 ORDER BY id`
	}
	return `SELECT json(args) FROM river_job WHERE kind = ? ORDER BY id`
}
