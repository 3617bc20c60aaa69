package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/collector"
	"github.com/stewardhq/steward/internal/collector/collectortest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestSourcesVerbs drives `steward sources` against a real server with the
// scripted test kind registered: add (secret from a file), list, show, run
// --wait, status, update, delete; a failed run exits with its error.
func TestSourcesVerbs(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL, cfg.SecretKey, cfg.SpoolDir = storetest.ServerDatabase(t, t.TempDir())
	srv, err := server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)),
		server.WithSourceKinds(collector.Registry{collectortest.KindName: collectortest.Kind()}))
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	token := authtest.Token(t, srv.DB, "cli-admin", steward.RoleSecurityAdmin)

	exec := func(args ...string) (string, string, error) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := newRootCommand(&stdout, &stderr)
		cmd.SetArgs(append([]string{"--server", srv.URL(), "--token", token}, args...))
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		err := cmd.ExecuteContext(ctx)
		return stdout.String(), stderr.String(), err
	}
	run := func(args ...string) string {
		t.Helper()
		out, stderr, err := exec(args...)
		require.NoError(t, err, "steward %s: %s", strings.Join(args, " "), stderr)
		return out
	}

	script := "cli-" + t.Name()
	unit := pull.Unit{ID: "cli1", Scope: "/subscriptions/cli1"}
	collectortest.SetScript(script, collectortest.Serve(collectortest.Unit{Unit: unit, Obs: []steward.Observation{{
		Resource:       steward.Resource{ID: "/subscriptions/cli1/vm1", Cloud: steward.CloudAzure},
		Recommendation: steward.Recommendation{Key: "cli-rec", DisplayName: "cli rec", Severity: steward.SeverityLow, Source: "test"},
		Status:         steward.StatusUnhealthy,
	}}}))
	const secretText = "cli-secret-7a6b5c4d"
	secretFile := filepath.Join(t.TempDir(), "token.txt")
	require.NoError(t, os.WriteFile(secretFile, []byte(secretText+"\n"), 0o600))

	out := run("sources", "add", "azure-cli", "--kind", "test", "--scope", "/subscriptions/cli1", "--schedule", "2h",
		"--settings", `{"script":"`+script+`"}`, "--secret-file", "token="+secretFile, "--disabled")
	require.Contains(t, out, "azure-cli")
	require.Contains(t, out, "token true")
	require.NotContains(t, out, secretText)

	list := run("sources", "list")
	require.Contains(t, list, "azure-cli")
	require.Contains(t, list, "disabled")

	out = run("sources", "run", "azure-cli", "--wait")
	require.Contains(t, out, "State:")
	require.Contains(t, out, "done")
	require.Contains(t, out, "Unit cli1:")
	require.Contains(t, out, "1 observed")

	var runs struct {
		Items []steward.SourceRun `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(run("sources", "status", "azure-cli", "-o", "json")), &runs))
	require.Len(t, runs.Items, 1)
	require.Equal(t, 1, runs.Items[0].New)

	show := run("sources", "show", "azure-cli", "-o", "json")
	require.NotContains(t, show, secretText)
	require.Contains(t, show, `"has_token": true`)

	out = run("sources", "update", "azure-cli", "--schedule", "30m", "--enable")
	require.Contains(t, out, "every 30m")

	// A failing pull: the command fails with the run's error.
	collectortest.SetScript(script, collectortest.Serve(collectortest.Unit{Unit: unit,
		Fail: steward.Errorf(steward.CodeUnavailable, "subscription cli1: credential refused")}))
	_, _, err = exec("sources", "run", "azure-cli", "--wait")
	require.ErrorContains(t, err, "credential refused")

	// An unknown kind is refused naming it.
	_, _, err = exec("sources", "add", "x", "--kind", "nope", "--scope", "/")
	require.ErrorContains(t, err, `unknown source kind "nope"`)

	require.Contains(t, run("sources", "delete", "azure-cli"), "azure-cli (1)")
	require.NotContains(t, run("sources", "list"), "azure-cli")
}
