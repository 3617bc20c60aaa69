package store_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

func TestOrigin(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://acme.service-now.com":          "https://acme.service-now.com:443",
		"HTTPS://ACME.service-now.com/":         "https://acme.service-now.com:443",
		"https://acme.service-now.com:443/x":    "https://acme.service-now.com:443",
		"https://acme.service-now.com:8443":     "https://acme.service-now.com:8443",
		"http://127.0.0.1:8089":                 "http://127.0.0.1:8089",
		"http://localhost":                      "http://localhost:80",
		"http://[::1]:9000/":                    "http://[::1]:9000",
		"ftp://acme.service-now.com":            "",
		"acme.service-now.com":                  "",
		"":                                      "",
		"https://":                              "",
		" https://acme.service-now.com/path?q ": "https://acme.service-now.com:443",
	} {
		require.Equal(t, want, store.Origin(in), in)
	}
}

// TestCredentialOrigin: the store records the origin the password and
// client secret were entered for, and moves it only when they are entered
// again.
func TestCredentialOrigin(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		in := storetest.Integration(t, db, "Prod", "/")
		c, err := db.FindIntegrationCredentials(ctx, in.ID)
		require.NoError(t, err)
		require.Equal(t, "https://example.service-now.com:443", c.Origin)

		update := func(upd store.IntegrationUpdate) {
			t.Helper()
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.UpdateIntegration(ctx, in.ID, upd, "admin@example.com")
				return err
			}))
		}
		other := "https://other.service-now.com"
		update(store.IntegrationUpdate{InstanceURL: &other})
		c, err = db.FindIntegrationCredentials(ctx, in.ID)
		require.NoError(t, err)
		require.Equal(t, "https://example.service-now.com:443", c.Origin, "a new URL alone does not carry the credentials along")

		pw := secret.New("typed-again")
		update(store.IntegrationUpdate{Password: &pw})
		c, err = db.FindIntegrationCredentials(ctx, in.ID)
		require.NoError(t, err)
		require.Equal(t, "https://other.service-now.com:443", c.Origin)
		require.Equal(t, "typed-again", c.Password.Reveal())
	})
}

// TestCredentialOriginMigration: rows that exist when 0005 runs get the
// origin of their instance URL as it is.
func TestCredentialOriginMigration(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackendURL(t, func(t *testing.T, _ storetest.Backend, path string) {
		db, err := store.Open(t.Context(), path, storetest.Logger(t))
		require.NoError(t, err)
		urls := map[string]string{
			"https://Acme.service-now.com/": "https://acme.service-now.com:443",
			"http://127.0.0.1:8089":         "http://127.0.0.1:8089",
			"https://x.service-now.com/a/b": "https://x.service-now.com:443",
		}
		ids := map[string]int64{}
		for u := range urls {
			in := storetest.Integration(t, db, u, "/")
			_, err := db.Writer().ExecContext(t.Context(), db.Bind(`UPDATE integration SET instance_url = ? WHERE id = ?`), u, in.ID)
			require.NoError(t, err)
			ids[u] = in.ID
		}
		box := storetest.Box(t)
		// Back to before 0005: no column, migration not applied.
		for _, q := range []string{
			`ALTER TABLE integration DROP COLUMN credential_origin`,
			`DELETE FROM schema_migrations WHERE version = 5`,
		} {
			_, err := db.Writer().ExecContext(t.Context(), q)
			require.NoError(t, err)
		}
		require.NoError(t, db.Close())

		db, err = store.Open(t.Context(), path, storetest.Logger(t))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		db.SetSecretBox(box)
		for u, want := range urls {
			var got string
			require.NoError(t, db.Writer().QueryRowContext(t.Context(), db.Bind(`SELECT credential_origin FROM integration WHERE id = ?`), ids[u]).Scan(&got))
			require.Equal(t, want, store.Origin(got), u)
		}
	})
}

// TestPreviousWebhookSecret: a replaced webhook secret is kept sealed with
// the time it was replaced, re-sealed by key rotation, and dropped when
// the secret is cleared.
func TestPreviousWebhookSecret(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackendURL(t, func(t *testing.T, backend storetest.Backend, path string) {
		db := storetest.MustOpenURL(t, path)
		ctx := t.Context()
		at := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
		db.Now = func() time.Time { return at }
		box := storetest.Box(t)
		db.SetSecretBox(box)
		in := storetest.Integration(t, db, "Prod", "/")
		set := func(s secret.String) {
			t.Helper()
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.UpdateIntegration(ctx, in.ID, store.IntegrationUpdate{WebhookSecret: &s}, "admin@example.com")
				return err
			}))
		}
		find := func() store.IntegrationCredentials {
			t.Helper()
			c, err := db.FindIntegrationCredentials(ctx, in.ID)
			require.NoError(t, err)
			return c
		}

		set(secret.New("first-webhook-secret"))
		require.True(t, find().PreviousWebhookSecret.IsZero(), "setting the first secret replaces nothing")

		set(secret.New("second-webhook-secret"))
		c := find()
		require.Equal(t, "second-webhook-secret", c.WebhookSecret.Reveal())
		require.Equal(t, "first-webhook-secret", c.PreviousWebhookSecret.Reveal())
		require.Equal(t, at, c.WebhookSecretReplacedAt)

		at = at.Add(time.Minute)
		set(secret.New("second-webhook-secret"))
		c = find()
		require.Equal(t, "first-webhook-secret", c.PreviousWebhookSecret.Reveal(), "the same secret again replaces nothing")
		require.Equal(t, at.Add(-time.Minute), c.WebhookSecretReplacedAt)

		// Sealed at rest, and re-sealed with the others when the key rotates.
		var raw []byte
		require.NoError(t, db.Writer().QueryRowContext(ctx, db.Bind(`SELECT webhook_secret_previous FROM integration WHERE id = ?`), in.ID).Scan(&raw))
		require.NotEmpty(t, raw)
		require.NotContains(t, string(raw), "first-webhook-secret")
		for _, f := range []string{path, path + "-wal"} {
			if backend != storetest.SQLite {
				break // no files here; the column was checked above
			}
			b, err := os.ReadFile(f)
			if os.IsNotExist(err) {
				continue
			}
			require.NoError(t, err)
			require.False(t, strings.Contains(string(b), "first-webhook-secret"), "plaintext in %s", f)
		}
		n, err := db.RotateSecrets(ctx, box, storetest.Box(t))
		require.NoError(t, err)
		require.Equal(t, 3, n, "password, webhook secret and the previous one")
		require.Equal(t, "first-webhook-secret", find().PreviousWebhookSecret.Reveal())

		// Clearing turns verification off: no old secret is left working.
		set(secret.String{})
		c = find()
		require.True(t, c.WebhookSecret.IsZero())
		require.True(t, c.PreviousWebhookSecret.IsZero())
	})
}
