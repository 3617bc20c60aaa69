package steward

import (
	"fmt"
	"strings"
	"time"
)

// Rule is a governance rule: which unhealthy assessments it takes (scope,
// exclusions, conditions), who owns them, by when, and whether a ticket is
// opened. Its shape follows Defender for Cloud's governance rules, so their
// JSON maps onto it field by field (internal/rules reads and writes both).
type Rule struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Scope and Exclude are resource-ID prefixes: the rule applies inside
	// Scope and outside every excluded scope.
	Scope   Scope   `json:"scope"`
	Exclude []Scope `json:"exclude,omitempty"`
	// Priority orders rules, 0–1000; the lowest number wins.
	Priority int  `json:"priority"`
	Enabled  bool `json:"enabled"`
	// When is an OR of condition sets, each an AND of its fields.
	When               []ConditionSet `json:"when"`
	Owner              OwnerSource    `json:"owner"`
	DueInDays          int            `json:"due_in_days"`
	GracePeriod        bool           `json:"grace_period"`
	OwnerEmailOptOut   bool           `json:"owner_email_opt_out"`
	ManagerEmailOptOut bool           `json:"manager_email_opt_out"`
	// Ticket is nil for rules that make manual assignments.
	Ticket    *RuleTicket `json:"ticket,omitempty"`
	CreatedAt time.Time   `json:"created_at,omitzero"`
	CreatedBy string      `json:"created_by,omitempty"`
	UpdatedAt time.Time   `json:"updated_at,omitzero"`
}

// ConditionSet matches an assessment when every field that is set holds:
// the assessment's value is one of the listed ones (a one-value list is
// Defender's Equals, a longer one its In).
type ConditionSet struct {
	Severity       []Severity `json:"severity,omitempty" yaml:"severity,omitempty"`
	Recommendation []string   `json:"recommendation,omitempty" yaml:"recommendation,omitempty"`
	Cloud          []Cloud    `json:"cloud,omitempty" yaml:"cloud,omitempty"`
	Source         []string   `json:"source,omitempty" yaml:"source,omitempty"`
	// Tags maps a resource tag key to the values it may have.
	Tags map[string][]string `json:"tags,omitempty" yaml:"tags,omitempty"`
}

// Empty reports whether the set has no condition at all.
func (c ConditionSet) Empty() bool {
	return len(c.Severity) == 0 && len(c.Recommendation) == 0 && len(c.Cloud) == 0 && len(c.Source) == 0 && len(c.Tags) == 0
}

// OwnerSource says who owns what a rule assigns: a fixed address, or the
// value of a tag on the resource (then up its scope chain), else Fallback.
type OwnerSource struct {
	Email    string `json:"email,omitempty" yaml:"email,omitempty"`
	Tag      string `json:"tag,omitempty" yaml:"tag,omitempty"`
	Fallback string `json:"fallback,omitempty" yaml:"fallback,omitempty"`
}

// RuleTicket is the ticket part of a rule: which integration opens what.
type RuleTicket struct {
	// Integration is the integration's name.
	Integration string     `json:"integration" yaml:"integration"`
	Type        TicketType `json:"type" yaml:"type"`
	// GroupBy is "" (one ticket per assignment) or "recommendation".
	GroupBy string `json:"group_by,omitempty" yaml:"group_by,omitempty"`
	// DailyCap bounds the tickets the rule opens per day; 0 is no cap.
	DailyCap int `json:"daily_cap,omitempty" yaml:"daily_cap,omitempty"`
}

// Rule limits.
const (
	MaxRulePriority       = 1000
	MaxRuleDueDays        = 3650
	GroupByRecommendation = "recommendation"
)

