package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/assignment"
	"github.com/stewardhq/steward/internal/store"
)

// date accepts "2026-12-31" (end of that UTC day) or an RFC 3339 time.
type date struct{ time.Time }

func (d *date) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return invalid("dates are strings such as \"2026-12-31\" or \"2026-12-31T17:00:00Z\"")
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		d.Time = t.Add(24*time.Hour - time.Second)
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return invalid("date %q is neither YYYY-MM-DD nor RFC 3339", s)
	}
	d.Time = t.UTC()
	return nil
}

type createAssignmentRequest struct {
	AssessmentID int64  `json:"assessment_id"`
	Owner        string `json:"owner"`
	// RemediationTimeframeDays sets the due date that many days from now
	// (7, 14, 30, 90 or any positive number); DueDate sets it explicitly.
	RemediationTimeframeDays int    `json:"remediation_timeframe_days"`
	DueDate                  *date  `json:"due_date"`
	GracePeriod              bool   `json:"grace_period"`
	ETA                      *date  `json:"eta"`
	ETAJustification         string `json:"eta_justification"`
	OwnerEmailOptOut         bool   `json:"owner_email_opt_out"`
	ManagerEmailOptOut       bool   `json:"manager_email_opt_out"`
	Reason                   string `json:"reason"`

	// Type servicenow opens a ticket: integration (0 = chosen by scope),
	// ticket type, assigned to (the owner), caller, and optionally the
	// short description and description (default: the integration's
	// templates).
	Type             steward.AssignmentType `json:"type"`
	IntegrationID    int64                  `json:"integration_id"`
	TicketType       steward.TicketType     `json:"ticket_type"`
	AssignedTo       string                 `json:"assigned_to"`
	Caller           string                 `json:"caller"`
	ShortDescription string                 `json:"short_description"`
	Description      string                 `json:"description"`
}

// explicitDue is the due date a request gives explicitly, zero when none.
func explicitDue(d *date) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}

