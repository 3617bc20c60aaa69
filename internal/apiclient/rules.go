package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/stewardhq/steward"
)

// RuleSet is a desired set of rules (rules.Doc's JSON form).
type RuleSet = any

// RulePlan is the API's answer to a plan or apply, decoded loosely so the
// client does not import the server's packages.
type RulePlan struct {
	Create    []RuleChange `json:"create"`
	Change    []RuleChange `json:"change"`
	Delete    []RuleChange `json:"delete"`
	Unchanged int          `json:"unchanged"`
}

// RuleChange is one rule a plan creates, changes or deletes.
type RuleChange struct {
	Name    string   `json:"name"`
	Fields  []string `json:"fields,omitempty"`
	Assign  int      `json:"assign"`
	Tickets int      `json:"tickets"`
}

// ListRules lists every rule the token may see.
func (c *Client) ListRules(ctx context.Context) (*Page[steward.Rule], error) {
	var out Page[steward.Rule]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/rules", nil, nil, &out)
}

// GetRule returns one rule by ID or name.
func (c *Client) GetRule(ctx context.Context, ref string) (*steward.Rule, error) {
	var out steward.Rule
	return &out, c.do(ctx, http.MethodGet, "/api/v1/rules/"+url.PathEscape(ref), nil, nil, &out)
}

// DeleteRule deletes one rule by ID or name.
func (c *Client) DeleteRule(ctx context.Context, ref string) (*steward.Rule, error) {
	var out steward.Rule
	return &out, c.do(ctx, http.MethodDelete, "/api/v1/rules/"+url.PathEscape(ref), nil, nil, &out)
}

// PlanRules plans a desired set of rules; apply makes it. partial leaves
// rules the set does not name alone.
func (c *Client) PlanRules(ctx context.Context, set RuleSet, partial, apply bool) (*RulePlan, error) {
	path := "/api/v1/ruleset/plan"
	if apply {
		path = "/api/v1/ruleset/apply"
	}
	var q url.Values
	if partial {
		q = url.Values{"partial": {"true"}}
	}
	var out RulePlan
	return &out, c.do(ctx, http.MethodPost, path, q, set, &out)
}

// ListScopeTags lists the tags set on scope levels.
func (c *Client) ListScopeTags(ctx context.Context) (*Page[steward.ScopeTags], error) {
	var out Page[steward.ScopeTags]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/scope-tags", nil, nil, &out)
}

// SetScopeTags replaces the tags of one scope level.
func (c *Client) SetScopeTags(ctx context.Context, scope steward.Scope, tags map[string]string) (*steward.ScopeTags, error) {
	var out steward.ScopeTags
	return &out, c.do(ctx, http.MethodPut, "/api/v1/scope-tags", nil, map[string]any{"scope": scope, "tags": tags}, &out)
}