// Normalize spells the rule's values the canonical way (scopes, severity,
// cloud and ticket type letter case; the default ticket type incident), so
// equal rules compare equal. Unknown values are left for Validate to name.
func (r *Rule) Normalize() {
	r.Name = strings.TrimSpace(r.Name)
	if r.Scope != "" {
		r.Scope = r.Scope.Normalize()
	}
	for i, s := range r.Exclude {
		r.Exclude[i] = s.Normalize()
	}
	for i := range r.When {
		c := &r.When[i]
		for j, s := range c.Severity {
			if v, err := ParseSeverity(string(s)); err == nil {
				c.Severity[j] = v
			}
		}
		for j, cl := range c.Cloud {
			if v, err := ParseCloud(string(cl)); err == nil && cl != "" {
				c.Cloud[j] = v
			}
		}
	}
	if r.Ticket != nil {
		if r.Ticket.Type == "" {
			r.Ticket.Type = TicketTypeIncident
		} else if v, err := ParseTicketType(string(r.Ticket.Type)); err == nil {
			r.Ticket.Type = v
		}
	}
}

// Validate reports the first thing wrong with the rule, naming its field
// the way the rules file spells it, in the message and as the error's
// Field (so a form shows it there).
func (r *Rule) Validate() error {
	badAt := func(field, format string, args ...any) error {
		return AtField(field, Errorf(CodeInvalid, format, args...))
	}
	name := strings.TrimSpace(r.Name)
	switch {
	case name == "":
		return badAt("name", "name is missing")
	case len(name) > 200:
		return badAt("name", "name is longer than 200 characters")
	case strings.ContainsAny(name, "\x00\r\n\t/"):
		return badAt("name", "name %q contains a slash or control characters", name)
	case strings.Trim(name, "0123456789") == "":
		return badAt("name", "name %q is only digits, which would read as a rule ID", name)
	case !validText(name) || !validText(r.Description):
		return badAt("name", "name or description is not valid UTF-8")
	}
	if strings.TrimSpace(string(r.Scope)) == "" {
		return badAt("scope", "scope is missing (write / for every resource)")
	}
	if err := r.Scope.Validate(); err != nil {
		return badAt("scope", "scope: %s", ErrorMessage(err))
	}
	for i, ex := range r.Exclude {
		if err := ex.Validate(); err != nil {
			return badAt("exclude", "exclude[%d]: %s", i, ErrorMessage(err))
		}
		if ex.Normalize() == "/" || !r.Scope.Contains(string(ex)) {
			return badAt("exclude", "exclude[%d] %q is not inside scope %q", i, ex, r.Scope)
		}
	}
	if r.Priority < 0 || r.Priority > MaxRulePriority {
		return badAt("priority", "priority %d is outside 0–%d", r.Priority, MaxRulePriority)
	}
	if len(r.When) == 0 {
		return badAt("when", "when is empty: a rule needs at least one condition set")
	}
	for i, c := range r.When {
		if err := c.validate(fmt.Sprintf("when[%d]", i)); err != nil {
			return err
		}
	}
	if err := r.Owner.validate(); err != nil {
		return err
	}
	if r.DueInDays < 1 || r.DueInDays > MaxRuleDueDays {
		return badAt("due_in_days", "due_in_days %d is outside 1–%d", r.DueInDays, MaxRuleDueDays)
	}
	if t := r.Ticket; t != nil {
		switch {
		case strings.TrimSpace(t.Integration) == "":
			return badAt("ticket.integration", "ticket.integration is missing (ticket.type, group_by and daily_cap only go with an integration)")
		case !t.Type.valid():
			return badAt("ticket.type", "ticket.type %q is not one of incident, problem, change_request", t.Type)
		case t.GroupBy != "" && t.GroupBy != GroupByRecommendation:
			return badAt("ticket.group_by", "ticket.group_by %q is not %q (or empty for one ticket per assignment)", t.GroupBy, GroupByRecommendation)
		case t.DailyCap < 0:
			return badAt("ticket.daily_cap", "ticket.daily_cap %d is negative (0 means no cap)", t.DailyCap)
		}
	}
	return nil
}

