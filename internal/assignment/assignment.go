// Package assignment owns what happens to assignments: creating, changing,
// ending and reopening them. Every path that does so (the API, ticket sync,
// imports, integration deletes, governance rules) calls it inside its own
// transaction, so an import chunk or a rule run can batch many. It alone
// validates the owner, the due date and the ETA, records history and audit
// through the store, and queues the follow-up jobs (ticket creation, owner
// push, ticket resolve) in the same transaction, so they exist if and only
// if the change commits. The store below it only reads and writes rows.
//
// ServiceNow specifics that live in ticketsync (which integration serves a
// resource, the ticket's text) come in through the Ticketing interface, so
// ticketsync imports this package and not the other way round.
package assignment

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
)

// Ticketing is what creating a ServiceNow-type assignment needs from the
// ticket system; ticketsync.Service implements it.
type Ticketing interface {
	// TicketRoute returns the integration and table that a ticket of type
	// typ on resourceID goes to: integration integrationID when it is not
	// zero (its scope must hold the resource), else the active integration
	// whose scope holds the resource most specifically.
	TicketRoute(ctx context.Context, resourceID string, integrationID int64, typ steward.TicketType) (*steward.Integration, string, error)
	// TicketText renders the short description and description of a ticket
	// of type typ on in for a, which is stored (its ID is set). It reads
	// through tx, which sees an assessment an import chunk just created.
	TicketText(ctx context.Context, tx *store.Tx, in *steward.Integration, typ steward.TicketType, a *steward.Assignment) (short, description string, err error)
}

// Service creates, changes and ends assignments in its callers'
// transactions. It holds no state of its own and is safe for concurrent use.
type Service struct {
	queue     *jobs.Queue
	ticketing Ticketing
	now       func() time.Time
}

// New returns a Service that queues follow-up jobs on queue. ticketing may
// be nil where no ServiceNow-type assignment is created (Create then
// refuses them); a nil queue queues nothing where the caller allows it
// (imports without a job client, see AfterImport) and fails elsewhere.
func New(queue *jobs.Queue, ticketing Ticketing) *Service {
	return &Service{queue: queue, ticketing: ticketing, now: time.Now}
}

// CreateRequest asks for an assignment on an unhealthy assessment.
type CreateRequest struct {
	AssessmentID int64
	// Type defaults to manual; servicenow needs Ticket.
	Type  steward.AssignmentType
	Owner string
	// RemediationTimeframeDays sets the due date that many days from now
	// (the end of that UTC day); DueDate sets it explicitly. Exactly one.
	RemediationTimeframeDays int
	DueDate                  time.Time
	GracePeriod              bool
	// ETA needs ETAJustification; ServiceNow-type assignments get theirs
	// once they exist (Update).
	ETA                *time.Time
	ETAJustification   string
	OwnerEmailOptOut   bool
	ManagerEmailOptOut bool
	// Reason is recorded with the "created" history event.
	Reason string
	// RuleID and RuleCondition record the governance rule that made the
	// assignment and which of its conditions matched; zero for a person's.
	RuleID        int64
	RuleCondition string
	// Ticket is the ticket a servicenow-type assignment opens; its owner
	// becomes the ticket's assignee.
	Ticket *TicketRequest
}

// TicketRequest is the ticket part of a ServiceNow-type CreateRequest.
type TicketRequest struct {
	// IntegrationID picks the integration; 0 picks the one whose scope
	// holds the resource most specifically.
	IntegrationID int64
	Type          steward.TicketType
	// Caller is the ticket's caller (incident) or requester (change).
	Caller string
	// ShortDescription and Description override the integration's
	// templates; an empty one is rendered.
	ShortDescription string
	Description      string
	// Group shares one ticket among the assignments rule RuleID makes on
	// one recommendation (group_by recommendation, docs/rules.md).
	Group bool
}

