package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/snowemu"
)

// TestTicketsShow: `steward tickets show ID` shows one ticket by its
// assignment's ID, and names a missing one.
func TestTicketsShow(t *testing.T) {
	t.Parallel()
	emu := snowemu.New(snowemu.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = emu.Close() })
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	srv := startServer(t)
	token := authtest.Token(t, srv.DB, "cli-tester", steward.RoleOwner)
	ctx := t.Context()
	c, err := apiclient.New(srv.URL(), token)
	require.NoError(t, err)
	_, err = c.PostAssessments(ctx, strings.NewReader(`{"assessments":[{"resource":{"id":"/subscriptions/s1/vm1","cloud":"azure"},
		"recommendation":{"key":"disk-encryption","display_name":"Encrypt disks","severity":"High"},"status":"Unhealthy"}]}`))
	require.NoError(t, err)
	in, err := c.CreateIntegration(ctx, apiclient.IntegrationRequest{Name: ptrTo("emu"), Scope: ptrTo("/"), InstanceURL: ptrTo(hs.URL),
		Local: ptrTo(true), AuthMode: ptrTo("basic"), Username: ptrTo("admin"), Password: ptrTo("admin")})
	require.NoError(t, err)
	list, err := c.ListAssessments(ctx, nil)
	require.NoError(t, err)
	a, err := c.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: list.Items[0].ID, Type: "servicenow",
		IntegrationID: in.ID, TicketType: "incident", AssignedTo: "beth.anglin@example.com", RemediationTimeframeDays: 30})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		tk, err := c.GetTicket(ctx, a.ID)
		return err == nil && tk.Status == steward.TicketCreated
	}, 20*time.Second, 50*time.Millisecond)

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
	out, err := run("tickets", "show", itoa(a.ID))
	require.NoError(t, err)
	tk, err := c.GetTicket(ctx, a.ID)
	require.NoError(t, err)
	for _, want := range []string{tk.Number, tk.Link, "beth.anglin@example.com", "/subscriptions/s1/vm1", "disk-encryption (High)", "active"} {
		require.Contains(t, out, want)
	}
	_, err = run("tickets", "show", "999")
	require.ErrorContains(t, err, "assignment 999 has no ticket")
}
