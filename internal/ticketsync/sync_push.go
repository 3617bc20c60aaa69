package ticketsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/assignment"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/store"
)

// Close codes Steward writes when a resource turned Healthy.
const (
	IncidentCloseCode = "Solution provided"
	ChangeCloseCode   = "successful"
	ProblemCloseCode  = "fix_applied"
)

// errNotYet means the ticket is still being created; the job retries.
var errNotYet = errors.New("the ticket is not created yet")

// UpdateAssignment applies upd to an assignment in its own transaction
// (assignment.Service.Update): when the owner of a ServiceNow assignment
// changed, the job that writes it to the ticket's assigned_to is queued in
// that transaction, so an accepted change is never lost. Errors: as
// assignment.Service.Update.
func (s *Service) UpdateAssignment(ctx context.Context, id int64, upd store.AssignmentUpdate, actor, reason string) (*steward.Assignment, error) {
	var out *steward.Assignment
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		out, err = s.assign.Update(ctx, tx, id, assignment.Change{AssignmentUpdate: upd}, actor, reason)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readBack re-reads a ticket's record before Steward writes to it and
// applies what it finds, so a change made in ServiceNow meanwhile is
// decided by the same rules (and the same conflict rule) as the other
// paths. It returns the record, or nil when it is gone (flagged).
func (s *Service) readBack(ctx context.Context, p itsm.Provider, in *steward.Integration, t *steward.Ticket) (*itsm.Ticket, error) {
	rec, err := p.Ticket(ctx, itsm.Ref{Table: t.Table, SysID: t.SysID})
	if itsm.IsKind(err, itsm.KindNotFound) {
		_, err := s.recordDeleted(ctx, in, t.AssignmentID, ViaPush)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.ApplyRemote(ctx, in.ID, rec, ViaPush); err != nil {
		return nil, err
	}
	return rec, nil
}

// storeOwn stores the record a write of Steward's returned: its ModCount
// becomes the stored version, so the same version arriving by webhook or
// poll is recognised as Steward's own echo and changes nothing.
//
// t is the stored ticket written to; the audit names the assignment the
// write was for, which for a group ticket may be a member other than the
// ticket's own.
func (s *Service) storeOwn(ctx context.Context, in *steward.Integration, t *steward.Ticket, rec *itsm.Ticket, syncErr string, audit *steward.AuditEvent) error {
	record := func(tx *store.Tx) error {
		if err := tx.SetTicketSync(ctx, t.AssignmentID, store.TicketSyncUpdate{SyncError: &syncErr}); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, audit)
	}
	if rec == nil {
		return s.db.WithTx(ctx, record)
	}
	// One transaction for the record's new state and the audit of the
	// write, so a crash cannot keep one without the other.
	_, err := s.applyRemoteThen(ctx, in.ID, rec, viaOwnWrite, record)
	return err
}

// PushOwner writes an active ServiceNow assignment's owner to its ticket's
// assigned_to, unless they already agree. The record is read back first
// (see readBack): when ServiceNow changed the assignee meanwhile,
// ServiceNow wins and nothing is written. An owner who is not a ServiceNow
// user is recorded on the ticket (SyncError) rather than retried.
func (s *Service) PushOwner(ctx context.Context, assignmentID int64) error {
	a, err := s.db.FindAssignmentByID(ctx, assignmentID)
	if err != nil {
		return err
	}
	t := a.Ticket
	// A ticket a daily cap deferred is sent with the owner of its day
	// (CreateTicket reads it then): nothing to push, nothing to wait for.
	if t == nil || a.State != steward.AssignmentActive || t.Status == steward.TicketFailed || t.Status == steward.TicketDeferred ||
		t.Flag == steward.TicketFlagDeleted {
		return nil
	}
	if t.Status != steward.TicketCreated {
		return errNotYet
	}
	p, in, err := s.Provider(ctx, t.IntegrationID)
	if err != nil {
		return err
	}
	if strings.EqualFold(a.Owner, t.AssigneeEmail) {
		return nil
	}
	rec, err := s.readBack(ctx, p, in, t)
	if err != nil || rec == nil {
		return err
	}
	if a, err = s.db.FindAssignmentByID(ctx, assignmentID); err != nil {
		return err
	}
	if a.State != steward.AssignmentActive || strings.EqualFold(a.Owner, rec.AssignedToEmail) {
		return nil // ended, or ServiceNow's assignee won the conflict
	}
	audit := &steward.AuditEvent{Actor: store.ActorSystem, Action: store.AuditTicketOwnerPushed, IntegrationID: in.ID, AssignmentID: a.ID,
		Details: map[string]any{"number": t.Number, "from": rec.AssignedToEmail, "to": a.Owner}}
	if _, err := p.LookupUser(ctx, a.Owner); itsm.IsKind(err, itsm.KindNotFound) || itsm.IsKind(err, itsm.KindAmbiguous) {
		msg := fmt.Sprintf("owner %s could not be set in ServiceNow: %s", a.Owner, steward.ErrorMessage(err))
		audit.Details["error"] = msg
		return s.storeOwn(ctx, in, t, nil, msg, audit)
	} else if err != nil {
		return err
	}
	owner := a.Owner
	upd, err := p.UpdateTicket(ctx, itsm.Ref{Table: t.Table, SysID: t.SysID}, itsm.TicketUpdate{AssignedToEmail: &owner})
	if itsm.IsKind(err, itsm.KindNotFound) {
		_, err = s.recordDeleted(ctx, in, t.AssignmentID, ViaPush)
		return err
	}
	if err != nil {
		s.sync.metrics.errors.WithLabelValues(in.Name, "push").Inc()
		return err
	}
	return s.storeOwn(ctx, in, t, upd, "", audit)
}

// closeNote says why Steward resolves a ticket.
func (s *Service) closeNote(ctx context.Context, a *steward.Assignment) (note, cause string, err error) {
	as, err := s.db.FindAssessmentByID(ctx, a.AssessmentID)
	if err != nil {
		return "", "", err
	}
	name := a.RecommendationKey
	if rec, err := s.db.FindRecommendationByKey(ctx, a.RecommendationKey); err == nil && rec.DisplayName != "" {
		name = fmt.Sprintf("%s (%s)", rec.DisplayName, a.RecommendationKey)
	}
	at := as.StatusChangedAt
	if as.Status != steward.StatusHealthy && a.EndedAt != nil {
		at = *a.EndedAt
	}
	note = fmt.Sprintf("Resolved by Steward: scan at %s found %s healthy for %s", at.UTC().Format(time.RFC3339), a.ResourceID, name)
	cause = fmt.Sprintf("Security finding reported by Steward: %s failed on %s", name, a.ResourceID)
	return note, cause, nil
}

// resolveUpdate is the write that resolves a ticket per its table's state
// model (reference §5): incidents go to Resolved with a close code and
// notes; change requests to Closed with close code "successful"; problems
// to Resolved with resolution code fix_applied and cause and fix notes.
func resolveUpdate(base, note, cause, closeCode string) (itsm.TicketUpdate, steward.TicketState) {
	state := steward.TicketResolved
	upd := itsm.TicketUpdate{CloseNotes: &note}
	code := func(def string) *string {
		if closeCode != "" {
			return &closeCode
		}
		return &def
	}
	switch base {
	case "change_request":
		state, upd.CloseCode = steward.TicketClosed, code(ChangeCloseCode)
	case "problem":
		upd.CloseCode, upd.CauseNotes, upd.FixNotes = code(ProblemCloseCode), &cause, &note
	default:
		upd.CloseCode = code(IncidentCloseCode)
	}
	upd.State = &state
	return upd, state
}

func baseTable(t *steward.Ticket) string {
	if b := itsm.BaseTable(t.Table); b != "" {
		return b
	}
	return itsm.DefaultTable(t.Type)
}

// ResolveTicket resolves the ticket of an assignment completed because its
// assessment turned Healthy, with a close note naming the scan. It reads
// the record back first; a ticket already ended (in ServiceNow or by an
// earlier try) is left alone. When ServiceNow keeps the state (problem and
// change state models refuse the transition, reference §5.2/§5.3), Steward
// adds a work note asking an agent to close it and records "resolution
// refused by ServiceNow (state X)" on the ticket instead of retrying.
func (s *Service) ResolveTicket(ctx context.Context, assignmentID int64) error {
	a, err := s.db.FindAssignmentByID(ctx, assignmentID)
	if err != nil {
		return err
	}
	t := a.Ticket
	// A deferred ticket was never sent; CreateTicket fails it on its day.
	if t == nil || t.Status == steward.TicketFailed || t.Status == steward.TicketDeferred || t.Flag == steward.TicketFlagDeleted || t.State.Ended() {
		return nil
	}
	if t.Status != steward.TicketCreated {
		return errNotYet
	}
	if a.State == steward.AssignmentActive {
		return nil // reopened meanwhile: nothing to resolve
	}
	p, in, err := s.Provider(ctx, t.IntegrationID)
	if err != nil {
		return err
	}
	rec, err := s.readBack(ctx, p, in, t)
	if err != nil || rec == nil || rec.State.Ended() {
		return err
	}
	note, cause, err := s.closeNote(ctx, a)
	if err != nil {
		return err
	}
	base := baseTable(t)
	upd, want := resolveUpdate(base, note, cause, in.TicketTypes[t.Type].CloseCode)
	ref := itsm.Ref{Table: t.Table, SysID: t.SysID}
	audit := &steward.AuditEvent{Actor: store.ActorSystem, IntegrationID: in.ID, AssignmentID: a.ID,
		Details: map[string]any{"number": t.Number, "state": string(want), "close_notes": note}}
	var done *itsm.Ticket
	if base == "change_request" && itsm.CanonicalNumber(rec.RawState) == "-1" {
		// Implement → Review → Closed is the model's path (reference §5.3);
		// Review needs no approval, so take the step first.
		review := steward.TicketResolved
		done, err = p.UpdateTicket(ctx, ref, itsm.TicketUpdate{State: &review})
		if err == nil {
			rec = done
			if _, err := s.ApplyRemote(ctx, in.ID, done, viaOwnWrite); err != nil {
				return err
			}
		}
	}
	if err == nil {
		done, err = p.UpdateTicket(ctx, ref, upd)
	}
	switch {
	case err == nil:
		audit.Action = store.AuditTicketResolved
		s.logger.InfoContext(ctx, "ticket resolved", "integration", in.Name, "number", t.Number, "state", done.StateLabel)
		return s.storeOwn(ctx, in, t, done, "", audit)
	case itsm.IsKind(err, itsm.KindNotFound):
		_, err = s.recordDeleted(ctx, in, t.AssignmentID, ViaPush)
		return err
	case itsm.IsKind(err, itsm.KindTransitionRefused):
		// The other fields were written; the state was not. Say so where
		// the agents look, and stop: retrying cannot change the model.
		kept := rec.StateLabel
		work := fmt.Sprintf("%s. ServiceNow kept this record in state %s (its state model refused %s); please close it.", note, kept, want)
		after, werr := p.UpdateTicket(ctx, ref, itsm.TicketUpdate{WorkNote: &work})
		if werr != nil {
			return werr
		}
		if after.StateLabel != "" {
			kept = after.StateLabel
		}
		msg := fmt.Sprintf("resolution refused by ServiceNow (state %s)", kept)
		audit.Action, audit.Details["error"] = store.AuditTicketResolveRefused, msg
		s.logger.WarnContext(ctx, "ticket resolution refused", "integration", in.Name, "number", t.Number, "state", kept)
		return s.storeOwn(ctx, in, t, after, msg, audit)
	case !itsm.IsRetryable(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		msg := "resolution refused by ServiceNow: " + steward.ErrorMessage(err)
		audit.Action, audit.Details["error"] = store.AuditTicketResolveRefused, msg
		return s.storeOwn(ctx, in, t, nil, msg, audit)
	}
	s.sync.metrics.errors.WithLabelValues(in.Name, "push").Inc()
	return err
}

// ApplyClosedNotFixed applies the integration's closed-not-fixed policy to
// a ticket ingest flagged: "nothing" leaves the flag for people to see;
// "reopen" moves the ticket back to In Progress with a work note and makes
// the same assignment active again (same ticket, same correlation ID);
// "new_ticket" opens a new ServiceNow assignment with a new ticket, owned by
// the same owner, through the normal creation path. Idempotent: a ticket no
// longer flagged, or an assessment that already has an active assignment,
// is left alone.
func (s *Service) ApplyClosedNotFixed(ctx context.Context, assignmentID int64) error {
	a, err := s.db.FindAssignmentByID(ctx, assignmentID)
	if err != nil {
		return err
	}
	t := a.Ticket
	if t == nil || t.Flag != steward.TicketFlagClosedNotFixed || a.State != steward.AssignmentCompleted {
		return nil
	}
	as, err := s.db.FindAssessmentByID(ctx, a.AssessmentID)
	if err != nil {
		return err
	}
	if as.AssignmentID != 0 || as.Status != steward.StatusUnhealthy {
		return nil
	}
	p, in, err := s.Provider(ctx, t.IntegrationID)
	if err != nil {
		return err
	}
	policy := in.Sync.ClosedNotFixed
	scan := as.LastSeen.UTC().Format(time.RFC3339)
	switch policy {
	case "reopen":
		note := fmt.Sprintf("Reopened by Steward: scan at %s still found %s unhealthy for %s", scan, a.ResourceID, a.RecommendationKey)
		state := steward.TicketInProgress
		rec, err := p.UpdateTicket(ctx, itsm.Ref{Table: t.Table, SysID: t.SysID}, itsm.TicketUpdate{State: &state, WorkNote: &note})
		switch {
		case itsm.IsKind(err, itsm.KindNotFound):
			_, err = s.recordDeleted(ctx, in, t.AssignmentID, ViaPush)
			return err
		case itsm.IsKind(err, itsm.KindTransitionRefused):
			msg := fmt.Sprintf("reopen refused by ServiceNow (state %s)", t.StateLabel)
			return s.storeOwn(ctx, in, t, nil, msg, &steward.AuditEvent{Actor: store.ActorSystem, Action: store.AuditTicketResolveRefused,
				IntegrationID: in.ID, AssignmentID: a.ID, Details: map[string]any{"number": t.Number, "error": msg}})
		case err != nil:
			return err
		}
		if _, err := s.ApplyRemote(ctx, in.ID, rec, viaOwnWrite); err != nil {
			return err
		}
		return s.db.WithTx(ctx, func(tx *store.Tx) error {
			reason := fmt.Sprintf("ticket %s reopened: %s", t.Number, strings.TrimPrefix(note, "Reopened by Steward: "))
			if _, err := s.assign.Reopen(ctx, tx, a.ID, store.ActorSystem, reason); err != nil {
				return err
			}
			none, empty := steward.TicketFlag(""), ""
			if err := tx.SetTicketSync(ctx, a.ID, store.TicketSyncUpdate{Flag: &none, EndedState: &empty, SyncError: &empty}); err != nil {
				return err
			}
			return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: store.ActorSystem, Action: store.AuditTicketReopened,
				IntegrationID: in.ID, AssignmentID: a.ID, Details: map[string]any{"number": t.Number, "state": rec.StateLabel, "scan_at": scan}})
		})
	case "new_ticket":
		days := int(a.DueDate.Sub(a.CreatedAt).Hours()/24 + 0.5)
		_, err := s.Assign(ctx, AssignRequest{
			AssessmentID: a.AssessmentID, IntegrationID: in.ID, TicketType: t.Type, AssignedTo: a.Owner, Caller: t.CallerEmail,
			DueDate: steward.DueDate(time.Now(), max(days, 1)), GracePeriod: a.GracePeriod,
			OwnerEmailOptOut: a.OwnerEmailOptOut, ManagerEmailOptOut: a.ManagerEmailOptOut,
			Reason: fmt.Sprintf("closed, not fixed: ticket %s ended but the scan at %s still found the resource unhealthy", t.Number, scan),
		}, store.ActorSystem)
		if steward.ErrorCode(err) == steward.CodeConflict {
			return nil // someone assigned it meanwhile
		}
		return err
	}
	return nil // "nothing": the flag is the signal
}