// Create validates req, stores the assignment with its "created" history
// event, and for a ServiceNow-type assignment its pending ticket (with the
// correlation ID of CorrelationID), a "ticket.requested" audit event and the
// ticket_create job, all in tx: a crash either leaves nothing or leaves
// work that will run. Errors: CodeInvalid for a bad field, an assessment
// that is not Unhealthy or a resource no integration serves; CodeNotFound
// for a missing assessment or integration; CodeConflict when the assessment
// already has an active assignment.
func (s *Service) Create(ctx context.Context, tx *store.Tx, req CreateRequest, actor string) (*steward.Assignment, error) {
	due, err := s.check(&req)
	if err != nil {
		return nil, err
	}
	a := &steward.Assignment{
		AssessmentID:       req.AssessmentID,
		Type:               req.Type,
		Owner:              req.Owner,
		DueDate:            due,
		GracePeriod:        req.GracePeriod,
		ETA:                req.ETA,
		ETAJustification:   req.ETAJustification,
		OwnerEmailOptOut:   req.OwnerEmailOptOut,
		ManagerEmailOptOut: req.ManagerEmailOptOut,
		RuleID:             req.RuleID,
		RuleCondition:      req.RuleCondition,
	}
	if req.Type != steward.AssignmentServiceNow {
		if err := tx.CreateAssignment(ctx, a, actor, req.Reason); err != nil {
			return nil, err
		}
		return a, nil
	}
	// The integration is chosen before anything is written, by the
	// resource the assessment is on.
	as, err := tx.FindAssessmentByID(ctx, req.AssessmentID)
	if err != nil {
		return nil, err
	}
	in, table, err := s.ticketing.TicketRoute(ctx, as.ResourceID, req.Ticket.IntegrationID, req.Ticket.Type)
	if err != nil {
		return nil, err
	}
	if err := tx.CreateAssignment(ctx, a, actor, req.Reason); err != nil {
		return nil, err
	}
	if req.Ticket.Group && req.RuleID != 0 {
		return a, s.joinGroup(ctx, tx, a, in, table, req, actor)
	}
	if err := s.openTicket(ctx, tx, a, in, table, req.Ticket, 0, actor); err != nil {
		return nil, err
	}
	return a, nil
}

// joinGroup puts a, just created by a rule that groups by recommendation,
// into its group. The group's first member opens the shared ticket, whose
// record lists every member active when it is sent; a later member gets a
// work note on it instead (GroupNoteArgs), written once the record exists.
func (s *Service) joinGroup(ctx context.Context, tx *store.Tx, a *steward.Assignment, in *steward.Integration, table string,
	req CreateRequest, actor string) error {
	groupID, leader, err := tx.JoinTicketGroup(ctx, a.ID, req.RuleID)
	if err != nil {
		return err
	}
	if leader {
		return s.openTicket(ctx, tx, a, in, table, req.Ticket, groupID, actor)
	}
	stored, err := tx.FindAssignmentByID(ctx, a.ID)
	if err != nil {
		return err
	}
	a.Ticket = stored.Ticket
	return s.queue.InsertTx(ctx, tx.SQL(), jobs.GroupNoteArgs{AssignmentID: a.ID})
}

// check validates req in the order the API has always reported problems,
// defaults its type and returns the due date.
func (s *Service) check(req *CreateRequest) (time.Time, error) {
	switch req.Type {
	case "":
		req.Type = steward.AssignmentManual
	case steward.AssignmentManual, steward.AssignmentServiceNow:
	default:
		return time.Time{}, steward.Errorf(steward.CodeInvalid, "type %q is not manual or servicenow", req.Type)
	}
	if req.Type == steward.AssignmentManual {
		if req.Ticket != nil {
			return time.Time{}, steward.Errorf(steward.CodeInvalid, "a ticket needs type servicenow")
		}
		if err := steward.ValidateEmail("owner", req.Owner); err != nil {
			return time.Time{}, atField("owner", err)
		}
		due, err := DueDate(s.now(), req.RemediationTimeframeDays, req.DueDate)
		if err != nil {
			return time.Time{}, err
		}
		return due, checkETA(req.ETA, req.ETAJustification)
	}
	if req.ETA != nil || req.ETAJustification != "" {
		return time.Time{}, steward.Errorf(steward.CodeInvalid, "eta can be set on a ServiceNow assignment once it exists (PATCH)")
	}
	if req.Ticket == nil || req.Ticket.Type == "" {
		return time.Time{}, steward.Errorf(steward.CodeInvalid, "ticket_type is required: incident, problem or change_request (CLI: --ticket)")
	}
	due, err := DueDate(s.now(), req.RemediationTimeframeDays, req.DueDate)
	if err != nil {
		return time.Time{}, err
	}
	if _, err := steward.ParseTicketType(string(req.Ticket.Type)); err != nil {
		return time.Time{}, err
	}
	// The owner of a ServiceNow assignment is the ticket's assignee.
	if err := steward.ValidateEmail("assigned_to", req.Owner); err != nil {
		return time.Time{}, err
	}
	if req.Ticket.Caller != "" {
		if err := steward.ValidateEmail("caller", req.Ticket.Caller); err != nil {
			return time.Time{}, err
		}
	}
	if s.ticketing == nil {
		return time.Time{}, steward.Errorf(steward.CodeUnavailable, "ServiceNow assignments cannot be created here: no ticket system is configured")
	}
	return due, nil
}

