package store_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

func newSource(t *testing.T, db *store.DB, name string, secrets store.SourceSecrets) *store.SourceRecord {
	t.Helper()
	s := &store.SourceRecord{Source: steward.Source{Name: name, Kind: "test", Scope: "/subscriptions/s1", Enabled: true,
		Settings: []byte(`{"a":1}`)}, ScheduleEvery: time.Hour}
	require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error { return tx.CreateSource(t.Context(), s, secrets, "admin") }))
	return s
}

// TestSourceSecrets: secrets are sealed (not in the database files in
// clear), bound to their source and field (a ciphertext copied to another
// source does not open), re-sealed by key rotation, and only their names
// are shown.
func TestSourceSecrets(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		box := storetest.Box(t)
		db.SetSecretBox(box)
		const value = "source-secret-3c2b1a0f9e8d"
		a := newSource(t, db, "a", store.SourceSecrets{"client_secret": secret.New(value)})
		b := newSource(t, db, "b", nil)
		require.Equal(t, []string{"client_secret"}, a.SecretFields)

		got, err := db.FindSourceSecrets(t.Context(), a.ID)
		require.NoError(t, err)
		require.Equal(t, value, got["client_secret"].Reveal())
		found, err := db.FindSource(t.Context(), "a")
		require.NoError(t, err)
		require.Equal(t, []string{"client_secret"}, found.SecretFields)
		require.Equal(t, `{"a":1}`, string(found.Settings))

		var sealed []byte
		require.NoError(t, db.Writer().QueryRowContext(t.Context(), db.Bind(`SELECT sealed FROM source_secret WHERE source_id = ?`), a.ID).Scan(&sealed))
		require.False(t, bytes.Contains(sealed, []byte(value)), "the column holds the secret in clear")
		if !db.Postgres() {
			for _, p := range []string{db.Path(), db.Path() + "-wal"} {
				raw, err := os.ReadFile(p)
				if os.IsNotExist(err) {
					continue
				}
				require.NoError(t, err)
				require.False(t, bytes.Contains(raw, []byte(value)), "%s holds the secret in clear", p)
			}
		}

		// Copy a's ciphertext to b: it must not open there.
		_, err = db.Writer().ExecContext(t.Context(), db.Bind(`INSERT INTO source_secret (source_id, field, sealed)
			SELECT CAST(? AS BIGINT), field, sealed FROM source_secret WHERE source_id = ?`), b.ID, a.ID)
		require.NoError(t, err)
		_, err = db.FindSourceSecrets(t.Context(), b.ID)
		storetest.RequireCode(t, err, steward.CodeUnavailable)
		_, err = db.Writer().ExecContext(t.Context(), db.Bind(`DELETE FROM source_secret WHERE source_id = ?`), b.ID)
		require.NoError(t, err)

		// Key rotation re-seals source secrets too.
		next := storetest.Box(t)
		n, err := db.RotateSecrets(t.Context(), box, next)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		got, err = db.FindSourceSecrets(t.Context(), a.ID)
		require.NoError(t, err)
		require.Equal(t, value, got["client_secret"].Reveal())
	})
}

// TestSourceAttribution: observations applied for a source mark their
// assessments with the source and pull; file imports leave them unmarked,
// so the gone rule's candidates are only the source's own, not seen in
// the current pull, not Healthy, in scope.
func TestSourceAttribution(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		db.SetSecretBox(storetest.Box(t))
		src := newSource(t, db, "src", nil)
		r1 := "/subscriptions/s1/vm1"
		r2 := "/subscriptions/s1/vm2"
		other := "/subscriptions/s2/vm3"
		storetest.Apply(t, db, time.Time{}, storetest.Observation("file-rec", r1, steward.StatusUnhealthy))

		apply := func(pull int64, obs ...steward.Observation) {
			require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error {
				_, _, err := tx.ApplyObservationsFrom(t.Context(), obs, time.Time{}, &store.SourceMark{SourceID: src.ID, Pull: pull})
				return err
			}))
		}
		apply(1, storetest.Observation("rec", r1, steward.StatusUnhealthy), storetest.Observation("rec", r2, steward.StatusUnhealthy),
			storetest.Observation("rec", other, steward.StatusUnhealthy))
		apply(2, storetest.Observation("rec", r2, steward.StatusUnhealthy))

		gone, _, err := db.GoneCandidates(t.Context(), src.ID, 2, "/subscriptions/s1", "gone", 0, 100)
		require.NoError(t, err)
		require.Len(t, gone, 1)
		require.Equal(t, r1, gone[0].Resource.ID)
		require.Equal(t, "rec", gone[0].Recommendation.Key)
		require.Equal(t, steward.StatusHealthy, gone[0].Status)
		require.NoError(t, gone[0].Validate())

		gone, _, err = db.GoneCandidates(t.Context(), src.ID, 2, "/", "gone", 0, 100)
		require.NoError(t, err)
		require.Len(t, gone, 2, "r1 and the other subscription's, never the file's")
	})
}

// TestMergeScopeTags: merging keeps keys set by people, takes the
// source's values, and writes (and audits) nothing when nothing changes.
func TestMergeScopeTags(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		merge := func(tags map[string]string) bool {
			var changed bool
			require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error {
				var err error
				changed, err = tx.MergeScopeTags(t.Context(), "/subscriptions/S1", tags, "source:x")
				return err
			}))
			return changed
		}
		require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error {
			_, err := tx.SetScopeTags(t.Context(), "/subscriptions/s1", map[string]string{"owner": "alice"}, "bob")
			return err
		}))
		require.True(t, merge(map[string]string{"env": "prod"}))
		require.False(t, merge(map[string]string{"env": "prod"}))
		tags, err := db.ScopeTagMap(t.Context())
		require.NoError(t, err)
		require.Equal(t, map[string]string{"owner": "alice", "env": "prod"}, tags["/subscriptions/s1"])
		events, _, err := db.FindAuditEvents(t.Context(), store.AuditFilter{ActionPrefix: store.AuditScopeTagsSet})
		require.NoError(t, err)
		require.Len(t, events, 2, "one by bob, one by the source; none for the merge that changed nothing")
	})
}
