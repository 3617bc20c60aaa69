package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/sample"
	"github.com/stewardhq/steward/internal/server"
)

// TestClientVerbs drives the everyday client verbs against a real server:
// import (the bundled Prowler samples), recommendations list and show,
// assign, assignments list/update/show, with tables and -o json.
func TestClientVerbs(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = filepath.Join(t.TempDir(), "steward.db")
	srv, err := server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })

	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := newRootCommand(&stdout, &stderr)
		cmd.SetArgs(append([]string{"--server", srv.URL(), "--as", "cli-tester"}, args...))
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		require.NoError(t, cmd.ExecuteContext(ctx), "steward %s: %s", strings.Join(args, " "), stderr.String())
		return stdout.String()
	}

	dir := t.TempDir()
	for _, f := range sample.Files() {
		path := filepath.Join(dir, f.Name)
		require.NoError(t, os.WriteFile(path, f.Data, 0o600))
		out := run("import", path)
		require.Contains(t, out, "succeeded")
		require.Contains(t, out, "ocsf")
	}

	table := run("recommendations", "list", "--severity", "Critical,High")
	require.Contains(t, table, "SEVERITY")
	require.Contains(t, table, "prowler:gcp:compute_firewall_rdp_access_from_the_internet_allowed")
	require.NotContains(t, table, "prowler:aws:accessanalyzer_enabled", "a Low check is filtered out")

	var recs struct {
		Items []struct {
			Key       string `json:"key"`
			Unhealthy int    `json:"unhealthy"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(run("recommendations", "list", "-o", "json", "--cloud", "azure")), &recs))
	require.NotEmpty(t, recs.Items)
	key := ""
	for _, r := range recs.Items {
		require.True(t, strings.HasPrefix(r.Key, "prowler:azure:"), r.Key)
		if r.Unhealthy > 0 && key == "" {
			key = r.Key
		}
	}
	require.NotEmpty(t, key)

	var detail struct {
		Affected struct {
			Items []struct {
				ID int64 `json:"id"`
			} `json:"items"`
		} `json:"affected"`
	}
	require.NoError(t, json.Unmarshal([]byte(run("recommendations", "show", key, "-o", "json")), &detail))
	require.NotEmpty(t, detail.Affected.Items)
	assessment := detail.Affected.Items[0].ID
	require.Contains(t, run("recommendations", "show", key), "Affected resources:")

	out := run("assign", itoa(assessment), "--owner", "alice@example.com", "--days", "14", "--reason", "owns it")
	require.Contains(t, out, "alice@example.com")
	var assignments struct {
		Items []struct {
			ID    int64  `json:"id"`
			Owner string `json:"owner"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(run("assignments", "list", "--owner", "alice@example.com", "-o", "json")), &assignments))
	require.Len(t, assignments.Items, 1)
	id := itoa(assignments.Items[0].ID)

	run("assignments", "update", id, "--owner", "bob@example.com", "--reason", "handover")
	show := run("assignments", "show", id)
	require.Contains(t, show, "owner: alice@example.com → bob@example.com")
	require.Contains(t, show, "cli-tester", "the actor is recorded")
	require.Contains(t, run("assignments", "list", "--due-within", "15"), "bob@example.com")
	require.NotContains(t, run("assignments", "list", "--overdue"), "bob@example.com")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
