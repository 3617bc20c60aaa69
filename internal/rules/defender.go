package rules

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/stewardhq/steward"
)

// Defender for Cloud governance rules (Microsoft.Security/governanceRules,
// api 2022-01-01-preview), the fields Steward reads and writes.
type defenderRule struct {
	ID         string         `json:"id,omitempty"`
	Name       string         `json:"name,omitempty"`
	Type       string         `json:"type,omitempty"`
	Properties defenderFields `json:"properties"`
}

type defenderFields struct {
	DisplayName                 string                 `json:"displayName"`
	Description                 string                 `json:"description,omitempty"`
	RemediationTimeframe        string                 `json:"remediationTimeframe"`
	IsGracePeriod               bool                   `json:"isGracePeriod"`
	RulePriority                int                    `json:"rulePriority"`
	IsDisabled                  bool                   `json:"isDisabled"`
	RuleType                    string                 `json:"ruleType"`
	SourceResourceType          string                 `json:"sourceResourceType"`
	ConditionSets               []defenderConditionSet `json:"conditionSets"`
	OwnerSource                 defenderOwner          `json:"ownerSource"`
	GovernanceEmailNotification *defenderEmail         `json:"governanceEmailNotification,omitempty"`
	ExcludedScopes              []string               `json:"excludedScopes"`
}

type defenderConditionSet struct {
	Conditions []defenderCondition `json:"conditions"`
}

type defenderCondition struct {
	Property string `json:"property"`
	Value    string `json:"value"`
	Operator string `json:"operator"`
}

type defenderOwner struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type defenderEmail struct {
	DisableManagerEmailNotification bool `json:"disableManagerEmailNotification"`
	DisableOwnerEmailNotification   bool `json:"disableOwnerEmailNotification"`
}

// Defender's condition properties and rule types.
const (
	propAssessmentKey = "$.AssessmentKey"
	propSeverity      = "$.Metadata.Severity"
	ruleTypeManual    = "Integrated"
	ruleTypeSNOW      = "ServiceNow"
)

// DefenderOptions fill what Defender's rules do not say.
type DefenderOptions struct {
	// Scope is used for rules whose id names no subscription.
	Scope steward.Scope
	// Integration and TicketType make the ticket part of ServiceNow-type
	// rules (Defender names neither); TicketType defaults to incident.
	Integration string
	TicketType  steward.TicketType
}

