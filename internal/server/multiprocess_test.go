package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/pgtest"
)

// cluster is several servers in this process on one PostgreSQL database,
// as several `steward serve` processes behind a load balancer would be:
// one database URL, one secret key, one spool directory.
type cluster struct {
	url, key, spool string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return &cluster{url: pgtest.URL(t), key: base64.StdEncoding.EncodeToString(make([]byte, 32)), spool: filepath.Join(t.TempDir(), "spool")}
}

// start starts one more server of the cluster.
func (c *cluster) start(t *testing.T, opts ...server.Option) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = c.url
	cfg.SecretKey = c.key
	cfg.SpoolDir = c.spool
	cfg.ShutdownTimeout = 10 * time.Second
	srv, err := server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})), opts...)
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Shutdown(context.Background())) })
	return srv
}

// countJobs counts the jobs of kind River has on the database.
func countJobs(t *testing.T, db *sql.DB, kind string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT count(*) FROM river_job WHERE kind = $1`, kind).Scan(&n))
	return n
}

// TestPeriodicJobsOncePerPeriodAcrossProcesses: three servers on one
// PostgreSQL database enqueue the sync and source schedule jobs once per
// period between them, not once per server: only River's elected leader
// runs the periodic enqueuer. With a 1 s period, eight schedule jobs take
// about eight seconds, where three enqueuers would make them in three.
func TestPeriodicJobsOncePerPeriodAcrossProcesses(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	const period = time.Second
	timing := server.WithProcessTiming(time.Second, 30*time.Second, 10*time.Second, period)
	var servers []*server.Server
	for range 3 {
		servers = append(servers, c.start(t, timing))
	}
	w := servers[0].DB.Writer()

	// The count starts at the first job, whichever server enqueued it.
	require.Eventually(t, func() bool { return countJobs(t, w, "sync_schedule") >= 1 }, 30*time.Second, 10*time.Millisecond)
	began := time.Now()
	first := countJobs(t, w, "sync_schedule")
	const want = 8
	require.Eventually(t, func() bool { return countJobs(t, w, "sync_schedule") >= first+want }, 60*time.Second, 20*time.Millisecond)
	took := time.Since(began)
	syncJobs, sourceJobs := countJobs(t, w, "sync_schedule"), countJobs(t, w, "source_schedule")
	t.Logf("%d sync_schedule jobs in %v (period %v, 3 servers); %d source_schedule jobs in all", syncJobs-first, took.Round(time.Millisecond), period, sourceJobs)
	// One enqueuer: want jobs take want periods, less one for the
	// rounding of the first and last tick. Three would take a third.
	require.GreaterOrEqual(t, took, (want-1)*period, "%d schedule jobs in %v: more than one per period", want, took)
	require.InDelta(t, syncJobs, sourceJobs, 2, "the source schedule runs on the same leader, once per period too")

	// One leader, and it is one of the three.
	var leader string
	require.NoError(t, w.QueryRowContext(t.Context(), `SELECT leader_id FROM river_leader`).Scan(&leader))
	var ids []string
	for _, s := range servers {
		ids = append(ids, s.ClientID())
	}
	require.Contains(t, ids, leader)
}

// TestProcessesShareOneDatabase: three servers on one PostgreSQL database
// each register with a heartbeat and say they are ready; what is written
// through one is read through another; a server that stops cleanly
// deletes its record.
func TestProcessesShareOneDatabase(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	timing := server.WithProcessTiming(100*time.Millisecond, 30*time.Second, 10*time.Second, 0)
	a, b, third := c.start(t, timing), c.start(t, timing), c.start(t, timing)

	procs, err := a.DB.Processes(t.Context())
	require.NoError(t, err)
	require.Len(t, procs, 3)
	for _, s := range []*server.Server{a, b, third} {
		resp, err := http.Get(s.URL() + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	before := procs[0].HeartbeatAt
	require.Eventually(t, func() bool {
		procs, err := a.DB.Processes(t.Context())
		require.NoError(t, err)
		return procs[0].HeartbeatAt.After(before)
	}, 10*time.Second, 20*time.Millisecond, "heartbeats are renewed")

	token := authtest.Token(t, a.DB, "tester@example.com", steward.RoleOwner)
	ca, err := apiclient.New(a.URL(), token)
	require.NoError(t, err)
	cb, err := apiclient.New(b.URL(), token)
	require.NoError(t, err)
	_, err = ca.PostAssessments(t.Context(), bytes.NewReader(batch(row("k1", "High", "/subscriptions/s1/vm1", "Unhealthy"))))
	require.NoError(t, err)
	page, err := cb.ListAssessments(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, page.Items, 1)

	require.NoError(t, third.Shutdown(context.Background()))
	procs, err = a.DB.Processes(t.Context())
	require.NoError(t, err)
	require.Len(t, procs, 2)
	for _, p := range procs {
		require.NotEqual(t, third.ClientID(), p.ClientID)
	}
}

// TestJobsOfASilentProcessAreRetried: a job left running by a process
// whose heartbeat has gone stale is made available again by the job
// leader among live servers, and worked; one running under a process that
// keeps its heartbeat is left alone.
func TestJobsOfASilentProcessAreRetried(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	const stale = time.Second
	timing := server.WithProcessTiming(100*time.Millisecond, stale, 100*time.Millisecond, 0)
	a := c.start(t, timing)
	c.start(t, timing)
	ctx := t.Context()
	w := a.DB.Writer()

	// Two processes that are not servers: one went silent two periods ago,
	// the other keeps renewing its heartbeat.
	dead := store.Process{ClientID: "steward_gone_1_1", Host: "gone", PID: 1}
	alive := store.Process{ClientID: "steward_busy_2_1", Host: "busy", PID: 2}
	require.NoError(t, a.DB.Heartbeat(ctx, dead))
	_, err := w.ExecContext(ctx, `UPDATE process SET heartbeat_at = heartbeat_at - $2 WHERE client_id = $1`, dead.ClientID, (2 * stale).Microseconds())
	require.NoError(t, err)
	beat, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for beat.Err() == nil {
			_ = a.DB.Heartbeat(beat, alive)
			select {
			case <-beat.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	// A recompute (a job every server works) each process left running.
	job := func(by string) int64 {
		var id int64
		require.NoError(t, w.QueryRowContext(ctx, `INSERT INTO river_job (kind, args, queue, max_attempts, state, attempt, attempted_at, attempted_by)
			VALUES ('recommendation_summaries_recompute', '{}', 'default', 5, 'running', 1, now(), ARRAY[$1]::text[]) RETURNING id`, by).Scan(&id))
		return id
	}
	ofDead, ofAlive := job(dead.ClientID), job(alive.ClientID)
	state := func(id int64) (s string, by []byte) {
		require.NoError(t, w.QueryRowContext(ctx, `SELECT state, array_to_json(attempted_by) FROM river_job WHERE id = $1`, id).Scan(&s, &by))
		return s, by
	}
	require.Eventually(t, func() bool {
		s, _ := state(ofDead)
		return s == "completed"
	}, 30*time.Second, 20*time.Millisecond, "the silent process's job is retried and worked")
	_, by := state(ofDead)
	t.Logf("attempted by %s", by)
	// Several rescue rounds have run since; the live process's job stays.
	s, _ := state(ofAlive)
	require.Equal(t, "running", s)
}

// TestDatabasePasswordNeverShown: the database URL's password appears in
// no log line, at debug level, of a server that starts, serves and stops,
// nor in the error of one whose database does not exist.
func TestDatabasePasswordNeverShown(t *testing.T) {
	t.Parallel()
	const password = "pw-Never-Shown-7d1c"
	withPassword := func(raw string) string {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		u.User = url.UserPassword(u.User.Username(), password)
		return u.String()
	}
	var logs syncBuffer
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = withPassword(pgtest.URL(t)) // the test server does not check passwords
	cfg.SecretKey = base64.StdEncoding.EncodeToString(make([]byte, 32))
	cfg.SpoolDir = t.TempDir()
	srv, err := server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	resp, err := http.Get(srv.URL() + "/readyz")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, string(body), password)
	require.NoError(t, srv.Shutdown(context.Background()))
	require.Contains(t, logs.String(), "steward listening")
	require.Contains(t, logs.String(), "xxxxx", "the URL is logged, redacted")
	require.NotContains(t, logs.String(), password)

	u, err := url.Parse(cfg.DatabaseURL)
	require.NoError(t, err)
	u.Path = "/steward_no_such_database"
	cfg.DatabaseURL = u.String()
	_, err = server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.Error(t, err)
	require.Equal(t, steward.CodeUnavailable, steward.ErrorCode(err))
	require.Contains(t, err.Error(), "steward_no_such_database")
	require.NotContains(t, err.Error(), password)
	require.NotContains(t, logs.String(), password)
}

// storeKind is a store the end-to-end tests run a server on.
type storeKind string

const (
	onSQLite   storeKind = "SQLite"
	onPostgres storeKind = "PostgreSQL"
)

// forEachStore runs fn as a parallel subtest on each store. The PostgreSQL
// one is skipped without STEWARD_TEST_POSTGRES_URL (failed under CI=true).
func forEachStore(t *testing.T, fn func(t *testing.T, st storeKind)) {
	for _, st := range []storeKind{onSQLite, onPostgres} {
		t.Run(string(st), func(t *testing.T) {
			t.Parallel()
			fn(t, st)
		})
	}
}

// configure returns the config edit that puts a server on a fresh
// database of st: nothing for SQLite (startInbound's file), a database of
// its own for PostgreSQL, with the key and spool it needs.
func (st storeKind) configure(t *testing.T) func(*config.Config) {
	if st == onSQLite {
		return nil
	}
	url, spool := pgtest.URL(t), t.TempDir()
	return func(c *config.Config) {
		c.DatabaseURL = url
		c.SecretKey = base64.StdEncoding.EncodeToString(make([]byte, 32))
		c.SpoolDir = spool
	}
}
