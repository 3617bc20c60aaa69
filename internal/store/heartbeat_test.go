package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/pgtest"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestProcessHeartbeat: a process registers with its first heartbeat,
// renews it without changing its start, is listed, and is gone once it
// ends; a record deleted meanwhile comes back with the next heartbeat.
func TestProcessHeartbeat(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		a := store.Process{ClientID: "steward_h1_10_1", Host: "h1", PID: 10}
		require.NoError(t, db.Heartbeat(ctx, a))
		require.NoError(t, db.Heartbeat(ctx, store.Process{ClientID: "steward_h2_20_1", Host: "h2", PID: 20}))
		got, err := db.Processes(ctx)
		require.NoError(t, err)
		require.Len(t, got, 2)
		var first store.Process
		for _, p := range got {
			if p.ClientID == a.ClientID {
				first = p
			}
		}
		require.Equal(t, "h1", first.Host)
		require.Equal(t, 10, first.PID)
		require.WithinDuration(t, time.Now(), first.HeartbeatAt, time.Minute)

		require.Eventually(t, func() bool {
			require.NoError(t, db.Heartbeat(ctx, a))
			got, err := db.Processes(ctx)
			require.NoError(t, err)
			for _, p := range got {
				if p.ClientID == a.ClientID {
					require.Equal(t, first.StartedAt, p.StartedAt, "a heartbeat keeps the start")
					return p.HeartbeatAt.After(first.HeartbeatAt)
				}
			}
			return false
		}, 5*time.Second, 5*time.Millisecond, "the heartbeat is renewed")

		require.NoError(t, db.EndProcess(ctx, a.ClientID))
		got, err = db.Processes(ctx)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, "steward_h2_20_1", got[0].ClientID)
		require.NoError(t, db.Heartbeat(ctx, a))
		got, err = db.Processes(ctx)
		require.NoError(t, err)
		require.Len(t, got, 2)

		if !db.Postgres() {
			n, err := db.RescueJobsOfSilentProcesses(ctx, a.ClientID, 0)
			require.NoError(t, err)
			require.Zero(t, n, "SQLite keeps its own rescue")
		}
	})
}

// TestRescueJobsOfSilentProcesses (PostgreSQL): the job leader makes the
// running job of a process whose heartbeat is stale available again, and
// leaves alone the running jobs of a live process, of a client that never
// registered, and jobs not running; a client that does not lead rescues
// nothing; records silent for longer than ProcessRetention are deleted.
func TestRescueJobsOfSilentProcesses(t *testing.T) {
	db, err := store.Open(t.Context(), pgtest.URL(t), storetest.Logger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	ctx := t.Context()
	const dead, alive, leader, old = "steward_dead", "steward_alive", "steward_leader", "steward_old"
	for _, id := range []string{dead, alive, leader, old} {
		require.NoError(t, db.Heartbeat(ctx, store.Process{ClientID: id, Host: "h", PID: 1}))
	}
	w := db.Writer()
	_, err = w.ExecContext(ctx, `UPDATE process SET heartbeat_at = heartbeat_at - $2 WHERE client_id = $1`, dead, (31 * time.Second).Microseconds())
	require.NoError(t, err)
	_, err = w.ExecContext(ctx, `UPDATE process SET heartbeat_at = heartbeat_at - $2 WHERE client_id = $1`, old, (store.ProcessRetention + time.Hour).Microseconds())
	require.NoError(t, err)

	job := func(state string, attemptedBy ...string) int64 {
		var id int64
		require.NoError(t, w.QueryRowContext(ctx, `INSERT INTO river_job (kind, args, max_attempts, state, attempt, attempted_at, attempted_by, finalized_at)
			VALUES ('test', '{}', 5, $1::river_job_state, 1, now(), $2::text[], CASE WHEN $1 = 'completed' THEN now() END) RETURNING id`,
			state, pgArray(attemptedBy)).Scan(&id))
		return id
	}
	ofDead := job("running", alive, dead) // last picked up by the dead process
	ofAlive := job("running", dead, alive)
	ofStranger := job("running", "steward_unregistered")
	ofOld := job("running", old)
	done := job("completed", dead)
	state := func(id int64) string {
		var s string
		require.NoError(t, w.QueryRowContext(ctx, `SELECT state FROM river_job WHERE id = $1`, id).Scan(&s))
		return s
	}

	// No leader yet: nothing happens.
	n, err := db.RescueJobsOfSilentProcesses(ctx, leader, 30*time.Second)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, "running", state(ofDead))

	_, err = w.ExecContext(ctx, `INSERT INTO river_leader (leader_id, elected_at, expires_at) VALUES ($1, now(), now() + interval '15 seconds')`, leader)
	require.NoError(t, err)
	n, err = db.RescueJobsOfSilentProcesses(ctx, alive, 30*time.Second)
	require.NoError(t, err)
	require.Zero(t, n, "only the leader rescues")

	n, err = db.RescueJobsOfSilentProcesses(ctx, leader, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, 2, n, "the jobs of the dead process and of the long-gone one")
	require.Equal(t, "available", state(ofDead))
	require.Equal(t, "available", state(ofOld))
	require.Equal(t, "running", state(ofAlive))
	require.Equal(t, "running", state(ofStranger))
	require.Equal(t, "completed", state(done))

	procs, err := db.Processes(ctx)
	require.NoError(t, err)
	var ids []string
	for _, p := range procs {
		ids = append(ids, p.ClientID)
	}
	require.ElementsMatch(t, []string{dead, alive, leader}, ids, "the long-gone record is deleted, the dead one kept")

	// With a longer threshold the dead process is not yet silent.
	again := job("running", dead)
	n, err = db.RescueJobsOfSilentProcesses(ctx, leader, time.Minute)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, "running", state(again))
}

// pgArray writes strings as a PostgreSQL text[] literal.
func pgArray(ss []string) string {
	out := "{"
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += `"` + s + `"`
	}
	return out + "}"
}

// TestLiveProcesses (PostgreSQL): what `steward migrate` checks before it
// changes a shared schema. A database without Steward's schema has no
// processes; a process with a fresh heartbeat is listed, one silent for
// longer than the window is not; nothing is migrated by asking.
func TestLiveProcesses(t *testing.T) {
	url := pgtest.URL(t)
	ctx := t.Context()
	live, err := store.LiveProcesses(ctx, url, 30*time.Second)
	require.NoError(t, err)
	require.Empty(t, live, "no schema yet")

	db := storetest.MustOpenURL(t, url)
	require.NoError(t, db.Heartbeat(ctx, store.Process{ClientID: "steward_fresh", Host: "h1", PID: 10}))
	require.NoError(t, db.Heartbeat(ctx, store.Process{ClientID: "steward_silent", Host: "h2", PID: 20}))
	_, err = db.Writer().ExecContext(ctx, `UPDATE process SET heartbeat_at = heartbeat_at - 60000000 WHERE client_id = 'steward_silent'`)
	require.NoError(t, err)

	live, err = store.LiveProcesses(ctx, url, 30*time.Second)
	require.NoError(t, err)
	require.Len(t, live, 1)
	require.Equal(t, "steward_fresh", live[0].ClientID)
	require.Equal(t, "h1", live[0].Host)
	require.Equal(t, 10, live[0].PID)

	live, err = store.LiveProcesses(ctx, "/tmp/any.db", 30*time.Second)
	require.NoError(t, err)
	require.Empty(t, live, "SQLite: the file lock keeps other processes out")
}
