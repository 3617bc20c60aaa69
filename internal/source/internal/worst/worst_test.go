package worst

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

func TestKeep(t *testing.T) {
	obs := func(rec, res string, st steward.AssessmentStatus) steward.Observation {
		return steward.Observation{Recommendation: steward.Recommendation{Key: rec}, Resource: steward.Resource{ID: res}, Status: st}
	}
	s := New()
	require.True(t, s.Keep(obs("r1", "/a", steward.StatusHealthy)), "first of its pair")
	require.False(t, s.Keep(obs("r1", "/A", steward.StatusHealthy)), "same pair (IDs normalized), not worse")
	require.True(t, s.Keep(obs("r1", "/a", steward.StatusNotApplicable)), "worse")
	require.True(t, s.Keep(obs("r1", "/a", steward.StatusUnhealthy)), "worse again")
	require.False(t, s.Keep(obs("r1", "/a", steward.StatusHealthy)), "better: the worst stays")
	require.True(t, s.Keep(obs("r2", "/a", steward.StatusHealthy)), "another pair")
}
