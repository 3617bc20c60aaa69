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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/sample"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestClientVerbs drives the everyday client verbs against a real server:
// import (the bundled Prowler samples), recommendations list and show,
// assign, assignments list/update/show, with tables and -o json.
func TestClientVerbs(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	token := authtest.Token(t, srv.DB, "cli-tester", steward.RoleContributor)

	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := newRootCommand(&stdout, &stderr)
		cmd.SetArgs(append([]string{"--server", srv.URL(), "--token", token}, args...))
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

// startServer runs a whole Steward on a fresh database and a free port, on
// the store STEWARD_TEST_STORE names (SQLite by default).
func startServer(t *testing.T) *server.Server {
	t.Helper()
	return startServerOn(t, storetest.TestStore(t))
}

// startServerOn is startServer on backend b, for tests about one store.
func startServerOn(t *testing.T, b storetest.Backend) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL, cfg.SecretKey, cfg.SpoolDir = storetest.ServerDatabaseOn(t, b, t.TempDir())
	srv, err := server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestIntegrationMappingFlags sets templates, fixed fields and the severity
// map from the CLI, and checks that an update changes only what it names.
func TestIntegrationMappingFlags(t *testing.T) {
	t.Parallel()
	emu := snowemu.New(snowemu.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = emu.Close() })
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	srv := startServer(t)
	token := authtest.Token(t, srv.DB, "secadmin", steward.RoleSecurityAdmin)
	run := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		cmd := newRootCommand(&stdout, &stderr)
		cmd.SetArgs(append([]string{"--server", srv.URL(), "--token", token, "-o", "json"}, args...))
		err := cmd.ExecuteContext(t.Context())
		return stdout.String(), err
	}
	descFile := filepath.Join(t.TempDir(), "desc.tmpl")
	require.NoError(t, os.WriteFile(descFile, []byte("Fix {{.Recommendation.DisplayName}}, please.\nDue {{date .Assignment.DueDate}}."), 0o600))

	out, err := run("integrations", "create", "--name", "emu", "--scope", "/", "--instance-url", hs.URL, "--local",
		"--username", "admin", "--password", "admin",
		"--template", "incident.short_description=[Sec, {{.Recommendation.Severity}}] {{.Recommendation.DisplayName}}",
		"--template-file", "incident.description="+descFile,
		"--field", "incident.category=security", "--priority", "High=1/1")
	require.NoError(t, err)
	var in steward.Integration
	require.NoError(t, json.Unmarshal([]byte(out), &in))
	m := in.TicketTypes[steward.TicketTypeIncident]
	require.Equal(t, "[Sec, {{.Recommendation.Severity}}] {{.Recommendation.DisplayName}}", m.ShortDescription, "commas in a template survive")
	require.Contains(t, m.Description, "please.\nDue")
	require.Equal(t, "security", m.Fields["category"])
	require.Equal(t, steward.ImpactUrgency{Impact: "1", Urgency: "1"}, in.Priority[steward.SeverityHigh])
	require.Equal(t, steward.DefaultPriority()[steward.SeverityLow], in.Priority[steward.SeverityLow])

	out, err = run("integrations", "update", strconv.FormatInt(in.ID, 10), "--field", "incident.subcategory=cloud", "--priority", "Low=3/3")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(out), &in))
	m = in.TicketTypes[steward.TicketTypeIncident]
	require.Equal(t, map[string]string{"category": "security", "subcategory": "cloud"}, m.Fields, "the update adds, it does not replace")
	require.Contains(t, m.ShortDescription, "[Sec,", "templates are kept")
	require.Equal(t, steward.ImpactUrgency{Impact: "1", Urgency: "1"}, in.Priority[steward.SeverityHigh])
	require.Equal(t, steward.ImpactUrgency{Impact: "3", Urgency: "3"}, in.Priority[steward.SeverityLow])

	_, err = run("integrations", "update", strconv.FormatInt(in.ID, 10), "--template", "incident.short_description={{.Nope}")
	require.ErrorContains(t, err, "short_description template")
	_, err = run("integrations", "update", strconv.FormatInt(in.ID, 10), "--priority", "High=1")
	require.ErrorContains(t, err, "SEVERITY=IMPACT/URGENCY")
}
