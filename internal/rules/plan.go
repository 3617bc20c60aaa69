package rules

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Plan is what applying a desired set of rules would change.
type Plan struct {
	Create []RuleChange `json:"create"`
	Change []RuleChange `json:"change"`
	Delete []RuleChange `json:"delete"`
	// Unchanged counts the rules the set leaves as they are.
	Unchanged int `json:"unchanged"`

	changes store.RuleChanges
}

// RuleChange is one rule the plan creates, changes or deletes.
type RuleChange struct {
	Name string `json:"name"`
	// Fields names what a change changes.
	Fields []string `json:"fields,omitempty"`
	// Assign counts the Unhealthy assessments that have no active
	// assignment today and that the rule, once created or changed, would
	// assign (it wins for them and an owner is found).
	Assign int `json:"assign"`
	// Tickets counts the tickets those assignments would open: one each,
	// or one per recommendation with group_by recommendation (none where the
	// rule's group of that recommendation is open already). Daily caps
	// spread them over days but do not change the count.
	Tickets int `json:"tickets"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Create)+len(p.Change)+len(p.Delete) == 0 }

// PlanOptions tune a plan.
type PlanOptions struct {
	// Partial leaves current rules that the desired set does not name as
	// they are, instead of deleting them (an import adds to the rules).
	Partial bool
	// Scope limits the assessments counted (a scope-limited caller's).
	Scope steward.Scope
}

// MakePlan compares the desired rules (validated, e.g. by Doc.Desired)
// with the current ones by name, in any letter case, and counts what each
// created or changed rule would assign among today's unassigned Unhealthy
// assessments, evaluating every rule of the resulting set (Winner).
func MakePlan(ctx context.Context, db *store.DB, current, desired []*steward.Rule, opts PlanOptions) (*Plan, error) {
	p := &Plan{Create: []RuleChange{}, Change: []RuleChange{}, Delete: []RuleChange{}}
	byName := map[string]*steward.Rule{}
	for _, r := range current {
		byName[strings.ToLower(r.Name)] = r
	}
	named := map[string]bool{}
	var final, kept []*steward.Rule
	touched := map[*steward.Rule]*RuleChange{}
	for _, d := range desired {
		key := strings.ToLower(d.Name)
		named[key] = true
		cur, ok := byName[key]
		switch {
		case !ok:
			p.Create = append(p.Create, RuleChange{Name: d.Name})
			p.changes.Create = append(p.changes.Create, d)
		case len(store.ChangedRuleFields(cur, d)) > 0:
			upd := *d
			upd.ID = cur.ID
			p.Change = append(p.Change, RuleChange{Name: d.Name, Fields: store.ChangedRuleFields(cur, d)})
			p.changes.Update = append(p.changes.Update, &upd)
		default:
			p.Unchanged++
		}
		final = append(final, d)
	}
	for _, r := range current {
		if named[strings.ToLower(r.Name)] {
			continue
		}
		if opts.Partial {
			kept = append(kept, r)
			continue
		}
		p.Delete = append(p.Delete, RuleChange{Name: r.Name})
		p.changes.Delete = append(p.changes.Delete, r.ID)
	}
	// Kept rules first, so a clash names the desired rule as the new one.
	final = append(kept, final...)
	if err := checkClashes(final); err != nil {
		return nil, err
	}
	for i := range p.Create {
		touched[p.changes.Create[i]] = &p.Create[i]
	}
	for i, d := range desired {
		for j := range p.Change {
			if strings.EqualFold(p.Change[j].Name, d.Name) {
				touched[desired[i]] = &p.Change[j]
			}
		}
	}
	if len(touched) == 0 {
		return p, nil
	}
	if err := count(ctx, db, final, touched, opts.Scope); err != nil {
		return nil, err
	}
	return p, nil
}

// count fills Assign and Tickets of the touched rules.
func count(ctx context.Context, db *store.DB, final []*steward.Rule, touched map[*steward.Rule]*RuleChange, scope steward.Scope) error {
	tags, err := db.ScopeTagMap(ctx)
	if err != nil {
		return err
	}
	lookup := func(s steward.Scope) map[string]string { return tags[s] }
	// A finding a grouping rule assigns on a recommendation whose group is
	// open joins its ticket: it opens none.
	open, err := db.OpenTicketGroups(ctx)
	if err != nil {
		return err
	}
	groups := map[*steward.Rule]map[string]bool{}
	for _, r := range final {
		if g := open[strings.ToLower(strings.TrimSpace(r.Name))]; g != nil {
			groups[r] = maps.Clone(g)
		}
	}
	set := NewSet(final)
	err = db.ForEachUnassignedUnhealthy(ctx, scope, func(a *steward.Assessment, res *steward.Resource, rec *steward.Recommendation) error {
		w, _ := set.Winner(Target{Assessment: a, Resource: res, Recommendation: rec})
		ch, ok := touched[w]
		if !ok || Owner(w, res, lookup) == "" {
			return nil
		}
		ch.Assign++
		switch {
		case w.Ticket == nil:
		case w.Ticket.GroupBy == steward.GroupByRecommendation:
			if groups[w] == nil {
				groups[w] = map[string]bool{}
			}
			if !groups[w][a.RecommendationKey] {
				groups[w][a.RecommendationKey] = true
				ch.Tickets++
			}
		default:
			ch.Tickets++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("count what the rules would assign: %w", err)
	}
	return nil
}

// Apply makes the plan's changes in one transaction, audited as actor.
func (p *Plan) Apply(ctx context.Context, db *store.DB, actor string) error {
	if p.Empty() {
		return nil
	}
	return db.WithTx(ctx, func(tx *store.Tx) error {
		return tx.ApplyRules(ctx, p.changes, actor)
	})
}
