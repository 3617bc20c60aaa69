package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/sample"
	"github.com/stewardhq/steward/internal/snowemu"
)

// TestEmulatorWebhooksFlag creates an integration with --emulator-webhooks
// against a running `steward snow-emulator`, then has an agent resolve the
// ticket in the emulator: the emulator's signed webhook reaches Steward,
// which ends the assignment within seconds (the poll runs every 24 h here).
func TestEmulatorWebhooksFlag(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	srv := startServer(t)
	token := authtest.Token(t, srv.DB, "owner", steward.RoleOwner)
	run := func(args ...string) (string, string, error) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := newRootCommand(&stdout, &stderr)
		cmd.SetArgs(append([]string{"--server", srv.URL(), "--token", token}, args...))
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		err := cmd.ExecuteContext(ctx)
		return stdout.String(), stderr.String(), err
	}

	dir := t.TempDir()
	for _, f := range sample.Files() {
		path := filepath.Join(dir, f.Name)
		require.NoError(t, os.WriteFile(path, f.Data, 0o600))
		_, stderr, err := run("import", path)
		require.NoError(t, err, stderr)
	}

	// Refused before anything is created: not an emulator on this machine.
	_, _, err := run("integrations", "create", "--name", "remote", "--scope", "/", "--instance-url", "https://example.service-now.com",
		"--username", "svc.steward", "--password", "password", "--emulator-webhooks")
	require.ErrorContains(t, err, "is not a loopback URL")

	_, stderr, err := run("integrations", "create", "--name", "emulator", "--scope", "/", "--instance-url", emu.URL, "--local",
		"--username", "svc.steward", "--password", snowemu.DefaultUserPassword,
		"--client-id", snowemu.DefaultClientID, "--client-secret", snowemu.DefaultClientSecret,
		"--poll-interval", "24h", "--emulator-webhooks")
	require.NoError(t, err, stderr)
	hookURL := srv.URL() + "/api/v1/integrations/1/events"
	require.Contains(t, stderr, "posts its changes to "+hookURL)
	hooks := emu.Emulator.Webhooks()
	require.Len(t, hooks, 1)
	require.Equal(t, hookURL, hooks[0].URL)
	require.Equal(t, snowemu.SchemeSteward, hooks[0].Scheme)
	require.NotEmpty(t, hooks[0].Secret)
	require.NotContains(t, stderr, hooks[0].Secret, "the secret is not printed")

	client, err := apiclient.New(srv.URL(), token)
	require.NoError(t, err)
	page, err := client.ListAssessments(t.Context(), url.Values{"status": {"Unhealthy"}, "limit": {"1"}})
	require.NoError(t, err)
	require.NotEmpty(t, page.Items)
	_, stderr, err = run("assign", itoa(page.Items[0].ID), "--owner", "beth.anglin@example.com", "--days", "30", "--ticket", "incident")
	require.NoError(t, err, stderr)

	var number string
	require.Eventually(t, func() bool {
		a, err := client.GetAssignment(t.Context(), 1)
		if err == nil && a.Ticket != nil && a.Ticket.Status == steward.TicketCreated {
			number = a.Ticket.Number
			return true
		}
		return false
	}, 15*time.Second, 20*time.Millisecond)

	_, err = emu.Emulator.SetState(snowemu.TableIncident, number, snowemu.StateChange{State: "Resolved", User: "beth.anglin"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		a, err := client.GetAssignment(t.Context(), 1)
		return err == nil && a.State == steward.AssignmentCompleted
	}, 5*time.Second, 20*time.Millisecond, "the webhook ends the assignment within seconds")

	// Deliveries are sent one after another in the background: wait for
	// every queued one before judging them (a loaded machine may still be
	// sending when the assignment has already ended through an earlier
	// delivery's refresh, which reads the record as it is now).
	emu.Emulator.WaitWebhooks()
	accepted := 0
	for _, d := range emu.Emulator.WebhookDeliveries() {
		require.True(t, d.Status >= 200 && d.Status < 300, "delivery failed or refused: %+v", d)
		if strings.Contains(d.Body, `"number":"`+number+`"`) {
			accepted++
		}
	}
	require.NotZero(t, accepted, "Steward accepted the emulator's deliveries")
}