// NoteGroupMember writes a work note on the shared ticket of member
// assignmentID's group: that its resource joined (fixed false) or was
// fixed. A member the record already names (it was active when the record
// was sent) is not noted as joining again. Once the record exists, the
// note is written and the member marked; a crash between the two writes
// the note twice, never loses it.
func (s *Service) NoteGroupMember(ctx context.Context, assignmentID int64, fixed bool) error {
	a, err := s.db.FindAssignmentByID(ctx, assignmentID)
	if err != nil {
		return err
	}
	t := a.Ticket
	if t == nil || t.GroupID == 0 || t.Status == steward.TicketFailed || t.Flag == steward.TicketFlagDeleted || t.State.Ended() {
		return nil
	}
	if t.Status != steward.TicketCreated {
		return errNotYet
	}
	if !fixed {
		listed, err := s.db.ListedInGroup(ctx, assignmentID)
		if err != nil || listed {
			return err
		}
	}
	p, in, err := s.Provider(ctx, t.IntegrationID)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("Steward: resource %s joined this ticket (%s).", a.ResourceID, a.RecommendationKey)
	if fixed {
		note = fmt.Sprintf("Steward: resource %s is fixed (%s); the ticket stays open for the others.", a.ResourceID, a.RecommendationKey)
	}
	rec, err := p.UpdateTicket(ctx, itsm.Ref{Table: t.Table, SysID: t.SysID}, itsm.TicketUpdate{WorkNote: &note})
	if err != nil {
		return err
	}
	if _, err := s.ApplyRemote(ctx, in.ID, rec, viaOwnWrite); err != nil && steward.ErrorCode(err) != steward.CodeNotFound {
		return err
	}
	return s.db.WithTx(ctx, func(tx *store.Tx) error { return tx.MarkListedInGroup(ctx, []int64{assignmentID}) })
}
