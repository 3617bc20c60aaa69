package steward

import (
	"net/mail"
	"strings"
	"time"
)

// AssignmentState says whether an assignment is still being worked on.
type AssignmentState string

// Assignment states. Only active assignments count as open work; the others
// are kept for history.
const (
	AssignmentActive    AssignmentState = "active"
	AssignmentCompleted AssignmentState = "completed" // the assessment turned Healthy, or the ticket ended
	AssignmentRemoved   AssignmentState = "removed"   // deleted by a user or with its integration
)

// AssignmentType says who tracks the remediation work.
type AssignmentType string

// Assignment types.
const (
	AssignmentManual     AssignmentType = "manual"
	AssignmentServiceNow AssignmentType = "servicenow"
)

// Assignment is the governance record on an unhealthy assessment.
type Assignment struct {
	ID                int64           `json:"id"`
	AssessmentID      int64           `json:"assessment_id"`
	RecommendationKey string          `json:"recommendation_key"`
	ResourceID        string          `json:"resource_id"`
	Severity          Severity        `json:"severity"`
	Type              AssignmentType  `json:"type"`
	State             AssignmentState `json:"state"`
	Owner             string          `json:"owner"`
	DueDate           time.Time       `json:"due_date"`
	GracePeriod       bool            `json:"grace_period"`
	ETA               *time.Time      `json:"eta,omitempty"`
	ETAJustification  string          `json:"eta_justification,omitempty"`
	// OwnerEmailOptOut and ManagerEmailOptOut silence the owner's and the
	// owner's manager's notification mails for this assignment.
	OwnerEmailOptOut   bool       `json:"owner_email_opt_out"`
	ManagerEmailOptOut bool       `json:"manager_email_opt_out"`
	CreatedAt          time.Time  `json:"created_at"`
	CreatedBy          string     `json:"created_by"`
	UpdatedAt          time.Time  `json:"updated_at"`
	EndedAt            *time.Time `json:"ended_at,omitempty"`
	EndReason          string     `json:"end_reason,omitempty"`
	// RuleID and RuleCondition name the governance rule that made the
	// assignment and the condition of it that matched; zero and empty when
	// a person made it.
	RuleID        int64  `json:"rule_id,omitempty"`
	RuleCondition string `json:"rule_condition,omitempty"`
	// Ticket is the linked ITSM record of a ServiceNow-type assignment.
	Ticket *Ticket `json:"ticket,omitempty"`
}

// Overdue reports whether the assignment is active and past its due date at now.
func (a *Assignment) Overdue(now time.Time) bool {
	return a.State == AssignmentActive && now.After(a.DueDate)
}

// AssignmentEvent is one entry of an assignment's history: who did what, when and why.
type AssignmentEvent struct {
	ID           int64     `json:"id"`
	AssignmentID int64     `json:"assignment_id"`
	At           time.Time `json:"at"`
	Actor        string    `json:"actor"`
	// Action is created, updated, completed or removed.
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
	// Changes maps each changed field to its old and new value.
	Changes map[string]Change `json:"changes,omitempty"`
}

// Change is one field's old and new value in an AssignmentEvent.
type Change struct {
	From any `json:"from"`
	To   any `json:"to"`
}

// Assignment history actions.
const (
	ActionCreated   = "created"
	ActionUpdated   = "updated"
	ActionCompleted = "completed"
	ActionRemoved   = "removed"
)

// DueDate returns the remediation due date for a timeframe of days starting
// at from: the end of that UTC day, so "7 days" from any time on Monday is due
// at the end of the next Monday.
func DueDate(from time.Time, days int) time.Time {
	d := from.UTC().AddDate(0, 0, days)
	return time.Date(d.Year(), d.Month(), d.Day(), 23, 59, 59, 0, time.UTC)
}

// ValidateEmail checks an owner address. Owners are e-mail addresses
// because that is what ServiceNow users and notification mails are keyed on.
func ValidateEmail(field, s string) error {
	if strings.TrimSpace(s) == "" {
		return Errorf(CodeInvalid, "%s is missing", field)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return Errorf(CodeInvalid, "%s %q is not a plain e-mail address", field, s)
	}
	return nil
}
