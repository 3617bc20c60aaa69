package itsm

import (
	"context"
	"iter"
	"time"

	"github.com/stewardhq/steward"
)

// Provider is one configured ITSM instance. Implementations are safe for
// concurrent use and keep no per-assignment state between calls. Every
// method returns a *Error on failure.
type Provider interface {
	// CreateTicket opens a record. It is idempotent on req.CorrelationID: if
	// a record with that correlation ID already exists in the table, it is
	// returned and nothing new is created. See CreateRequest.FirstAttempt
	// for the one request this guarantee can save.
	CreateTicket(ctx context.Context, req CreateRequest) (*Ticket, error)

	// Ticket returns a record's current state. A record deleted on the ITSM
	// side (or hidden by an ACL) is an error of KindNotFound, which unwraps
	// to steward.CodeNotFound.
	Ticket(ctx context.Context, ref Ref) (*Ticket, error)

	// UpdateTicket applies the non-nil fields of upd in one write and
	// returns the record as stored afterwards. When upd.State is set and the
	// ITSM accepted the write but left the state unchanged, the error is of
	// KindTransitionRefused (the other fields of the write were applied).
	UpdateTicket(ctx context.Context, ref Ref, upd TicketUpdate) (*Ticket, error)

	// Tickets returns the records of table with the given sys_ids, in
	// batches. Records that no longer exist are left out, not errors.
	Tickets(ctx context.Context, table string, sysIDs []string) ([]*Ticket, error)

	// FindByCorrelationIDs returns the records of table whose correlation
	// ID is one of ids, in batches. Missing IDs are left out.
	FindByCorrelationIDs(ctx context.Context, table string, ids []string) ([]*Ticket, error)

	// ChangedSince yields the records of table updated at or after since
	// whose correlation ID starts with correlationPrefix (empty: any),
	// oldest first (ordered by update time, then sys_id). A record updated
	// while the sequence runs may be yielded twice; callers discard the
	// stale copy by ModCount. The sequence stops after the first error.
	ChangedSince(ctx context.Context, table string, since time.Time, correlationPrefix string) iter.Seq2[*Ticket, error]

	// LookupUser resolves a user by e-mail address (when the argument
	// contains "@") or by sys_id. No match is KindNotFound; an e-mail shared
	// by several active users is KindAmbiguous. Results may be cached for a
	// few minutes.
	LookupUser(ctx context.Context, emailOrSysID string) (*User, error)

	// Validate checks that the integration can work: the instance answers,
	// the credentials are accepted, the integration user can read its own
	// user record and each configured table. Each failure has its own
	// message naming what to fix.
	Validate(ctx context.Context) error
}

// Ref names one record.
type Ref struct {
	Table string
	SysID string
}

// DefaultTable returns the table a ticket type is created in unless the
// integration maps it elsewhere; "" for an unknown type.
func DefaultTable(t steward.TicketType) string {
	switch t {
	case steward.TicketTypeIncident:
		return "incident"
	case steward.TicketTypeProblem:
		return "problem"
	case steward.TicketTypeChangeRequest:
		return "change_request"
	}
	return ""
}

// CreateRequest describes a record to open.
type CreateRequest struct {
	// Type is the ticket type; Table, when set, overrides its default table
	// (a table extending it, e.g. u_security_incident). One of them is
	// required.
	Type  steward.TicketType
	Table string

	// CorrelationID is Steward's stable identifier of the work (one per
	// assignment); required, at most 100 characters, without '^' or ','.
	// CorrelationDisplay tags the source (e.g. "steward").
	CorrelationID      string
	CorrelationDisplay string

	ShortDescription string
	Description      string

	// AssignedToEmail and CallerEmail are resolved to user sys_ids before
	// the write; empty leaves the field unset. The caller field is
	// caller_id on incidents and requested_by on change requests; problems
	// have none, so CallerEmail is ignored there.
	AssignedToEmail string
	CallerEmail     string

	// Impact and Urgency are the ITSM's raw values ("1" high … "3" low).
	Impact  string
	Urgency string

	// Fields are fixed values from the integration's field mapping (e.g.
	// assignment_group, category), written as-is: reference fields need
	// sys_ids. They cannot override the fields above.
	Fields map[string]string

	// FirstAttempt tells the provider that no earlier call for this
	// CorrelationID can have reached the ITSM (the job's first attempt, no
	// crash before it). The provider then creates directly; otherwise it
	// first looks the correlation ID up, costing one extra request. Within
	// one call, an ambiguous failure (timeout, 5xx or dropped connection
	// after the request was sent) is always followed by a lookup before any
	// new create, whatever this says. Setting it wrongly can create a
	// duplicate; leaving it false is always safe.
	FirstAttempt bool
}

// Ticket is an ITSM record as Steward sees it.
type Ticket struct {
	Table  string
	SysID  string
	Number string // INC0010001, PRB0040001, CHG0030001
	// Link opens the record in the ITSM's UI.
	Link string
	// RawState is the table's own state value ("6"); StateLabel its label
	// ("Resolved"). State is the normalized state, or "" when RawState is
	// not part of the table's known state model (a custom state).
	RawState   string
	StateLabel string
	State      steward.TicketState
	// AssignedToSysID is the assignee's user sys_id and AssignedToEmail
	// their e-mail; both "" when unassigned.
	AssignedToSysID string
	AssignedToEmail string
	CorrelationID   string
	// UpdatedAt, ModCount and UpdatedBy (a user name) order changes:
	// a copy with a lower ModCount is stale.
	UpdatedAt  time.Time
	ModCount   int
	UpdatedBy  string
	CloseCode  string
	CloseNotes string
}

// Ref returns the record's reference.
func (t *Ticket) Ref() Ref { return Ref{Table: t.Table, SysID: t.SysID} }

// TicketUpdate lists the fields to change; nil fields are left alone.
type TicketUpdate struct {
	// AssignedToEmail is resolved to a user sys_id; "" unassigns.
	AssignedToEmail *string
	// State is mapped to the table's raw value with RawState. Resolving or
	// closing needs CloseCode and CloseNotes in the same update on tables
	// whose data policy demands them (incident, change_request).
	State      *steward.TicketState
	CloseCode  *string
	CloseNotes *string
	// WorkNote appends a work note (visible to the ITSM's agents).
	WorkNote *string
	// CauseNotes and FixNotes are a problem's cause and fix notes, which
	// its state model demands for a resolution with fix_applied
	// (ServiceNow reference §5.2); other tables ignore them.
	CauseNotes *string
	FixNotes   *string
}

// User is an ITSM user record.
type User struct {
	SysID        string
	UserName     string
	Name         string
	Email        string
	ManagerSysID string
	Active       bool
}