func (t TicketType) valid() bool {
	for _, v := range TicketTypes {
		if t == v {
			return true
		}
	}
	return false
}

func (c ConditionSet) validate(field string) error {
	bad := func(format string, args ...any) error { return AtField(field, Errorf(CodeInvalid, format, args...)) }
	if c.Empty() {
		return bad("%s has no condition", field)
	}
	for i, s := range c.Severity {
		if s.Rank() == 0 {
			return bad("%s.severity[%d] %q is not one of Low, Medium, High, Critical", field, i, s)
		}
	}
	for i, k := range c.Recommendation {
		if strings.TrimSpace(k) == "" {
			return bad("%s.recommendation[%d] is empty", field, i)
		}
	}
	for i, cl := range c.Cloud {
		switch cl {
		case CloudAzure, CloudAWS, CloudGCP, CloudOther:
		default:
			return bad("%s.cloud[%d] %q is not one of azure, aws, gcp, other", field, i, cl)
		}
	}
	for i, s := range c.Source {
		if strings.TrimSpace(s) == "" {
			return bad("%s.source[%d] is empty", field, i)
		}
	}
	for k, vals := range c.Tags {
		if strings.TrimSpace(k) == "" {
			return bad("%s.tags has an empty key", field)
		}
		if len(vals) == 0 {
			return bad("%s.tags.%s has no values", field, k)
		}
	}
	return nil
}

func (o OwnerSource) validate() error {
	switch {
	case o.Email == "" && o.Tag == "":
		return AtField("owner", Errorf(CodeInvalid, "owner needs an email or a tag"))
	case o.Email != "" && o.Tag != "":
		return AtField("owner", Errorf(CodeInvalid, "owner has both email and tag; give one"))
	case o.Email != "":
		if o.Fallback != "" {
			return AtField("owner.fallback", Errorf(CodeInvalid, "owner.fallback only goes with owner.tag"))
		}
		return emailAt("owner.email", o.Email)
	case strings.TrimSpace(o.Tag) == "":
		return AtField("owner.tag", Errorf(CodeInvalid, "owner.tag is blank"))
	case o.Fallback != "":
		return emailAt("owner.fallback", o.Fallback)
	}
	return nil
}

// emailAt is ValidateEmail with the error naming field as its Field.
func emailAt(field, s string) error {
	if err := ValidateEmail(field, s); err != nil {
		if e, ok := err.(*Error); ok {
			return AtField(field, e)
		}
		return err
	}
	return nil
}

// Overlaps reports whether two scopes share resources: scopes are
// prefixes, so they overlap exactly when one contains the other.
func (s Scope) Overlaps(o Scope) bool {
	return s.Contains(string(o)) || o.Contains(string(s))
}

// Clashes reports whether two different rules may not coexist: both
// enabled, with the same priority, on overlapping scopes. Which of them
// wins on a shared resource would be arbitrary.
func (r *Rule) Clashes(o *Rule) bool {
	return r.Enabled && o.Enabled && r.Priority == o.Priority && r.Scope.Overlaps(o.Scope)
}

// ClashError is the refusal of two clashing rules, naming both.
func ClashError(r, o *Rule) error {
	return AtField("priority", Errorf(CodeConflict, "priority %d: rule %q (scope %s) and enabled rule %q (scope %s) have the same priority on overlapping scopes; give one of them another priority",
		r.Priority, r.Name, r.Scope, o.Name, o.Scope))
}

// ScopeTags are the tags of a scope level (a resource group, subscription,
// account or project) that owner lookups climb to when the resource itself
// lacks the tag.
type ScopeTags struct {
	Scope     Scope             `json:"scope"`
	Tags      map[string]string `json:"tags"`
	UpdatedAt time.Time         `json:"updated_at,omitzero"`
	UpdatedBy string            `json:"updated_by,omitempty"`
}
