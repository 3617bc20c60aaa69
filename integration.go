package steward

import (
	"time"
)

// IntegrationType names an ITSM product. Only ServiceNow exists today.
type IntegrationType string

// Integration types.
const IntegrationServiceNow IntegrationType = "servicenow"

// AuthMode says how an integration authenticates to its instance.
type AuthMode string

// Auth modes (servicenow-api.md §1).
const (
	AuthOAuthPassword     AuthMode = "oauth_password"     // OAuth password grant with refresh (default)
	AuthBasic             AuthMode = "basic"              // HTTP Basic on every call
	AuthClientCredentials AuthMode = "client_credentials" // OAuth client-credentials grant
)

// IntegrationState is active, or deleting while a background job removes
// its assignments.
type IntegrationState string

// Integration states.
const (
	IntegrationActive   IntegrationState = "active"
	IntegrationDeleting IntegrationState = "deleting"
)

// Integration is one configured ITSM instance. Its credentials are not
// part of this type: they are stored encrypted and never leave the server;
// HasPassword and HasClientSecret only say whether one is set.
type Integration struct {
	ID   int64           `json:"id"`
	Name string          `json:"name"`
	Type IntegrationType `json:"type"`
	// Scope limits the resources the integration serves (DESIGN.md).
	Scope       Scope  `json:"scope"`
	InstanceURL string `json:"instance_url"`
	// Local allows a plain-http loopback instance URL (the emulator). Real
	// instances must use https.
	Local           bool     `json:"local"`
	AuthMode        AuthMode `json:"auth_mode"`
	Username        string   `json:"username,omitempty"`
	ClientID        string   `json:"client_id,omitempty"`
	HasPassword     bool     `json:"has_password"`
	HasClientSecret bool     `json:"has_client_secret"`
	// TicketTypes maps each ticket type to its table and field mapping.
	TicketTypes map[TicketType]TicketMapping `json:"ticket_types"`
	// Priority maps each severity to the impact and urgency sent with new
	// tickets (from which ServiceNow computes priority).
	Priority map[Severity]ImpactUrgency `json:"priority"`
	// RequestsPerSecond caps the calls Steward makes to the instance.
	RequestsPerSecond float64          `json:"requests_per_second"`
	Sync              SyncSettings     `json:"sync"`
	State             IntegrationState `json:"state"`
	CreatedAt         time.Time        `json:"created_at"`
	CreatedBy         string           `json:"created_by"`
	UpdatedAt         time.Time        `json:"updated_at"`
}

// TicketMapping is how one ticket type is written to the ITSM.
type TicketMapping struct {
	// Table receives the records (default: the type's own table).
	Table string `json:"table"`
	// ShortDescription and Description are Go text/template templates over
	// the recommendation, resource, assessment and assignment; empty means
	// Steward's default wording.
	ShortDescription string `json:"short_description,omitempty"`
	Description      string `json:"description,omitempty"`
	// Fields are fixed values written on every new record, e.g.
	// assignment_group or category.
	Fields map[string]string `json:"fields,omitempty"`
	// CloseCode is the close code (incident, change request) or resolution
	// code (problem) Steward writes when it resolves a ticket because a scan
	// found the resource fixed; empty means "Solution provided",
	// "successful" and "fix_applied" respectively.
	CloseCode string `json:"close_code,omitempty"`
}

// ImpactUrgency are ServiceNow's raw impact and urgency values, "1" (high)
// to "3" (low).
type ImpactUrgency struct {
	Impact  string `json:"impact"`
	Urgency string `json:"urgency"`
}

// DefaultPriority is the severity map used when an integration sets none.
// With ServiceNow's default lookup it gives Critical→1, High→2, Medium→3,
// Low→4.
func DefaultPriority() map[Severity]ImpactUrgency {
	return map[Severity]ImpactUrgency{
		SeverityCritical: {Impact: "1", Urgency: "1"},
		SeverityHigh:     {Impact: "1", Urgency: "2"},
		SeverityMedium:   {Impact: "2", Urgency: "2"},
		SeverityLow:      {Impact: "2", Urgency: "3"},
	}
}

// SyncSettings tune how an integration's tickets are kept in sync.
type SyncSettings struct {
	// PollInterval between incremental polls (default 5m, 30s–24h).
	PollInterval Duration `json:"poll_interval"`
	// ReconcileInterval between full reconciles (default 24h).
	ReconcileInterval Duration `json:"reconcile_interval"`
	// ClosedNotFixed says what happens when a ticket ended but the resource
	// is still unhealthy at a later scan: nothing (default), reopen, or
	// new_ticket.
	ClosedNotFixed string `json:"closed_not_fixed"`
	// DeletedTicket says what happens when a linked ticket is deleted in the
	// ITSM: flag (default: the assignment stays and is flagged) or end.
	DeletedTicket string `json:"deleted_ticket"`
}

