// Package rules evaluates governance rules (steward.Rule): whether a rule
// matches an assessment, which rule wins, who owns what it assigns; and
// reads and writes rules as code (YAML) and as Defender for Cloud JSON,
// with the plan that applying a set of rules would make.
package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/stewardhq/steward"
)

// Target is what a rule is matched against: an assessment with its
// resource and recommendation.
type Target struct {
	Assessment     *steward.Assessment
	Resource       *steward.Resource
	Recommendation *steward.Recommendation
}

// Match reports whether one of the rule's condition sets holds for t, and
// describes the first that does (what an assignment records as the
// condition that matched), e.g. "when[1]: severity High|Critical, cloud
// azure". Scope and exclusions are Applies' business, not Match's.
func Match(r *steward.Rule, t Target) (bool, string) {
	for i, c := range r.When {
		if matchSet(c, t) {
			return true, fmt.Sprintf("when[%d]: %s", i, Describe(c))
		}
	}
	return false, ""
}

func matchSet(c steward.ConditionSet, t Target) bool {
	if c.Empty() {
		return false
	}
	if len(c.Severity) > 0 && !slices.Contains(c.Severity, t.Assessment.Severity) {
		return false
	}
	if len(c.Recommendation) > 0 && !containsFold(c.Recommendation, t.Assessment.RecommendationKey) {
		return false
	}
	if len(c.Cloud) > 0 && !slices.Contains(c.Cloud, t.Resource.Cloud) {
		return false
	}
	if len(c.Source) > 0 && (t.Recommendation == nil || !containsFold(c.Source, t.Recommendation.Source)) {
		return false
	}
	for key, values := range c.Tags {
		v, ok := tag(t.Resource.Tags, key)
		if !ok || !containsFold(values, v) {
			return false
		}
	}
	return true
}

// Describe writes a condition set the short way, fields in a fixed order.
func Describe(c steward.ConditionSet) string {
	var parts []string
	add := func(name string, vals []string) {
		if len(vals) > 0 {
			parts = append(parts, name+" "+strings.Join(vals, "|"))
		}
	}
	add("severity", strs(c.Severity))
	add("recommendation", c.Recommendation)
	add("cloud", strs(c.Cloud))
	add("source", c.Source)
	keys := make([]string, 0, len(c.Tags))
	for k := range c.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add("tag "+k, c.Tags[k])
	}
	return strings.Join(parts, ", ")
}

func strs[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(v string) bool { return strings.EqualFold(v, s) })
}

