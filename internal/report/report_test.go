package report_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/report"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestTake: the first run backfills the days since the first finding and
// counts them as backfilled, logged once; a second run on the same day
// takes nothing and logs nothing; the next day's run takes one day, daily.
func TestTake(t *testing.T) {
	t.Parallel()
	db := storetest.MustOpen(t)
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	storetest.Apply(t, db, now.AddDate(0, 0, -3), storetest.Observation("rec-a", "/subscriptions/s1/vm1", steward.StatusUnhealthy))

	clock := now
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	s := report.New(db, report.Config{Now: func() time.Time { return clock }}, slog.New(slog.NewTextHandler(&logs, nil)), reg)
	days := func(source string) float64 {
		return testutil.ToFloat64(s.DaysTaken().WithLabelValues(source))
	}

	res, err := s.Take(t.Context())
	require.NoError(t, err)
	require.Equal(t, 3, res.Finalized, "the three ended days since the finding was first seen")
	require.True(t, res.Backfilled)
	require.True(t, res.Provisional)
	require.Equal(t, 3.0, days("backfill"))
	require.Equal(t, 1, strings.Count(logs.String(), "governance snapshots taken"))

	res, err = s.Take(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Finalized)
	require.False(t, res.Provisional, "refreshed a moment ago, nothing changed")
	require.Equal(t, 1, strings.Count(logs.String(), "governance snapshots taken"))

	clock = now.AddDate(0, 0, 1)
	res, err = s.Take(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, res.Finalized)
	require.False(t, res.Backfilled)
	require.Equal(t, 1.0, days("daily"))
	require.Equal(t, 3.0, days("backfill"))
	require.Equal(t, 3, testutil.CollectAndCount(reg, "steward_governance_snapshot_seconds", "steward_governance_snapshot_days_total"),
		"the duration histogram, and the days of two sources")
}
