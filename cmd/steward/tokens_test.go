package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/config"
)

// cli3 runs one CLI command in-process and returns stdout, stderr and
// its error.
func cli3(ctx context.Context, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(&stdout, &stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return stdout.String(), stderr.String(), err
}

// TestTokensOnTheDatabaseFile: the first token is made on the database
// file while the server runs; tokens list and revoke work the same way,
// and a revoked token is refused at once.
func TestTokensOnTheDatabaseFile(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	db := srv.DB.Path()
	ctx := t.Context()

	out, errOut, err := cli3(ctx, "tokens", "create", "--db", db, "--name", "admin", "--role", "owner", "-o", "json")
	require.NoError(t, err, errOut)
	var issued steward.IssuedToken
	require.NoError(t, json.Unmarshal([]byte(out), &issued))
	require.True(t, strings.HasPrefix(issued.Secret, "stw_"))
	require.Equal(t, steward.RoleOwner, issued.Role)

	// Table output: the secret alone on stdout, the warning on stderr.
	out, errOut, err = cli3(ctx, "tokens", "create", "--db", db, "--name", "ci", "--role", "contributor", "--scope", "/subscriptions/s1", "--expires", "90d")
	require.NoError(t, err, errOut)
	ciToken := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(ciToken, "stw_"))
	require.Contains(t, errOut, "not shown again")

	// Through the API with the first token.
	out, errOut, err = cli3(ctx, "--server", srv.URL(), "--token", issued.Secret, "tokens", "list")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "admin")
	require.Contains(t, out, "/subscriptions/s1")
	require.NotContains(t, out, issued.Secret)
	require.NotContains(t, out, ciToken)
	_, errOut, err = cli3(ctx, "--server", srv.URL(), "--token", ciToken, "assignments", "list")
	require.NoError(t, err, errOut)

	// Revoke by name on the file; the API refuses the token from then on,
	// and the CLI says how to get a working one.
	_, errOut, err = cli3(ctx, "tokens", "revoke", "--db", db, "ci")
	require.NoError(t, err, errOut)
	_, _, err = cli3(ctx, "--server", srv.URL(), "--token", ciToken, "assignments", "list")
	require.Error(t, err)
	require.Contains(t, userMessage(err), "revoked")
	require.Contains(t, userMessage(err), "steward login")

	// A reader may not create tokens.
	out, errOut, err = cli3(ctx, "tokens", "create", "--db", db, "--name", "viewer", "--role", "reader", "-o", "json")
	require.NoError(t, err, errOut)
	var viewer steward.IssuedToken
	require.NoError(t, json.Unmarshal([]byte(out), &viewer))
	_, _, err = cli3(ctx, "--server", srv.URL(), "--token", viewer.Secret, "tokens", "create", "--name", "x", "--role", "owner")
	require.ErrorContains(t, err, "needs the owner role")

	// A mistyped path never makes a new, empty database.
	missing := filepath.Join(t.TempDir(), "nope.db")
	_, _, err = cli3(ctx, "tokens", "create", "--db", missing, "--name", "a", "--role", "owner")
	require.ErrorContains(t, err, "does not exist")
	require.NoFileExists(t, missing)
}

// TestLoginSavesTheToken: login checks the token, saves it 0600 in the
// config directory, and client verbs use it without a flag; logout
// forgets it.
func TestLoginSavesTheToken(t *testing.T) {
	cfgDir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgDir)
	t.Setenv("HOME", cfgDir)
	t.Setenv("STEWARD_TOKEN", "")
	t.Setenv("STEWARD_DATABASE_URL", filepath.Join(t.TempDir(), "none.db"))
	srv := startServer(t)
	ctx := t.Context()
	out, errOut, err := cli3(ctx, "tokens", "create", "--db", srv.DB.Path(), "--name", "alice@example.com", "--role", "reader")
	require.NoError(t, err, errOut)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(out), 0o600))

	_, _, err = cli3(ctx, "--server", srv.URL(), "assignments", "list")
	require.Error(t, err, "no token yet")
	require.Contains(t, userMessage(err), "authentication required")

	_, _, err = cli3(ctx, "--server", srv.URL(), "login", "--token-file", filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
	bad := filepath.Join(t.TempDir(), "bad")
	require.NoError(t, os.WriteFile(bad, []byte("stw_wrong\n"), 0o600))
	_, _, err = cli3(ctx, "--server", srv.URL(), "login", "--token-file", bad)
	require.ErrorContains(t, err, "unknown API token")

	out, errOut, err = cli3(ctx, "--server", srv.URL(), "login", "--token-file", tokenFile)
	require.NoError(t, err, errOut)
	require.Contains(t, out, "as alice@example.com (reader)")
	creds := filepath.Join(cfgDir, "steward", "credentials.json")
	st, err := os.Stat(creds)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	dst, err := os.Stat(filepath.Dir(creds))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), dst.Mode().Perm())

	_, errOut, err = cli3(ctx, "--server", srv.URL(), "assignments", "list")
	require.NoError(t, err, errOut)
	_, errOut, err = cli3(ctx, "--server", srv.URL()+"/", "assignments", "list")
	require.NoError(t, err, "the same server spelled with a slash: %s", errOut)

	out, _, err = cli3(ctx, "--server", srv.URL(), "logout")
	require.NoError(t, err)
	require.Contains(t, out, "Forgot")
	_, _, err = cli3(ctx, "--server", srv.URL(), "assignments", "list")
	require.Error(t, err)
}

// TestServeSampleOwnerToken: 'serve --sample' on a new database writes an
// owner token next to it (0600; the log names the file, never the token),
// and client verbs on this machine find it with no flag — the README
// walkthrough.
func TestServeSampleOwnerToken(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "steward.db")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("STEWARD_TOKEN", "")
	t.Setenv("STEWARD_DATABASE_URL", db)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	cmd := newRootCommand(&bytes.Buffer{}, logs)
	cmd.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--sample"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})

	addrRE := regexp.MustCompile(`msg="steward listening" addr=(\S+)`)
	var addr string
	require.Eventually(t, func() bool {
		m := addrRE.FindStringSubmatch(logs.String())
		if m != nil {
			addr = m[1]
		}
		return addr != "" && strings.Count(logs.String(), "sample imported") == 3
	}, 60*time.Second, 50*time.Millisecond, "logs: %s", logs)

	tokenPath := filepath.Join(dir, "steward.token")
	st, err := os.Stat(tokenPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	raw, err := os.ReadFile(tokenPath)
	require.NoError(t, err)
	token := strings.TrimSpace(string(raw))
	require.True(t, strings.HasPrefix(token, "stw_"))
	require.Contains(t, logs.String(), tokenPath)
	require.NotContains(t, logs.String(), token)

	out, errOut, err := cli3(t.Context(), "--server", "http://"+addr, "recommendations", "list")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "prowler:")

	// Only ever sent to a server on this machine.
	src := tokenSource{getenv: os.Getenv, configDir: os.UserConfigDir}
	got, _ := src.token("http://" + addr)
	require.Equal(t, token, got)
	got, _ = src.token("https://steward.example.com")
	require.Empty(t, got, "the local token file is not offered to another host")
	cfg, err := config.FromEnv(os.Getenv)
	require.NoError(t, err)
	require.Equal(t, tokenPath, cfg.TokenFile())
}