// DueDate returns the due date of a remediation timeframe of days from now
// (steward.DueDate) or the explicit date, whichever is given: exactly one
// must be (explicit zero means not given).
func DueDate(now time.Time, days int, explicit time.Time) (time.Time, error) {
	switch {
	case days != 0 && !explicit.IsZero():
		return time.Time{}, steward.Errorf(steward.CodeInvalid, "give remediation_timeframe_days or due_date, not both (CLI: --days or --due)")
	case !explicit.IsZero():
		return explicit, nil
	case days < 0 || days > 3650:
		return time.Time{}, steward.Errorf(steward.CodeInvalid, "remediation_timeframe_days %d must be between 1 and 3650", days)
	case days > 0:
		return steward.DueDate(now, days), nil
	}
	return time.Time{}, steward.Errorf(steward.CodeInvalid, "remediation_timeframe_days or due_date is required (CLI: --days or --due)")
}

// maxJustification bounds an ETA justification.
const maxJustification = 2000

func checkETA(eta *time.Time, justification string) error {
	if eta != nil && strings.TrimSpace(justification) == "" {
		return errJustificationMissing
	}
	if len(justification) > maxJustification {
		return steward.AtField("eta_justification", steward.Errorf(steward.CodeInvalid, "eta_justification is longer than %d characters", maxJustification))
	}
	return nil
}

var errJustificationMissing = steward.AtField("eta_justification",
	steward.Errorf(steward.CodeInvalid, "eta_justification is required when an eta is set (CLI: --justification)"))

// atField names field as the one a validation error is about, so a form
// can show the message at it (the API answers it as error.field).
func atField(field string, err error) error {
	if e, ok := errors.AsType[*steward.Error](err); ok {
		return steward.AtField(field, e)
	}
	return err
}

// openTicket stores the pending ticket of a, just created, audits the
// request and queues its creation.
func (s *Service) openTicket(ctx context.Context, tx *store.Tx, a *steward.Assignment, in *steward.Integration, table string,
	req *TicketRequest, groupID int64, actor string) error {
	short, desc := req.ShortDescription, req.Description
	if short == "" || desc == "" {
		rs, rd, err := s.ticketing.TicketText(ctx, tx, in, req.Type, a)
		if err != nil {
			return err
		}
		if short == "" {
			short = rs
		}
		if desc == "" {
			desc = rd
		}
	}
	installation, err := tx.InstallationID(ctx)
	if err != nil {
		return err
	}
	t := &steward.Ticket{
		AssignmentID:     a.ID,
		IntegrationID:    in.ID,
		Type:             req.Type,
		Table:            table,
		CorrelationID:    CorrelationID(installation, a.ID),
		GroupID:          groupID,
		Status:           steward.TicketPending,
		ShortDescription: short,
		Description:      desc,
		CallerEmail:      req.Caller,
	}
	if groupID != 0 {
		t.CorrelationID = GroupCorrelationID(installation, groupID)
	}
	if err := tx.CreateTicket(ctx, t); err != nil {
		return err
	}
	a.Ticket = t
	if err := tx.InsertAudit(ctx, &steward.AuditEvent{Actor: actor, Action: AuditTicketRequested, IntegrationID: in.ID, AssignmentID: a.ID,
		Details: map[string]any{"type": req.Type, "table": table, "correlation_id": t.CorrelationID}}); err != nil {
		return err
	}
	return s.queue.InsertTx(ctx, tx.SQL(), jobs.CreateTicketArgs{AssignmentID: a.ID})
}

// AuditTicketRequested is the audit action of a ticket asked for with its
// assignment.
const AuditTicketRequested = "ticket.requested"

// CorrelationID is the stable ID written to a ticket's correlation_id. The
// installation part keeps two Steward installations sharing one instance
// from ever matching each other's records.
func CorrelationID(installation string, assignmentID int64) string {
	return CorrelationPrefix(installation) + strconv.FormatInt(assignmentID, 10)
}

// GroupCorrelationID is the correlation ID of the shared ticket of a ticket
// group: one per group, so a group's record is created exactly once however
// many members it has.
func GroupCorrelationID(installation string, groupID int64) string {
	return CorrelationPrefix(installation) + "g" + strconv.FormatInt(groupID, 10)
}

// CorrelationPrefix is the prefix every correlation ID of this installation
// starts with.
func CorrelationPrefix(installation string) string { return "steward-" + installation + "-" }
