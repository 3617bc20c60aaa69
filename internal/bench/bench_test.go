package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/stewardjson"
)

func TestMedian(t *testing.T) {
	require.Equal(t, 2.0, Median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, Median([]float64{4, 1, 3, 2}))
	require.Equal(t, 7.0, Median([]float64{7}))
	require.True(t, math.IsNaN(Median(nil)))
	xs := []float64{3, 1, 2}
	Median(xs)
	require.Equal(t, []float64{3, 1, 2}, xs, "the samples keep their order")
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1000; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 990*time.Millisecond, Percentile(ds, 0.99))
	require.Equal(t, 500*time.Millisecond, Percentile(ds, 0.5))
	require.Equal(t, 1000*time.Millisecond, Percentile(ds, 1))
	require.Equal(t, 5*time.Millisecond, Percentile([]time.Duration{5 * time.Millisecond}, 0.99))
	require.Zero(t, Percentile(nil, 0.99))
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		v    float64
		u    Unit
		want string
	}{
		{142345.6, PerSecond, "142,346/s"},
		{639, PerSecond, "639/s"},
		{1.234, Millis, "1.23 ms"},
		{28.46, Millis, "28.5 ms"},
		{1000, Millis, "1,000 ms"},
		{0.4567, Seconds, "0.46 s"},
		{175.4, MiB, "175 MiB"},
		{1.0001, Ratio, "1.000"},
		{1000, Count, "1,000"},
		{math.NaN(), Count, "—"},
	} {
		require.Equal(t, c.want, Format(c.v, c.u))
	}
}

func TestRender(t *testing.T) {
	rows := []Row{
		{Scenario: "import", Measure: "rate", Unit: PerSecond, Values: []float64{150_000, 120_000, 145_000},
			Target: AtLeast(140_000), BaselineText: "68,000/s (recorded)"},
		{Scenario: "pages", Measure: "p99 | scoped", Unit: Millis, Values: []float64{6}, Target: Below(5)},
		{Scenario: "tickets", Measure: "requests per ticket", Unit: Ratio, Values: []float64{1.0001}, Target: AtMost(1)},
		{Scenario: "burst", Measure: "all applied", Unit: Seconds, Values: []float64{0.4, 0.5}, Target: Below(1), Baseline: []float64{9, 11, 10}},
		{Scenario: "sync", Measure: "poll requests", Unit: Count, Values: []float64{2}, Note: "1 run"},
		{Scenario: "burst", Measure: "failed", Unit: Seconds, Values: []float64{0.3}, Target: Below(1), Err: "not within 2m0s"},
	}
	var b bytes.Buffer
	require.NoError(t, Render(&b, rows))
	require.Equal(t, `| scenario | measure | median (runs) | target | baseline | result |
| --- | --- | --- | --- | --- | --- |
| import | rate | **145,000/s** (3) | ≥ 140,000/s | 68,000/s (recorded) | pass |
| pages | p99 \| scoped | **6.00 ms** (1) | < 5.00 ms | — | miss |
| tickets | requests per ticket | **1.000** (1) | ≤ 1.000 | — | pass |
| burst | all applied | **0.45 s** (2) | < 1.00 s | 10.00 s (3) | pass |
| sync | poll requests | **2** (1), 1 run | — | — | — |
| burst | failed | error: not within 2m0s | < 1.00 s | — | — |
`, b.String())
}

// TestEstateShape checks the generated estate against what the page
// scenario relies on: n distinct assessments the Steward JSON parser
// takes, a tenth in SubscriptionScope and all in EstateScope.
func TestEstateShape(t *testing.T) {
	est := NewEstate(2000)
	var b bytes.Buffer
	require.NoError(t, est.Write(&b))

	type key struct{ resource, rec string }
	seen := map[key]bool{}
	inSub, inEstate := 0, 0
	sc := bufio.NewScanner(bytes.NewReader(b.Bytes()))
	for sc.Scan() {
		var row struct {
			Resource       struct{ ID string }
			Recommendation struct{ Key string }
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &row), sc.Text())
		seen[key{row.Resource.ID, row.Recommendation.Key}] = true
		if steward.Scope(SubscriptionScope).Contains(row.Resource.ID) {
			inSub++
		}
		if steward.Scope(EstateScope).Contains(row.Resource.ID) {
			inEstate++
		}
	}
	require.Len(t, seen, 2000)
	require.Equal(t, 200, inSub)
	require.Equal(t, 200, est.InSubscription())
	require.Equal(t, 2000, inEstate)

	var statuses = map[steward.AssessmentStatus]int{}
	require.NoError(t, stewardjson.Parser{}.Parse(context.Background(), bytes.NewReader(b.Bytes()), func(o steward.Observation) error {
		statuses[o.Status]++
		return nil
	}))
	// Half unhealthy, a quarter each healthy and not applicable, in runs of 7.
	require.InDelta(t, 1000, statuses[steward.StatusUnhealthy], 10, statuses)
	require.InDelta(t, 500, statuses[steward.StatusHealthy], 10, statuses)
	require.InDelta(t, 500, statuses[steward.StatusNotApplicable], 10, statuses)

	require.Equal(t, 100_000, NewEstate(1_000_000).InSubscription())
	require.Equal(t, 100, NewEstate(1_000_000).Recs)
}

func TestTicketAssessments(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteTicketAssessments(&b, 50))
	n := 0
	require.NoError(t, stewardjson.Parser{}.Parse(context.Background(), strings.NewReader(b.String()), func(o steward.Observation) error {
		n++
		require.Equal(t, steward.StatusUnhealthy, o.Status)
		require.True(t, steward.Scope(TicketScope).Contains(o.Resource.ID), o.Resource.ID)
		return nil
	}))
	require.Equal(t, 50, n)
}
