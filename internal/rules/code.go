package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/stewardhq/steward"
)

// Doc is a rules file (docs/rules.md): the whole desired set of rules. The
// API takes the same shape as JSON.
type Doc struct {
	Rules []RuleDoc `json:"rules" yaml:"rules"`
}

// RuleDoc is one rule as a rules file writes it. Enabled is a pointer so
// that a file that leaves it out means enabled.
type RuleDoc struct {
	Name               string                 `json:"name" yaml:"name"`
	Description        string                 `json:"description,omitempty" yaml:"description,omitempty"`
	Priority           int                    `json:"priority" yaml:"priority"`
	Enabled            *bool                  `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	Scope              steward.Scope          `json:"scope" yaml:"scope"`
	Exclude            []steward.Scope        `json:"exclude,omitempty" yaml:"exclude,omitempty"`
	When               []steward.ConditionSet `json:"when" yaml:"when"`
	Owner              steward.OwnerSource    `json:"owner" yaml:"owner"`
	DueInDays          int                    `json:"due_in_days" yaml:"due_in_days"`
	GracePeriod        bool                   `json:"grace_period,omitempty" yaml:"grace_period,omitempty"`
	OwnerEmailOptOut   bool                   `json:"owner_email_opt_out,omitempty" yaml:"owner_email_opt_out,omitempty"`
	ManagerEmailOptOut bool                   `json:"manager_email_opt_out,omitempty" yaml:"manager_email_opt_out,omitempty"`
	Ticket             *steward.RuleTicket    `json:"ticket,omitempty" yaml:"ticket,omitempty"`
}

// Rule turns the document form into a rule (normalized, not validated).
func (d RuleDoc) Rule() *steward.Rule {
	r := &steward.Rule{
		Name: d.Name, Description: d.Description, Priority: d.Priority, Enabled: d.Enabled == nil || *d.Enabled,
		Scope: d.Scope, Exclude: d.Exclude, When: d.When, Owner: d.Owner, DueInDays: d.DueInDays,
		GracePeriod: d.GracePeriod, OwnerEmailOptOut: d.OwnerEmailOptOut, ManagerEmailOptOut: d.ManagerEmailOptOut, Ticket: d.Ticket,
	}
	r.Normalize()
	return r
}

// DocOf is the document form of a rule; enabled is written only when false.
func DocOf(r *steward.Rule) RuleDoc {
	d := RuleDoc{
		Name: r.Name, Description: r.Description, Priority: r.Priority, Scope: r.Scope, Exclude: r.Exclude,
		When: r.When, Owner: r.Owner, DueInDays: r.DueInDays, GracePeriod: r.GracePeriod,
		OwnerEmailOptOut: r.OwnerEmailOptOut, ManagerEmailOptOut: r.ManagerEmailOptOut, Ticket: r.Ticket,
	}
	if !r.Enabled {
		f := false
		d.Enabled = &f
	}
	return d
}

// ParseYAML reads a rules file (YAML, or JSON, which is YAML too). Unknown
// fields are refused. The rules are not validated: Desired does that.
func ParseYAML(data []byte) (*Doc, error) {
	var doc Doc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, steward.WrapError(steward.CodeInvalid, err, "rules file: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return doc.complete()
}

// ParseJSON reads the JSON form of a rules file; unknown fields are
// refused.
func ParseJSON(data []byte) (*Doc, error) {
	var doc Doc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, steward.WrapError(steward.CodeInvalid, err, "rules: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return doc.complete()
}

// complete refuses a document without its rules list: applying it would
// delete every rule, which must be asked for explicitly.
func (d *Doc) complete() (*Doc, error) {
	if d.Rules == nil {
		return nil, steward.Errorf(steward.CodeInvalid, "rules is missing (write rules: [] to delete every rule)")
	}
	return d, nil
}

// Desired validates a document as a desired set of rules: each rule on its
// own (the message names the rule and its field), names unique in any
// letter case, and no two clashing (steward.Rule.Clashes).
func (d *Doc) Desired() ([]*steward.Rule, error) {
	out := make([]*steward.Rule, 0, len(d.Rules))
	seen := map[string]int{}
	for i, rd := range d.Rules {
		r := rd.Rule()
		if err := r.Validate(); err != nil {
			e := steward.WrapError(steward.CodeInvalid, err, "rules[%d] %s: %s", i, label(r.Name), steward.ErrorMessage(err))
			e.Field = steward.ErrorField(err)
			return nil, e
		}
		key := strings.ToLower(r.Name)
		if j, ok := seen[key]; ok {
			return nil, steward.Errorf(steward.CodeInvalid, "rules[%d].name %q is also the name of rules[%d]", i, r.Name, j)
		}
		seen[key] = i
		out = append(out, r)
	}
	if err := checkClashes(out); err != nil {
		return nil, err
	}
	return out, nil
}

func label(name string) string {
	if name == "" {
		return "(no name)"
	}
	return fmt.Sprintf("%q", name)
}

func checkClashes(rs []*steward.Rule) error {
	for i, a := range rs {
		for _, b := range rs[i+1:] {
			if a.Clashes(b) {
				return steward.ClashError(b, a)
			}
		}
	}
	return nil
}

// ExportYAML writes rules as a rules file that ParseYAML reads back to the
// same rules.
func ExportYAML(rs []*steward.Rule) ([]byte, error) {
	doc := Doc{Rules: make([]RuleDoc, 0, len(rs))}
	for _, r := range rs {
		doc.Rules = append(doc.Rules, DocOf(r))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("write rules as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write rules as YAML: %w", err)
	}
	return buf.Bytes(), nil
}