// ImportDefender reads Defender for Cloud governance rule JSON, one rule or
// a list ({"value": [...]}), as rules files would write them: the scope
// from the rule's id, the name from displayName (made unique with the
// start of Defender's rule name when two share one), and the ticket part
// from opts. The rules are not validated.
func ImportDefender(data []byte, opts DefenderOptions) (*Doc, error) {
	var probe struct {
		Value      *[]defenderRule  `json:"value"`
		Properties *json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, steward.WrapError(steward.CodeInvalid, err, "Defender rules: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	var list []defenderRule
	switch {
	case probe.Value != nil:
		list = *probe.Value
	case probe.Properties != nil:
		var one defenderRule
		if err := json.Unmarshal(data, &one); err != nil {
			return nil, steward.WrapError(steward.CodeInvalid, err, "Defender rule: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		list = []defenderRule{one}
	default:
		return nil, steward.Errorf(steward.CodeInvalid, "Defender rules: neither a rule (properties) nor a list (value)")
	}
	names := map[string]int{}
	for _, d := range list {
		names[strings.ToLower(d.Properties.DisplayName)]++
	}
	doc := &Doc{Rules: []RuleDoc{}}
	for i, d := range list {
		rd, err := fromDefender(d, opts)
		if err != nil {
			return nil, steward.WrapError(steward.CodeInvalid, err, "Defender rule %d (%s): %s", i, label(d.Properties.DisplayName), steward.ErrorMessage(err))
		}
		if names[strings.ToLower(rd.Name)] > 1 || rd.Name == "" {
			short := d.Name
			if len(short) > 8 {
				short = short[:8]
			}
			rd.Name = strings.TrimSpace(rd.Name + " (" + short + ")")
		}
		doc.Rules = append(doc.Rules, rd)
	}
	return doc, nil
}

func fromDefender(d defenderRule, opts DefenderOptions) (RuleDoc, error) {
	p := d.Properties
	days, err := parseTimeframe(p.RemediationTimeframe)
	if err != nil {
		return RuleDoc{}, err
	}
	scope, err := defenderScope(d.ID, opts.Scope)
	if err != nil {
		return RuleDoc{}, err
	}
	rd := RuleDoc{Name: strings.TrimSpace(p.DisplayName), Description: p.Description, Priority: p.RulePriority,
		Scope: scope, DueInDays: days, GracePeriod: p.IsGracePeriod}
	if p.IsDisabled {
		disabled := false
		rd.Enabled = &disabled
	}
	for _, ex := range p.ExcludedScopes {
		rd.Exclude = append(rd.Exclude, steward.Scope("/"+strings.Trim(ex, "/")))
	}
	if e := p.GovernanceEmailNotification; e != nil {
		rd.OwnerEmailOptOut, rd.ManagerEmailOptOut = e.DisableOwnerEmailNotification, e.DisableManagerEmailNotification
	}
	switch p.OwnerSource.Type {
	case "Manually":
		rd.Owner.Email = p.OwnerSource.Value
	case "ByTag":
		rd.Owner.Tag = p.OwnerSource.Value
	default:
		return RuleDoc{}, steward.Errorf(steward.CodeInvalid, "ownerSource.type %q is not ByTag or Manually", p.OwnerSource.Type)
	}
	switch p.RuleType {
	case ruleTypeManual:
	case ruleTypeSNOW:
		if opts.Integration == "" {
			return RuleDoc{}, steward.Errorf(steward.CodeInvalid, "ruleType ServiceNow needs the integration to open tickets with (CLI: --integration)")
		}
		rd.Ticket = &steward.RuleTicket{Integration: opts.Integration, Type: opts.TicketType}
	default:
		return RuleDoc{}, steward.Errorf(steward.CodeInvalid, "ruleType %q is not Integrated or ServiceNow", p.RuleType)
	}
	for i, cs := range p.ConditionSets {
		var set steward.ConditionSet
		for j, c := range cs.Conditions {
			field := fmt.Sprintf("conditionSets[%d].conditions[%d]", i, j)
			vals, err := conditionValues(c, field)
			if err != nil {
				return RuleDoc{}, err
			}
			switch c.Property {
			case propAssessmentKey:
				if set.Recommendation != nil {
					return RuleDoc{}, steward.Errorf(steward.CodeInvalid, "%s: %s appears twice in one condition set", field, c.Property)
				}
				set.Recommendation = vals
			case propSeverity:
				if set.Severity != nil {
					return RuleDoc{}, steward.Errorf(steward.CodeInvalid, "%s: %s appears twice in one condition set", field, c.Property)
				}
				for _, v := range vals {
					set.Severity = append(set.Severity, steward.Severity(v))
				}
			default:
				return RuleDoc{}, steward.Errorf(steward.CodeInvalid, "%s.property %q is not %s or %s", field, c.Property, propAssessmentKey, propSeverity)
			}
		}
		rd.When = append(rd.When, set)
	}
	return rd, nil
}

// conditionValues reads a condition's value: one string for Equals, a JSON
// array inside the string for In.
func conditionValues(c defenderCondition, field string) ([]string, error) {
	switch c.Operator {
	case "Equals":
		return []string{c.Value}, nil
	case "In":
		var vals []string
		if err := json.Unmarshal([]byte(c.Value), &vals); err != nil {
			return nil, steward.Errorf(steward.CodeInvalid, "%s.value %q is not a JSON array of strings, as operator In needs", field, c.Value)
		}
		return vals, nil
	}
	return nil, steward.Errorf(steward.CodeInvalid, "%s.operator %q is not Equals or In", field, c.Operator)
}

// parseTimeframe reads Defender's remediationTimeframe, whole days as
// "7.00:00:00".
func parseTimeframe(s string) (int, error) {
	days, rest, ok := strings.Cut(s, ".")
	n, err := strconv.Atoi(days)
	if !ok || err != nil || rest != "00:00:00" {
		return 0, steward.Errorf(steward.CodeInvalid, "remediationTimeframe %q is not whole days like 7.00:00:00", s)
	}
	return n, nil
}

// defenderScope is the resource-ID prefix a rule's id sits under, e.g.
// /subscriptions/<s> for "subscriptions/<s>/providers/Microsoft.Security/
// governanceRules/<g>"; else fallback.
func defenderScope(id string, fallback steward.Scope) (steward.Scope, error) {
	lower := strings.ToLower(id)
	i := strings.Index(lower, "providers/microsoft.security/governancerules")
	prefix := ""
	if i >= 0 {
		prefix = strings.Trim(id[:i], "/")
	}
	switch {
	case prefix != "" && !strings.HasPrefix(strings.ToLower(prefix), "providers/"):
		return steward.Scope("/" + prefix).Normalize(), nil
	case fallback != "":
		return fallback, nil
	}
	return "", steward.Errorf(steward.CodeInvalid, "id %q names no subscription to take the scope from (CLI: --scope)", id)
}

// ExportDefender writes rules as a Defender for Cloud governance rule list
// ({"value": [...]}) that ImportDefender reads back to the same rules,
// given the same options. Defender has no field for a rule's integration,
// ticket type, grouping, cap, owner fallback or for conditions on cloud,
// source or tags: rules with those conditions are refused, naming them;
// the ticket part becomes ruleType ServiceNow and the fallback is dropped.
func ExportDefender(rs []*steward.Rule) ([]byte, error) {
	out := struct {
		Value []defenderRule `json:"value"`
	}{Value: []defenderRule{}}
	for _, r := range rs {
		d, err := toDefender(r)
		if err != nil {
			return nil, steward.WrapError(steward.CodeInvalid, err, "rule %q: %s", r.Name, steward.ErrorMessage(err))
		}
		out.Value = append(out.Value, d)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("write Defender rules: %w", err)
	}
	return buf.Bytes(), nil
}

func toDefender(r *steward.Rule) (defenderRule, error) {
	id := nameUUID(r.Name)
	prefix := strings.Trim(string(r.Scope), "/")
	if prefix != "" {
		prefix += "/"
	}
	p := defenderFields{
		DisplayName: r.Name, Description: r.Description, RemediationTimeframe: fmt.Sprintf("%d.00:00:00", r.DueInDays),
		IsGracePeriod: r.GracePeriod, RulePriority: r.Priority, IsDisabled: !r.Enabled, RuleType: ruleTypeManual,
		SourceResourceType: "Assessments", ExcludedScopes: []string{},
		GovernanceEmailNotification: &defenderEmail{DisableManagerEmailNotification: r.ManagerEmailOptOut, DisableOwnerEmailNotification: r.OwnerEmailOptOut},
		ConditionSets:               []defenderConditionSet{},
	}
	if r.Ticket != nil {
		p.RuleType = ruleTypeSNOW
	}
	for _, ex := range r.Exclude {
		p.ExcludedScopes = append(p.ExcludedScopes, strings.Trim(string(ex), "/"))
	}
	if r.Owner.Email != "" {
		p.OwnerSource = defenderOwner{Type: "Manually", Value: r.Owner.Email}
	} else {
		p.OwnerSource = defenderOwner{Type: "ByTag", Value: r.Owner.Tag}
	}
	for i, c := range r.When {
		if len(c.Cloud) > 0 || len(c.Source) > 0 || len(c.Tags) > 0 {
			return defenderRule{}, steward.Errorf(steward.CodeInvalid, "when[%d] has conditions on cloud, source or tags, which Defender rules cannot express", i)
		}
		var set defenderConditionSet
		if len(c.Severity) > 0 {
			set.Conditions = append(set.Conditions, defenderConditionOf(propSeverity, strs(c.Severity)))
		}
		if len(c.Recommendation) > 0 {
			set.Conditions = append(set.Conditions, defenderConditionOf(propAssessmentKey, c.Recommendation))
		}
		p.ConditionSets = append(p.ConditionSets, set)
	}
	return defenderRule{ID: prefix + "providers/Microsoft.Security/governanceRules/" + id, Name: id,
		Type: "Microsoft.Security/governanceRules", Properties: p}, nil
}

func defenderConditionOf(prop string, vals []string) defenderCondition {
	if len(vals) == 1 {
		return defenderCondition{Property: prop, Value: vals[0], Operator: "Equals"}
	}
	b, _ := json.Marshal(vals) // a []string always encodes
	return defenderCondition{Property: prop, Value: string(b), Operator: "In"}
}

// nameUUID is a GUID derived from a rule's name (RFC 4122 version 5 shape),
// so Defender's rule name for it is the same on every export.
func nameUUID(name string) string {
	h := sha1.Sum([]byte("steward-rule:" + strings.ToLower(name)))
	h[6] = (h[6] & 0x0f) | 0x50
	h[8] = (h[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
