package api

import (
	"net/http"
	"strconv"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
)

// integrationRequest is the body of POST and PATCH /api/v1/integrations.
// Secrets are write-only: they are never returned.
type integrationRequest struct {
	Name              *string                                       `json:"name"`
	Type              *steward.IntegrationType                      `json:"type"`
	Scope             *steward.Scope                                `json:"scope"`
	InstanceURL       *string                                       `json:"instance_url"`
	Local             *bool                                         `json:"local"`
	AuthMode          *steward.AuthMode                             `json:"auth_mode"`
	Username          *string                                       `json:"username"`
	Password          *secret.String                                `json:"password"`
	ClientID          *string                                       `json:"client_id"`
	ClientSecret      *secret.String                                `json:"client_secret"`
	WebhookSecret     *secret.String                                `json:"webhook_secret"`
	TicketTypes       *map[steward.TicketType]steward.TicketMapping `json:"ticket_types"`
	Priority          *map[steward.Severity]steward.ImpactUrgency   `json:"priority"`
	RequestsPerSecond *float64                                      `json:"requests_per_second"`
	Sync              *steward.SyncSettings                         `json:"sync"`
	SkipValidation    bool                                          `json:"skip_validation"`
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (a *API) createIntegration(w http.ResponseWriter, r *http.Request) error {
	var req integrationRequest
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	in := &steward.Integration{
		Name: deref(req.Name), Type: deref(req.Type), Scope: deref(req.Scope), InstanceURL: deref(req.InstanceURL),
		Local: deref(req.Local), AuthMode: deref(req.AuthMode), Username: deref(req.Username), ClientID: deref(req.ClientID),
		TicketTypes: deref(req.TicketTypes), Priority: deref(req.Priority), RequestsPerSecond: deref(req.RequestsPerSecond),
		Sync: deref(req.Sync),
	}
	if !scopeWithin(r, in.Scope) {
		return steward.Errorf(steward.CodeForbidden, "scope %q is not inside this token's scope %s", in.Scope, callerScope(r))
	}
	secrets := store.IntegrationSecrets{Password: deref(req.Password), ClientSecret: deref(req.ClientSecret), WebhookSecret: deref(req.WebhookSecret)}
	if err := a.tickets.CreateIntegration(r.Context(), in, secrets, req.SkipValidation, actor(r)); err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/integrations/"+strconv.FormatInt(in.ID, 10))
	writeJSON(w, http.StatusCreated, in)
	return nil
}

func (a *API) updateIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req integrationRequest
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if req.Type != nil {
		return invalid("type cannot be changed")
	}
	if err := a.integrationInScope(r, id); err != nil {
		return err
	}
	if req.Scope != nil && !scopeWithin(r, *req.Scope) {
		return steward.Errorf(steward.CodeForbidden, "scope %q is not inside this token's scope %s", *req.Scope, callerScope(r))
	}
	upd := store.IntegrationUpdate{
		Name: req.Name, Scope: req.Scope, InstanceURL: req.InstanceURL, Local: req.Local, AuthMode: req.AuthMode,
		Username: req.Username, ClientID: req.ClientID, Password: req.Password, ClientSecret: req.ClientSecret,
		WebhookSecret: req.WebhookSecret, TicketTypes: req.TicketTypes, Priority: req.Priority,
		RequestsPerSecond: req.RequestsPerSecond, Sync: req.Sync,
	}
	in, err := a.tickets.UpdateIntegration(r.Context(), id, upd, req.SkipValidation, actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, in)
	return nil
}

func (a *API) listIntegrations(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	all, err := a.db.FindIntegrations(r.Context())
	if err != nil {
		return err
	}
	visible := all[:0]
	for _, in := range all {
		if scopeWithin(r, in.Scope) {
			visible = append(visible, in)
		}
	}
	all = visible
	writeJSON(w, http.StatusOK, newList(all, ""))
	return nil
}

type integrationDetail struct {
	*steward.Integration
	// Pending is what is left to remove while the integration is deleting.
	Pending *store.DeletePreview `json:"pending_delete,omitempty"`
}

func (a *API) getIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	in, err := a.db.FindIntegrationByID(r.Context(), id)
	if err != nil {
		return err
	}
	if !scopeWithin(r, in.Scope) {
		return notFound("integration %d not found", id)
	}
	d := integrationDetail{Integration: in}
	if in.State == steward.IntegrationDeleting {
		p, err := a.db.IntegrationDeletePreview(r.Context(), id)
		if err != nil {
			return err
		}
		d.Pending = &p
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (a *API) integrationDeletePreview(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.integrationInScope(r, id); err != nil {
		return err
	}
	if _, err := a.db.FindIntegrationByID(r.Context(), id); err != nil {
		return err
	}
	p, err := a.db.IntegrationDeletePreview(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// deleteIntegration needs confirm=true: without it, it answers what the
// delete would remove and changes nothing.
func (a *API) deleteIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q := newQuery(r, "confirm")
	confirm := q.boolParam("confirm")
	if q.err != nil {
		return q.err
	}
	if err := a.integrationInScope(r, id); err != nil {
		return err
	}
	if !confirm {
		p, err := a.db.IntegrationDeletePreview(r.Context(), id)
		if err != nil {
			return err
		}
		return invalid("deleting integration %d would remove %d active assignments (%d tickets, %d still open in the ITSM; tickets stay in ServiceNow); repeat with ?confirm=true",
			id, p.ActiveAssignments, p.Tickets, p.OpenTickets)
	}
	in, err := a.tickets.RequestDelete(r.Context(), id, actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, in)
	return nil
}

func (a *API) validateIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.integrationInScope(r, id); err != nil {
		return err
	}
	if err := a.tickets.ValidateStored(r.Context(), id, actor(r)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": true})
	return nil
}

func (a *API) retryTicket(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.assignmentInScope(r, id); err != nil {
		return err
	}
	t, err := a.tickets.RetryTicket(r.Context(), id, actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, t)
	return nil
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) error {
	if err := requireUnscoped(r, "the audit log"); err != nil {
		return err
	}
	q := newQuery(r, "integration", "assignment", "action")
	f := store.AuditFilter{
		IntegrationID: int64(q.intParam("integration")),
		AssignmentID:  int64(q.intParam("assignment")),
		ActionPrefix:  q.str("action"),
		Cursor:        q.str("cursor"),
		Limit:         q.limit(),
	}
	if q.err != nil {
		return q.err
	}
	items, next, err := a.db.FindAuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}