// DefaultSyncSettings are the sync settings of a new integration.
func DefaultSyncSettings() SyncSettings {
	return SyncSettings{
		PollInterval:      Duration(5 * time.Minute),
		ReconcileInterval: Duration(24 * time.Hour),
		ClosedNotFixed:    "nothing",
		DeletedTicket:     "flag",
	}
}

// Duration is a time.Duration that reads and writes JSON as "5m0s".
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return Errorf(CodeInvalid, "duration %q is not like 30s, 5m or 24h", string(b))
	}
	*d = Duration(v)
	return nil
}

// TicketStatus is where the creation of an assignment's ticket stands.
type TicketStatus string

// Ticket creation statuses, visible to users.
const (
	TicketPending  TicketStatus = "pending"  // queued, not yet sent
	TicketCreated  TicketStatus = "created"  // the record exists in the ITSM
	TicketRetrying TicketStatus = "retrying" // a try failed in a way a retry can fix
	TicketFailed   TicketStatus = "failed"   // the ITSM refused it; a user may retry
	// TicketDeferred: the governance rule that made the assignment has
	// used its daily cap of tickets; the ticket is sent at DeferredUntil.
	TicketDeferred TicketStatus = "deferred"
)

// TicketFlag marks a ticket whose two sides cannot simply be kept in sync.
type TicketFlag string

// Ticket flags, visible to users (docs/sync.md).
const (
	// TicketFlagDeleted: the record was deleted in the ITSM.
	TicketFlagDeleted TicketFlag = "deleted_in_itsm"
	// TicketFlagClosedNotFixed: the record ended in the ITSM but a later
	// scan still found the resource unhealthy.
	TicketFlagClosedNotFixed TicketFlag = "closed_not_fixed"
)

// Ticket is the ITSM record linked to an assignment.
type Ticket struct {
	AssignmentID  int64      `json:"assignment_id"`
	IntegrationID int64      `json:"integration_id"`
	Type          TicketType `json:"type"`
	Table         string     `json:"table"`
	// CorrelationID is Steward's stable ID of the work, written to the
	// record's correlation_id; it is what makes creation idempotent.
	CorrelationID string       `json:"correlation_id"`
	Status        TicketStatus `json:"status"`
	// Error is the reason the ITSM gave for the last failure.
	Error    string `json:"error,omitempty"`
	Attempts int    `json:"attempts"`
	// DeferredUntil is when a ticket its rule's daily cap deferred will be
	// sent (status deferred); it stays as history once the ticket is sent.
	DeferredUntil *time.Time `json:"deferred_until,omitempty"`

	SysID      string      `json:"sys_id,omitempty"`
	Number     string      `json:"number,omitempty"`
	Link       string      `json:"link,omitempty"`
	RawState   string      `json:"raw_state,omitempty"`
	StateLabel string      `json:"state_label,omitempty"`
	State      TicketState `json:"state,omitempty"`
	// AssigneeEmail is the ticket's assigned_to user's e-mail.
	AssigneeEmail   string     `json:"assignee_email,omitempty"`
	RemoteUpdatedAt *time.Time `json:"remote_updated_at,omitempty"`
	ModCount        int        `json:"mod_count,omitempty"`
	LastSyncedAt    *time.Time `json:"last_synced_at,omitempty"`
	// Flag marks a ticket that needs a person's attention: TicketFlagDeleted
	// or TicketFlagClosedNotFixed; "" otherwise.
	Flag TicketFlag `json:"flag,omitempty"`
	// GroupID is the ticket group of a group ticket (a rule with group_by
	// recommendation): one ticket shared by every member assignment, whose
	// AssignmentID is the group's first member. 0 for a ticket of its own.
	GroupID int64 `json:"group_id,omitempty"`
	// EndedState is the state label ("Resolved", "Canceled") of the version
	// that ended the assignment from the ITSM side; it stays for history.
	EndedState string `json:"ended_state,omitempty"`
	// SyncError is the last Steward → ITSM write the ITSM refused, e.g.
	// "resolution refused by ServiceNow (state New)".
	SyncError string `json:"sync_error,omitempty"`

	// The request as the user made it, kept so a retry sends the same.
	ShortDescription string `json:"short_description"`
	Description      string `json:"description"`
	CallerEmail      string `json:"caller_email,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AuditEvent records an action on an integration or a ticket, with its actor.
type AuditEvent struct {
	ID            int64          `json:"id"`
	At            time.Time      `json:"at"`
	Actor         string         `json:"actor"`
	Action        string         `json:"action"` // e.g. integration.created, ticket.created
	IntegrationID int64          `json:"integration_id,omitempty"`
	AssignmentID  int64          `json:"assignment_id,omitempty"`
	Details       map[string]any `json:"details,omitempty"`
}
