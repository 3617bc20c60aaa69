package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/snowemu"
)

// TestSyncVerbs: 'integrations sync --wait' follows a sync to its report;
// 'integrations status' shows each integration, with or without an ID,
// and never a secret.
func TestSyncVerbs(t *testing.T) {
	t.Parallel()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	emu := snowemu.New(snowemu.Options{}, discard)
	t.Cleanup(func() { _ = emu.Close() })
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	srv := startServer(t)
	token := authtest.Token(t, srv.DB, "cli-tester", steward.RoleSecurityAdmin)

	run := func(args ...string) (string, error) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := newRootCommand(&stdout, &stderr)
		cmd.SetArgs(append([]string{"--server", srv.URL(), "--token", token}, args...))
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		err := cmd.ExecuteContext(ctx)
		return stdout.String(), err
	}
	const hookSecret = "cli-webhook-secret-must-not-leak"
	secretFile := filepath.Join(t.TempDir(), "webhook.secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(hookSecret+"\n"), 0o600))
	_, err := run("integrations", "create", "--name", "emu", "--scope", "/", "--instance-url", hs.URL, "--local",
		"--auth-mode", "basic", "--username", "admin", "--password", "admin")
	require.NoError(t, err)
	_, err = run("integrations", "create", "--name", "emu2", "--scope", "/aws", "--instance-url", hs.URL, "--local",
		"--auth-mode", "basic", "--username", "admin", "--password", "admin", "--webhook-secret-file", secretFile)
	require.NoError(t, err)

	out, err := run("integrations", "status")
	require.NoError(t, err)
	require.Contains(t, out, "LAST POLL OK")
	require.Contains(t, out, "no secret set", "integration 1 has no webhook secret")
	require.Contains(t, out, "emu2")

	out, err = run("integrations", "sync", "1", "--wait")
	require.NoError(t, err)
	require.Contains(t, out, "Checked:")
	require.Contains(t, out, "Repaired:")

	out, err = run("integrations", "status", "2", "-o", "json")
	require.NoError(t, err)
	var st struct {
		WebhookURL       string `json:"webhook_url"`
		HasWebhookSecret bool   `json:"has_webhook_secret"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, srv.URL()+"/api/v1/integrations/2/events", st.WebhookURL)
	require.True(t, st.HasWebhookSecret)
	require.NotContains(t, out, hookSecret)

	out, err = run("integrations", "status", "1")
	require.NoError(t, err)
	require.Contains(t, out, "Webhook URL:")
	require.NotContains(t, out, "Last poll:       never", "after the sync")
	require.NotContains(t, out, "(last successful: never)")

	_, err = run("integrations", "sync", "99")
	require.ErrorContains(t, err, "not found")
}