// createAssignment checks the request's shape and scope; package
// assignment validates the rest and creates it.
func (a *API) createAssignment(w http.ResponseWriter, r *http.Request) error {
	var req createAssignmentRequest
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if req.AssessmentID < 1 {
		return invalid("assessment_id is required")
	}
	if err := a.assessmentInScope(r, req.AssessmentID); err != nil {
		return err
	}
	cr := assignment.CreateRequest{
		AssessmentID:             req.AssessmentID,
		Type:                     req.Type,
		Owner:                    req.Owner,
		RemediationTimeframeDays: req.RemediationTimeframeDays,
		DueDate:                  explicitDue(req.DueDate),
		GracePeriod:              req.GracePeriod,
		ETAJustification:         req.ETAJustification,
		OwnerEmailOptOut:         req.OwnerEmailOptOut,
		ManagerEmailOptOut:       req.ManagerEmailOptOut,
		Reason:                   req.Reason,
	}
	if req.ETA != nil {
		cr.ETA = &req.ETA.Time
	}
	switch req.Type {
	case steward.AssignmentServiceNow:
		// On a ServiceNow assignment the owner is the ticket's assignee;
		// assigned_to is the name ServiceNow users know it by.
		if req.AssignedTo != "" {
			if req.Owner != "" && !strings.EqualFold(req.Owner, req.AssignedTo) {
				return invalid("owner and assigned_to differ; on a ServiceNow assignment the owner is the ticket's assignee")
			}
			cr.Owner = req.AssignedTo
		}
		cr.Ticket = &assignment.TicketRequest{IntegrationID: req.IntegrationID, Type: req.TicketType, Caller: req.Caller,
			ShortDescription: req.ShortDescription, Description: req.Description}
	case "", steward.AssignmentManual:
		if req.IntegrationID != 0 || req.TicketType != "" || req.AssignedTo != "" || req.Caller != "" || req.ShortDescription != "" || req.Description != "" {
			return invalid("integration_id, ticket_type, assigned_to, caller, short_description and description need type servicenow")
		}
	default:
		return invalid("type %q is not manual or servicenow", req.Type)
	}
	var as *steward.Assignment
	err := a.db.WithTx(r.Context(), func(tx *store.Tx) error {
		var err error
		as, err = a.tickets.Assignments().Create(r.Context(), tx, cr, actor(r))
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/assignments/"+itoa(as.ID))
	writeJSON(w, http.StatusCreated, as)
	return nil
}

type updateAssignmentRequest struct {
	Owner                    *string         `json:"owner"`
	RemediationTimeframeDays int             `json:"remediation_timeframe_days"`
	DueDate                  *date           `json:"due_date"`
	GracePeriod              *bool           `json:"grace_period"`
	ETA                      json.RawMessage `json:"eta"` // null clears it
	ETAJustification         *string         `json:"eta_justification"`
	OwnerEmailOptOut         *bool           `json:"owner_email_opt_out"`
	ManagerEmailOptOut       *bool           `json:"manager_email_opt_out"`
	Reason                   string          `json:"reason"`
}

func (a *API) updateAssignment(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.assignmentInScope(r, id); err != nil {
		return err
	}
	var req updateAssignmentRequest
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	upd := assignment.Change{
		AssignmentUpdate: store.AssignmentUpdate{
			Owner:              req.Owner,
			GracePeriod:        req.GracePeriod,
			ETAJustification:   req.ETAJustification,
			OwnerEmailOptOut:   req.OwnerEmailOptOut,
			ManagerEmailOptOut: req.ManagerEmailOptOut,
		},
		RemediationTimeframeDays: req.RemediationTimeframeDays,
	}
	if req.DueDate != nil {
		upd.DueDate = &req.DueDate.Time
	}
	switch {
	case len(req.ETA) == 0:
	case bytes.Equal(bytes.TrimSpace(req.ETA), []byte("null")):
		upd.ClearETA = true
	default:
		var eta date
		if err := json.Unmarshal(req.ETA, &eta); err != nil {
			return err
		}
		upd.ETA = &eta.Time
	}
	// One transaction for the change and, on a ServiceNow assignment whose
	// owner changed, the job that writes the ticket's assigned_to.
	var updated *steward.Assignment
	err = a.db.WithTx(r.Context(), func(tx *store.Tx) error {
		var err error
		updated, err = a.tickets.Assignments().Update(r.Context(), tx, id, upd, actor(r), req.Reason)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, updated)
	return nil
}

// deleteAssignment ends the assignment as removed; it stays in history.
func (a *API) deleteAssignment(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q := newQuery(r, "reason")
	reason := q.str("reason")
	if q.err != nil {
		return q.err
	}
	if err := a.assignmentInScope(r, id); err != nil {
		return err
	}
	if reason == "" {
		reason = "removed by " + actor(r)
	}
	var ended *steward.Assignment
	err = a.db.WithTx(r.Context(), func(tx *store.Tx) error {
		var err error
		ended, err = a.tickets.Assignments().End(r.Context(), tx, id, steward.AssignmentRemoved, actor(r), reason)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ended)
	return nil
}

func (a *API) listAssignments(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "owner", "state", "overdue", "due_within_days", "scope", "recommendation", "resource", "assessment", "ticket_state", "ticket_status")
	scope, visible := narrowScope(r, q.scope())
	f := store.AssignmentFilter{
		Owner:             q.str("owner"),
		Scope:             scope,
		RecommendationKey: q.str("recommendation"),
		ResourceID:        q.str("resource"),
		TicketState:       steward.TicketState(q.str("ticket_state")),
		TicketStatus:      steward.TicketStatus(q.str("ticket_status")),
		Cursor:            q.str("cursor"),
		Limit:             q.limit(),
	}
	f.States = q.assignmentStates("state")
	f.AssessmentIDs = q.idList("assessment", store.MaxLimit)
	if q.boolParam("overdue") {
		f.OverdueAt = a.now()
	}
	if days := q.intParam("due_within_days"); days > 0 {
		f.DueBefore = a.now().AddDate(0, 0, days)
	}
	if q.err != nil {
		return q.err
	}
	if !visible {
		writeJSON(w, http.StatusOK, newList[*steward.Assignment](nil, ""))
		return nil
	}
	items, next, err := a.db.FindAssignments(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

// assignmentStates reads a comma list of assignment states from param, for
// the assignment and the ticket listings alike: "all" stands for every
// state, and no value means active only.
func (q *query) assignmentStates(param string) []steward.AssignmentState {
	var out []steward.AssignmentState
	for _, s := range splitList(q.v[param]) {
		switch st := steward.AssignmentState(strings.ToLower(s)); st {
		case steward.AssignmentActive, steward.AssignmentCompleted, steward.AssignmentRemoved:
			out = append(out, st)
		case "all":
			out = append(out, steward.AssignmentActive, steward.AssignmentCompleted, steward.AssignmentRemoved)
		default:
			q.fail(invalid("%s %q is not one of active, completed, removed, all", param, s))
		}
	}
	if len(out) == 0 {
		out = []steward.AssignmentState{steward.AssignmentActive}
	}
	return out
}

func (a *API) getAssignment(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	as, err := a.db.FindAssignmentByID(r.Context(), id)
	if err != nil {
		return err
	}
	if !inCallerScope(r, as.ResourceID) {
		return notFound("assignment %d not found", id)
	}
	events, err := a.db.FindAssignmentEvents(r.Context(), id)
	if err != nil {
		return err
	}
	detail := steward.AssignmentDetail{Assignment: *as, History: make([]steward.AssignmentEvent, 0, len(events))}
	for _, e := range events {
		detail.History = append(detail.History, *e)
	}
	writeJSON(w, http.StatusOK, detail)
	return nil
}

func (a *API) assignmentHistory(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if as, err := a.db.FindAssignmentByID(r.Context(), id); err != nil {
		return err
	} else if !inCallerScope(r, as.ResourceID) {
		return notFound("assignment %d not found", id)
	}
	events, err := a.db.FindAssignmentEvents(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(events, ""))
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
