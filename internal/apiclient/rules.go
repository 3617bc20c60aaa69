package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

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

// RuleRun is a run of one rule over the assessments that exist.
type RuleRun struct {
	ID          int64          `json:"id"`
	RuleID      int64          `json:"rule_id"`
	RuleName    string         `json:"rule_name"`
	Override    bool           `json:"override"`
	DryRun      bool           `json:"dry_run"`
	State       string         `json:"state"`
	Scanned     int            `json:"scanned"`
	Total       int            `json:"total"`
	Assigned    int            `json:"assigned"`
	Replaced    int            `json:"replaced"`
	Skipped     map[string]int `json:"skipped"`
	Error       string         `json:"error"`
	RequestedBy string         `json:"requested_by"`
	CreatedAt   time.Time      `json:"created_at"`
	StartedAt   *time.Time     `json:"started_at"`
	FinishedAt  *time.Time     `json:"finished_at"`
}

// RunRule runs a rule by ID or name: a dry run answers its counts, a real
// one the queued run (follow it with GetRuleRun).
func (c *Client) RunRule(ctx context.Context, ref string, override, dryRun bool) (*RuleRun, error) {
	var out RuleRun
	return &out, c.do(ctx, http.MethodPost, "/api/v1/rules/"+url.PathEscape(ref)+"/run", nil,
		map[string]bool{"override": override, "dry_run": dryRun}, &out)
}

// GetRuleRun returns one run of a rule.
func (c *Client) GetRuleRun(ctx context.Context, ruleID, runID int64) (*RuleRun, error) {
	var out RuleRun
	return &out, c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/rules/%d/runs/%d", ruleID, runID), nil, nil, &out)
}

// RuleInput is one rule as POST /api/v1/rules and PUT /api/v1/rules/{id}
// take it: the rules file's fields (docs/rules.md). Enabled nil means
// enabled.
type RuleInput struct {
	Name               string                 `json:"name"`
	Description        string                 `json:"description,omitempty"`
	Priority           int                    `json:"priority"`
	Enabled            *bool                  `json:"enabled,omitempty"`
	Scope              steward.Scope          `json:"scope"`
	Exclude            []steward.Scope        `json:"exclude,omitempty"`
	When               []steward.ConditionSet `json:"when"`
	Owner              steward.OwnerSource    `json:"owner"`
	DueInDays          int                    `json:"due_in_days"`
	GracePeriod        bool                   `json:"grace_period,omitempty"`
	OwnerEmailOptOut   bool                   `json:"owner_email_opt_out,omitempty"`
	ManagerEmailOptOut bool                   `json:"manager_email_opt_out,omitempty"`
	Ticket             *steward.RuleTicket    `json:"ticket,omitempty"`
}

// RuleInputOf is the input that recreates rule r.
func RuleInputOf(r *steward.Rule) RuleInput {
	enabled := r.Enabled
	return RuleInput{
		Name: r.Name, Description: r.Description, Priority: r.Priority, Enabled: &enabled, Scope: r.Scope,
		Exclude: r.Exclude, When: r.When, Owner: r.Owner, DueInDays: r.DueInDays, GracePeriod: r.GracePeriod,
		OwnerEmailOptOut: r.OwnerEmailOptOut, ManagerEmailOptOut: r.ManagerEmailOptOut, Ticket: r.Ticket,
	}
}

// CreateRule creates one rule.
func (c *Client) CreateRule(ctx context.Context, in RuleInput) (*steward.Rule, error) {
	var out steward.Rule
	return &out, c.do(ctx, http.MethodPost, "/api/v1/rules", nil, in, &out)
}

// PutRule replaces one rule, by ID or name, with in.
func (c *Client) PutRule(ctx context.Context, ref string, in RuleInput) (*steward.Rule, error) {
	var out steward.Rule
	return &out, c.do(ctx, http.MethodPut, "/api/v1/rules/"+url.PathEscape(ref), nil, in, &out)
}

// ListRuleRuns lists the latest runs of a rule, newest first.
func (c *Client) ListRuleRuns(ctx context.Context, ref string) (*Page[RuleRun], error) {
	var out Page[RuleRun]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/rules/"+url.PathEscape(ref)+"/runs", nil, nil, &out)
}
