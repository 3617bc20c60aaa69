package rules_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/rules"
)

// benchRules are 100 rules shaped like a real estate's: one per
// recommendation, each on one of 20 subscriptions, plus a broad severity
// condition on every fifth, at distinct priorities.
func benchRules() []*steward.Rule {
	var rs []*steward.Rule
	for i := range 100 {
		r := &steward.Rule{
			Name: fmt.Sprintf("rule-%03d", i), Priority: i, Enabled: true,
			Scope: steward.Scope(fmt.Sprintf("/subscriptions/sub-%02d", i%20)),
			When:  []steward.ConditionSet{{Recommendation: []string{fmt.Sprintf("rec-%03d", i)}}},
			Owner: steward.OwnerSource{Tag: "owner", Fallback: "secops@example.com"}, DueInDays: 14,
		}
		if i%5 == 0 {
			r.When = append(r.When, steward.ConditionSet{Severity: []steward.Severity{steward.SeverityCritical}, Cloud: []steward.Cloud{steward.CloudAzure}})
		}
		rs = append(rs, r)
	}
	return rs
}

// BenchmarkWinner100RulesOver1M is the matching half of issue 11's target
// "100 rules evaluated against 1,000,000 assessments in under 10 s": the
// winning rule and matched condition for each of 1,000,000 assessments
// shaped like scripts/benchtool's (20 subscriptions, 100 recommendations,
// 4 severities), in memory. Writing the assignments is measured by
// scripts/bench-rules.sh.
func BenchmarkWinner100RulesOver1M(b *testing.B) {
	rs := benchRules()
	sev := []steward.Severity{steward.SeverityLow, steward.SeverityMedium, steward.SeverityHigh, steward.SeverityCritical}
	const n = 1_000_000
	recs := make([]steward.Recommendation, 100)
	for i := range recs {
		recs[i] = steward.Recommendation{Key: fmt.Sprintf("rec-%03d", i), Severity: sev[i%4], Source: "bench"}
	}
	resources := make([]steward.Resource, n/100)
	for i := range resources {
		resources[i] = steward.Resource{ID: fmt.Sprintf("/subscriptions/sub-%02d/resourceGroups/rg-%d/providers/Microsoft.Compute/virtualMachines/vm-%d", i%20, i%200, i), Cloud: steward.CloudAzure}
	}
	assessments := make([]steward.Assessment, 100)
	for i := range assessments {
		assessments[i] = steward.Assessment{Status: steward.StatusUnhealthy, RecommendationKey: recs[i].Key, Severity: recs[i].Severity}
	}
	set := rules.NewSet(rs)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		won := 0
		for i := range n {
			t := rules.Target{Assessment: &assessments[i%100], Resource: &resources[i/100], Recommendation: &recs[i%100]}
			if r, _ := set.Winner(t); r != nil {
				won++
			}
		}
		b.ReportMetric(float64(won), "assigned")
		b.ReportMetric(time.Since(start).Seconds(), "s/1M")
	}
}
