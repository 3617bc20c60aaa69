package api

import (
	"net/http"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Tickets have no ID of their own: a ticket belongs to exactly one
// assignment and is named by that assignment's ID, as assignment_id in
// every ticket the API shows.

func (a *API) listTickets(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "integration", "type", "state", "status", "recommendation", "owner", "assignment_state")
	f := store.TicketFilter{
		Scope:             callerScope(r),
		IntegrationID:     int64(q.intParam("integration")),
		RecommendationKey: q.str("recommendation"),
		Owner:             q.str("owner"),
		Cursor:            q.str("cursor"),
		Limit:             q.limit(),
	}
	if s := q.str("type"); s != "" {
		tt, err := steward.ParseTicketType(s)
		q.fail(err)
		f.Type = tt
	}
	if s := q.str("state"); s != "" {
		f.State = steward.TicketState(s)
		switch f.State {
		case steward.TicketNew, steward.TicketInProgress, steward.TicketOnHold, steward.TicketResolved, steward.TicketClosed, steward.TicketCanceled:
		default:
			q.fail(invalid("state %q is not one of New, InProgress, OnHold, Resolved, Closed, Canceled", s))
		}
	}
	if s := q.str("status"); s != "" {
		f.Status = steward.TicketStatus(s)
		switch f.Status {
		case steward.TicketPending, steward.TicketDeferred, steward.TicketCreated, steward.TicketRetrying, steward.TicketFailed:
		default:
			q.fail(invalid("status %q is not one of pending, deferred, created, retrying, failed", s))
		}
	}
	f.AssignmentStates = q.assignmentStates("assignment_state")
	if q.err != nil {
		return q.err
	}
	items, next, err := a.db.FindTickets(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

// getTicket answers one ticket by its assignment's ID, shaped like an item
// of GET /api/v1/tickets.
func (a *API) getTicket(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	v, err := a.db.FindTicketView(r.Context(), id)
	if err != nil {
		return err
	}
	if !inCallerScope(r, v.ResourceID) {
		// The store's own words for a missing ticket, so a scoped caller
		// cannot tell the two apart.
		return notFound("assignment %d has no ticket", id)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
