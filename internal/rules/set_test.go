package rules_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/rules"
)

// TestSetAgreesWithWinnerRules checks the compiled Set against the rules
// as written (Applies on steward.Scope.Contains, then Match, in priority
// and name order) on random scopes and resource IDs with mixed case,
// trailing slashes and sibling names (s1 / s10), so the fast path cannot
// drift from the definition.
func TestSetAgreesWithWinnerRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	segs := []string{"subscriptions", "SUBSCRIPTIONS", "s1", "S1", "s10", "s1-x", "resourceGroups", "rg", "RG", "vm"}
	randPath := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString("/" + segs[rng.IntN(len(segs))])
		}
		if rng.IntN(4) == 0 {
			b.WriteString("/")
		}
		return b.String()
	}
	sev := []steward.Severity{steward.SeverityLow, steward.SeverityHigh}
	for round := range 300 {
		var rs []*steward.Rule
		for i := range 1 + rng.IntN(8) {
			r := &steward.Rule{
				Name: fmt.Sprintf("r%d", i), Priority: rng.IntN(4), Enabled: rng.IntN(5) > 0,
				Scope: steward.Scope(randPath(rng.IntN(3))),
				When:  []steward.ConditionSet{{Severity: []steward.Severity{sev[rng.IntN(2)]}}},
			}
			if rng.IntN(3) == 0 {
				r.Exclude = []steward.Scope{steward.Scope(randPath(1 + rng.IntN(3)))}
			}
			rs = append(rs, r)
		}
		set := rules.NewSet(rs)
		for range 50 {
			res := &steward.Resource{ID: randPath(1 + rng.IntN(4))}
			tg := rules.Target{Assessment: &steward.Assessment{Severity: sev[rng.IntN(2)]}, Resource: res}
			got, _ := set.Winner(tg)
			want := reference(rs, tg)
			if got != want {
				t.Fatalf("round %d: resource %q: Set picked %v, the rules as written %v (rules %+v)", round, res.ID, name(got), name(want), rs)
			}
		}
	}
}

func reference(rs []*steward.Rule, t rules.Target) *steward.Rule {
	sorted := slices.Clone(rs)
	slices.SortStableFunc(sorted, func(a, b *steward.Rule) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, r := range sorted {
		if r.Enabled && rules.Applies(r, t.Resource.ID) {
			if ok, _ := rules.Match(r, t); ok {
				return r
			}
		}
	}
	return nil
}

func name(r *steward.Rule) string {
	if r == nil {
		return "none"
	}
	return r.Name
}
