package rules

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/assignment"
	"github.com/stewardhq/steward/internal/store"
)

// Reasons a winning rule did not assign an assessment, the keys of
// Outcome.Skipped (and of an import's rule_skipped).
const (
	// SkipNoOwner: the rule's tag is on neither the resource nor its scope
	// chain, and the rule has no fallback.
	SkipNoOwner = "no_owner"
	// SkipNoIntegration: the rule's ticket integration no longer exists
	// (or is being deleted).
	SkipNoIntegration = "no_integration"
	// SkipRefused: the assignment service refused it (e.g. the
	// integration's scope does not hold the resource); logged with why.
	SkipRefused = "refused"
	// SkipOutranked: a rule run found another enabled rule with priority
	// for the assessment.
	SkipOutranked = "outranked"
	// SkipAssigned: a rule run without override found an active
	// assignment.
	SkipAssigned = "already_assigned"
	// SkipManual: a rule run with override found an active assignment a
	// person made; those are never replaced.
	SkipManual = "manual_assignment"
)

// Outcome counts what evaluating rules did.
type Outcome struct {
	Assigned int
	// Replaced counts rule-made assignments ended for a new one (a rule
	// run with override).
	Replaced int
	Skipped  map[string]int
	// Refusal is the first refusal's message (SkipRefused), for the log
	// line that sums the outcome up.
	Refusal string
}

func (o *Outcome) skip(reason string) {
	if o.Skipped == nil {
		o.Skipped = map[string]int{}
	}
	o.Skipped[reason]++
}

// Env is what evaluation needs besides the assessments, loaded once per
// import chunk or rule run: the enabled rules, the tags of scope levels and
// the active integrations by name. Rules are few; loading them per chunk
// keeps a rule change effective from the next chunk on.
type Env struct {
	Rules        []*steward.Rule
	set          *Set // Rules compiled
	scopeTags    map[steward.Scope]map[string]string
	integrations map[string]int64 // by lower-cased, trimmed name
}

// LoadEnv reads the enabled rules, scope tags and integrations.
func LoadEnv(ctx context.Context, db *store.DB) (*Env, error) {
	all, err := db.FindRules(ctx)
	if err != nil {
		return nil, err
	}
	env := &Env{integrations: map[string]int64{}}
	for _, r := range all {
		if r.Enabled {
			env.Rules = append(env.Rules, r)
		}
	}
	env.set = NewSet(env.Rules)
	if len(env.Rules) == 0 {
		return env, nil
	}
	if env.scopeTags, err = db.ScopeTagMap(ctx); err != nil {
		return nil, err
	}
	ins, err := db.FindIntegrations(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		if in.State == steward.IntegrationActive {
			env.integrations[integrationKey(in.Name)] = in.ID
		}
	}
	return env, nil
}

// winner is Winner over env's rules, compiled once.
func (env *Env) winner(t Target) (*steward.Rule, string) {
	if env.set == nil {
		env.set = NewSet(env.Rules)
	}
	return env.set.Winner(t)
}

