package assignment

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
)

// Change is an update of an assignment: the store's fields (nil fields
// stay as they are), plus what only this package interprets.
type Change struct {
	store.AssignmentUpdate
	// RemediationTimeframeDays sets the due date that many days from now;
	// DueDate sets it explicitly; not both.
	RemediationTimeframeDays int
	// FromTicket marks a change that came from the assignment's ticket
	// (sync following ServiceNow's assignee): nothing is written back.
	FromTicket bool
}

// Update validates c and applies it to assignment id in tx, recording an
// "updated" history event with each field that really changed. When the
// owner of a ServiceNow-type assignment changed, and the change did not
// come from its ticket, it queues the ticket_update_owner job that writes
// the owner to the ticket's assigned_to (not for a ticket whose creation
// failed: it has no record to write to). Errors: CodeInvalid for a bad
// field; CodeNotFound; CodeConflict when the assignment has ended (unless
// c.AllowEnded).
func (s *Service) Update(ctx context.Context, tx *store.Tx, id int64, c Change, actor, reason string) (*steward.Assignment, error) {
	upd := c.AssignmentUpdate
	if upd.ETA != nil && upd.ClearETA {
		return nil, steward.Errorf(steward.CodeInvalid, "eta cannot be set and cleared at once")
	}
	if upd.Owner != nil {
		if err := steward.ValidateEmail("owner", *upd.Owner); err != nil {
			return nil, atField("owner", err)
		}
	}
	if c.RemediationTimeframeDays != 0 || upd.DueDate != nil {
		var explicit time.Time
		if upd.DueDate != nil {
			if upd.DueDate.IsZero() {
				return nil, steward.AtField("due_date", steward.Errorf(steward.CodeInvalid, "due_date cannot be cleared"))
			}
			explicit = *upd.DueDate
		}
		due, err := DueDate(s.now(), c.RemediationTimeframeDays, explicit)
		if err != nil {
			if upd.DueDate != nil {
				return nil, atField("due_date", err)
			}
			return nil, atField("remediation_timeframe_days", err)
		}
		upd.DueDate = &due
	}
	before, err := tx.FindAssignmentByID(ctx, id)
	if err != nil {
		return nil, err
	}
	// An ETA needs a justification: the one given with it, or the one the
	// assignment already has.
	if upd.ETA != nil && (upd.ETAJustification == nil || strings.TrimSpace(*upd.ETAJustification) == "") &&
		strings.TrimSpace(before.ETAJustification) == "" {
		return nil, errJustificationMissing
	}
	out, err := tx.UpdateAssignment(ctx, id, upd, actor, reason)
	if err != nil {
		return nil, err
	}
	if c.FromTicket || before.Type != steward.AssignmentServiceNow || before.Ticket == nil ||
		before.Ticket.Status == steward.TicketFailed || strings.EqualFold(before.Owner, out.Owner) {
		return out, nil
	}
	return out, s.queue.InsertTx(ctx, tx.SQL(), jobs.UpdateOwnerArgs{AssignmentID: id})
}

// End ends active assignment id in tx as completed or removed, with a
// "completed" or "removed" history event. Its ticket, if any, is left as
// it is: a person removing an assignment leaves the ticket to the agents,
// and a ticket that ended or whose integration is being deleted has
// nothing to be told. The one end that resolves a ticket is a fix, which
// imports apply (AfterImport). Errors: CodeNotFound; CodeConflict when it
// has already ended; CodeInvalid for any other state.
func (s *Service) End(ctx context.Context, tx *store.Tx, id int64, state steward.AssignmentState, actor, reason string) (*steward.Assignment, error) {
	return tx.EndAssignment(ctx, id, state, actor, reason)
}

// Reopen makes completed assignment id active again in tx (its ticket was
// reopened because the resource is still unhealthy), with an "updated"
// history event for the state. Errors: CodeNotFound; CodeConflict when it
// is not completed or its assessment has another active assignment.
func (s *Service) Reopen(ctx context.Context, tx *store.Tx, id int64, actor, reason string) (*steward.Assignment, error) {
	return tx.ReopenAssignment(ctx, id, actor, reason)
}

// AfterImport queues, in the transaction of an import batch, the ticket
// work the batch implies (docs/sync.md). The store's ApplyObservations
// completes the active assignments whose assessments turned Healthy in the
// same write that changes their status (res.CompletedAssignments); for each
// whose ServiceNow ticket is still open this queues a ticket_resolve. It
// also decides the tickets that ended in ServiceNow while the resource was
// unhealthy and queues a ticket_closed_not_fixed for each one a scan after
// it still finds unhealthy (the store flags it). Without a job queue (no
// job client) it does nothing.
func (s *Service) AfterImport(ctx context.Context, tx *store.Tx, res store.ApplyResult) error {
	if s.queue == nil {
		return nil
	}
	resolve, err := tx.TicketsToResolve(ctx, res.CompletedAssignments)
	if err != nil {
		return err
	}
	for _, id := range resolve {
		if err := s.queue.InsertTx(ctx, tx.SQL(), jobs.ResolveTicketArgs{AssignmentID: id}); err != nil {
			return fmt.Errorf("queue resolve of assignment %d: %w", id, err)
		}
	}
	// A fixed member of a ticket group whose others are not fixed yet is
	// noted on the shared ticket; the last one resolves it (above).
	fixed, err := tx.GroupMembersFixed(ctx, res.CompletedAssignments)
	if err != nil {
		return err
	}
	for _, id := range fixed {
		if err := s.queue.InsertTx(ctx, tx.SQL(), jobs.GroupNoteArgs{AssignmentID: id, Fixed: true}); err != nil {
			return fmt.Errorf("queue group note of assignment %d: %w", id, err)
		}
	}
	if err := tx.CloseEmptyTicketGroups(ctx, res.CompletedAssignments); err != nil {
		return err
	}
	flagged, err := tx.CheckClosedNotFixed(ctx)
	if err != nil {
		return err
	}
	for _, c := range flagged {
		if err := s.queue.InsertTx(ctx, tx.SQL(), jobs.ClosedNotFixedArgs{AssignmentID: c.AssignmentID}); err != nil {
			return fmt.Errorf("queue closed-not-fixed of assignment %d: %w", c.AssignmentID, err)
		}
	}
	return nil
}