// tag looks a tag key up in any letter case (Azure's tag keys are
// case-insensitive).
func tag(tags map[string]string, key string) (string, bool) {
	if v, ok := tags[key]; ok {
		return v, true
	}
	for k, v := range tags {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// Applies reports whether the resource lies in the rule's scope and in
// none of its exclusions.
func Applies(r *steward.Rule, resourceID string) bool {
	if !r.Scope.Contains(resourceID) {
		return false
	}
	for _, ex := range r.Exclude {
		if ex.Contains(resourceID) {
			return false
		}
	}
	return true
}

// Winner is the rule that assigns t: of the enabled rules that apply to
// its resource and match it, the one with the lowest priority number (then
// name, though stored rules never tie on overlapping scopes). It returns
// nil when none does, else the rule and the condition that matched. To
// evaluate many targets against the same rules, compile them once with
// NewSet.
func Winner(rs []*steward.Rule, t Target) (*steward.Rule, string) {
	return NewSet(rs).Winner(t)
}

// Set is a list of rules compiled for evaluating many targets: enabled
// rules only, in the order they win (priority, then name), with their
// scopes normalized once, so a target costs one normalization of its
// resource ID and string compares, and evaluation stops at the first rule
// that applies and matches.
type Set struct {
	rules    []*steward.Rule
	scopes   []string   // normalized Scope of rules[i]
	excludes [][]string // normalized Exclude of rules[i]
}

// NewSet compiles rs.
func NewSet(rs []*steward.Rule) *Set {
	s := &Set{}
	for _, r := range rs {
		if r.Enabled {
			s.rules = append(s.rules, r)
		}
	}
	slices.SortStableFunc(s.rules, func(a, b *steward.Rule) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, r := range s.rules {
		s.scopes = append(s.scopes, normScope(r.Scope))
		var ex []string
		for _, e := range r.Exclude {
			ex = append(ex, normScope(e))
		}
		s.excludes = append(s.excludes, ex)
	}
	return s
}

// Rules are the compiled rules in the order they win.
func (s *Set) Rules() []*steward.Rule { return s.rules }

// Winner is the package-level Winner over the compiled rules.
func (s *Set) Winner(t Target) (*steward.Rule, string) {
	id := steward.NormalizeResourceID(t.Resource.ID)
	for i, r := range s.rules {
		if !within(id, s.scopes[i]) || slices.ContainsFunc(s.excludes[i], func(ex string) bool { return within(id, ex) }) {
			continue
		}
		if ok, desc := Match(r, t); ok {
			return r, desc
		}
	}
	return nil, ""
}

// normScope is a scope as within compares it: "" for everything, else the
// normalized scope without its trailing slash.
func normScope(sc steward.Scope) string {
	n := string(sc.Normalize())
	if n == "/" {
		return ""
	}
	return n
}

// within reports whether the normalized resource ID id lies inside the
// normalized scope: equal, or a prefix ending at a segment boundary. It
// agrees with steward.Scope.Contains, which TestSetAgreesWithWinnerRules
// checks, without splitting strings for every rule and target.
func within(id, scope string) bool {
	if scope == "" {
		return true
	}
	if !strings.HasPrefix(id, scope) {
		return false
	}
	return len(id) == len(scope) || id[len(scope)] == '/'
}

// ScopeTagLookup returns the tags set on one normalized scope level (nil
// when none).
type ScopeTagLookup func(steward.Scope) map[string]string

// Owner is the owner of what r assigns on res: the rule's fixed address;
// else the value of its tag on the resource, then on each level of the
// resource's scope chain (ScopeChain), the first that is an e-mail
// address; else the rule's fallback. "" means no owner could be found.
func Owner(r *steward.Rule, res *steward.Resource, lookup ScopeTagLookup) string {
	if r.Owner.Email != "" {
		return r.Owner.Email
	}
	if r.Owner.Tag != "" {
		if v, ok := tag(res.Tags, r.Owner.Tag); ok && isEmail(v) {
			return strings.TrimSpace(v)
		}
		if lookup != nil {
			for _, s := range ScopeChain(res.ID) {
				if v, ok := tag(lookup(s), r.Owner.Tag); ok && isEmail(v) {
					return strings.TrimSpace(v)
				}
			}
		}
	}
	return r.Owner.Fallback
}

func isEmail(s string) bool { return steward.ValidateEmail("owner", strings.TrimSpace(s)) == nil }

// ScopeChain lists the scope levels above a resource, nearest first,
// normalized: /subscriptions/<s>/resourceGroups/<g> then /subscriptions/<s>
// for Azure, /aws/accounts/<a> for AWS, /gcp/projects/<p> for GCP. A
// resource ID of another shape has none.
func ScopeChain(resourceID string) []steward.Scope {
	segs := strings.FieldsFunc(steward.NormalizeResourceID(resourceID), func(r rune) bool { return r == '/' })
	var out []steward.Scope
	switch {
	case len(segs) >= 2 && segs[0] == "subscriptions":
		if len(segs) >= 5 && segs[2] == "resourcegroups" {
			out = append(out, steward.Scope("/"+strings.Join(segs[:4], "/")))
		}
		out = append(out, steward.Scope("/"+strings.Join(segs[:2], "/")))
	case len(segs) >= 4 && segs[0] == "aws" && segs[1] == "accounts",
		len(segs) >= 4 && segs[0] == "gcp" && segs[1] == "projects":
		out = append(out, steward.Scope("/"+strings.Join(segs[:3], "/")))
	}
	return out
}
