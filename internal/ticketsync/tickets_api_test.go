package ticketsync_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api/apitest"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
)

// TestTicketAPI: GET /api/v1/tickets/{id} answers a ticket by its
// assignment's ID, shaped exactly like its item in GET /api/v1/tickets;
// outside a scoped token's scope it answers as if there were no ticket;
// and the ticket list defaults to active assignments, as the assignment
// list does.
func TestTicketAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := t.Context()
	ids := b.seed(t, 2)
	b.integration(t, "basic")
	kept, ended := b.assign(t, ids[0], "incident"), b.assign(t, ids[1], "problem")
	b.waitTickets(t, []int64{kept.ID, ended.ID}, 20*time.Second)
	_, err := b.client.DeleteAssignment(ctx, ended.ID, "accepted risk")
	require.NoError(t, err)

	// One ticket, the same as its list item.
	one, err := b.client.GetTicket(ctx, kept.ID)
	require.NoError(t, err)
	require.Equal(t, kept.ID, one.AssignmentID)
	require.Equal(t, steward.AssignmentActive, one.AssignmentState)
	require.Equal(t, owner, one.Owner)
	require.NotEmpty(t, one.Number)
	page, err := b.client.ListTickets(ctx, nil)
	require.NoError(t, err)
	require.Len(t, page.Items, 1, "the default is active assignments only")
	require.Equal(t, jsonOf(t, page.Items[0]), jsonOf(t, one))

	// Ended assignments' tickets: asked for, and still shown one by one.
	all, err := b.client.ListTickets(ctx, url.Values{"assignment_state": {"all"}})
	require.NoError(t, err)
	require.Len(t, all.Items, 2)
	gone, err := b.client.ListTickets(ctx, url.Values{"assignment_state": {"removed"}})
	require.NoError(t, err)
	require.Len(t, gone.Items, 1)
	require.Equal(t, ended.ID, gone.Items[0].AssignmentID)
	endedTicket, err := b.client.GetTicket(ctx, ended.ID)
	require.NoError(t, err)
	require.Equal(t, steward.AssignmentRemoved, endedTicket.AssignmentState)
	_, err = b.client.ListTickets(ctx, url.Values{"assignment_state": {"over"}})
	require.Equal(t, `assignment_state "over" is not one of active, completed, removed, all`, requireAPIError(t, err, http.StatusBadRequest).Message)
	// The assignment list has the same default.
	assignments, err := b.client.ListAssignments(ctx, nil)
	require.NoError(t, err)
	require.Len(t, assignments.Items, 1)
	require.Equal(t, kept.ID, assignments.Items[0].ID)

	// No ticket, and a ticket outside the caller's scope, answer alike.
	_, err = b.client.GetTicket(ctx, 999999)
	require.Equal(t, "assignment 999999 has no ticket", requireAPIError(t, err, http.StatusNotFound).Message)
	elsewhere, err := apiclient.New(b.srv.URL(), authtest.ScopedToken(t, b.srv.DB, "s2-reader", steward.RoleReader, "/subscriptions/s2"))
	require.NoError(t, err)
	elsewhere.WithHTTPClient(apitest.Client(t))
	_, err = elsewhere.GetTicket(ctx, kept.ID)
	require.Equal(t, fmt.Sprintf("assignment %d has no ticket", kept.ID), requireAPIError(t, err, http.StatusNotFound).Message)
	inside, err := apiclient.New(b.srv.URL(), authtest.ScopedToken(t, b.srv.DB, "s1-reader", steward.RoleReader, "/subscriptions/s1"))
	require.NoError(t, err)
	inside.WithHTTPClient(apitest.Client(t))
	_, err = inside.GetTicket(ctx, kept.ID)
	require.NoError(t, err)
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