func integrationKey(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

func (env *Env) lookup(s steward.Scope) map[string]string { return env.scopeTags[s] }

// Evaluator makes the assignments governance rules call for, through the
// assignment service, in its callers' transactions.
type Evaluator struct {
	db     *store.DB
	assign *assignment.Service
	logger *slog.Logger
}

// NewEvaluator returns an Evaluator creating assignments through assign,
// whose Ticketing must be set for rules with a ticket.
func NewEvaluator(db *store.DB, assign *assignment.Service, logger *slog.Logger) *Evaluator {
	return &Evaluator{db: db, assign: assign, logger: logger}
}

// ActorPrefix starts the actor of what a rule does ("rule:<name>").
const ActorPrefix = "rule:"

// OnArrival gives each of the targets (the assessments an import chunk
// turned Unhealthy) that has no active assignment one from its winning
// rule (Winner), in tx. A target no rule wins is left alone; one whose rule
// cannot assign it is counted under a Skip reason and logged, never an
// error: an import does not fail for a rule.
func (e *Evaluator) OnArrival(ctx context.Context, tx *store.Tx, env *Env, targets []store.RuleTarget) (Outcome, error) {
	var out Outcome
	if len(env.Rules) == 0 || len(targets) == 0 {
		return out, nil
	}
	// Only assessments that existed before the chunk can have one.
	var existing []int64
	for _, t := range targets {
		if !t.Created {
			existing = append(existing, t.AssessmentID)
		}
	}
	active := map[int64]store.ActiveAssignment{}
	if len(existing) > 0 {
		var err error
		if active, err = tx.ActiveAssignmentsOf(ctx, existing); err != nil {
			return out, err
		}
	}
	for _, t := range targets {
		if _, ok := active[t.AssessmentID]; ok {
			continue
		}
		tg := target(t)
		r, cond := env.winner(tg)
		if r == nil {
			continue
		}
		req, reason := e.request(env, r, cond, tg)
		if reason != "" {
			e.skipped(ctx, &out, r, t, reason, nil)
			continue
		}
		if err := e.create(ctx, tx, r, t, req, 0, &out); err != nil {
			return out, err
		}
	}
	return out, nil
}

func target(t store.RuleTarget) Target {
	return Target{Assessment: t.Assessment(), Resource: t.Resource, Recommendation: t.Recommendation}
}

// request builds the assignment rule r makes on t, or says why it cannot.
func (e *Evaluator) request(env *Env, r *steward.Rule, cond string, t Target) (assignment.CreateRequest, string) {
	owner := Owner(r, t.Resource, env.lookup)
	if owner == "" {
		return assignment.CreateRequest{}, SkipNoOwner
	}
	req := assignment.CreateRequest{
		AssessmentID:             t.Assessment.ID,
		Type:                     steward.AssignmentManual,
		Owner:                    owner,
		RemediationTimeframeDays: r.DueInDays,
		GracePeriod:              r.GracePeriod,
		OwnerEmailOptOut:         r.OwnerEmailOptOut,
		ManagerEmailOptOut:       r.ManagerEmailOptOut,
		Reason:                   fmt.Sprintf("governance rule %q, %s", r.Name, cond),
		RuleID:                   r.ID,
		RuleCondition:            cond,
	}
	if r.Ticket != nil {
		id, ok := env.integrations[integrationKey(r.Ticket.Integration)]
		if !ok {
			return assignment.CreateRequest{}, SkipNoIntegration
		}
		req.Type = steward.AssignmentServiceNow
		req.Ticket = &assignment.TicketRequest{IntegrationID: id, Type: r.Ticket.Type,
			Group: r.Ticket.GroupBy == steward.GroupByRecommendation}
	}
	return req, ""
}

// create makes req in tx; replace, when not zero, is the rule-made
// assignment it ends first. Both happen in a savepoint, so a refusal
// (counted as SkipRefused) leaves the transaction as it was; other errors
// are returned.
func (e *Evaluator) create(ctx context.Context, tx *store.Tx, r *steward.Rule, t store.RuleTarget, req assignment.CreateRequest,
	replace int64, out *Outcome) error {
	actor := ActorPrefix + r.Name
	err := tx.Savepoint(ctx, func() error {
		if replace != 0 {
			if _, err := e.assign.End(ctx, tx, replace, steward.AssignmentRemoved, actor, "replaced by rule "+r.Name); err != nil {
				return err
			}
		}
		_, err := e.assign.Create(ctx, tx, req, actor)
		return err
	})
	switch steward.ErrorCode(err) {
	case "":
		out.Assigned++
		if replace != 0 {
			out.Replaced++
		}
		return nil
	case steward.CodeInvalid, steward.CodeNotFound, steward.CodeConflict, steward.CodeUnavailable:
		e.skipped(ctx, out, r, t, SkipRefused, err)
		return nil
	}
	return fmt.Errorf("rule %q: assign assessment %d: %w", r.Name, t.AssessmentID, err)
}

// skipped counts a skip. Each is logged at debug level only: a storm of
// findings without owners would flood the log; callers log the counts.
func (e *Evaluator) skipped(ctx context.Context, out *Outcome, r *steward.Rule, t store.RuleTarget, reason string, err error) {
	out.skip(reason)
	attrs := []any{slog.String("rule", r.Name), slog.Int64("assessment_id", t.AssessmentID),
		slog.String("resource", t.Resource.ID), slog.String("reason", reason)}
	if err != nil {
		attrs = append(attrs, slog.Any("err", err))
		if out.Refusal == "" {
			out.Refusal = fmt.Sprintf("rule %q on %s: %s", r.Name, t.Resource.ID, steward.ErrorMessage(err))
		}
	}
	e.logger.DebugContext(ctx, "rule did not assign", attrs...)
}
