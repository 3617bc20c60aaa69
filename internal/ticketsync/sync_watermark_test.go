package ticketsync_test

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/itsm/itsmtest"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// TestPollWatermarkStopsAtFirstUnapplied: a poll that fails after applying
// the first records (oldest first) stores the watermark of the last record
// applied, never past the one that failed; the next poll starts there minus
// the overlap and applies the rest.
func TestPollWatermarkStopsAtFirstUnapplied(t *testing.T) {
	t.Parallel()
	db := storetest.MustOpen(t)
	in := storetest.Integration(t, db, "sn", "/")
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	var specs []storetest.LinkSpec
	for i := range 3 {
		as := storetest.Assessment(t, db, "rec", fmt.Sprintf("/subscriptions/s1/vm%d", i), steward.StatusUnhealthy)
		specs = append(specs, storetest.LinkSpec{AssessmentID: as.ID, Type: steward.TicketTypeIncident, Table: "incident",
			CorrelationID: fmt.Sprint("c", i), SysID: fmt.Sprint("sys", i), Number: fmt.Sprint("INC", i), Owner: "beth@example.com",
			RemoteUpdatedAt: t0, ModCount: 1})
	}
	ids := storetest.LinkTickets(t, db, in.ID, specs)
	rec := func(i int, at time.Time) *itsm.Ticket {
		return &itsm.Ticket{Table: "incident", SysID: fmt.Sprint("sys", i), Number: fmt.Sprint("INC", i), RawState: "2",
			StateLabel: "In Progress", State: steward.TicketInProgress, AssignedToEmail: "beth@example.com", UpdatedAt: at, ModCount: 2}
	}
	t1, t2, t3 := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	var sinces []time.Time
	fail := true
	fake := &itsmtest.Fake{ChangedSinceFunc: func(_ context.Context, _ string, since time.Time, _ string) iter.Seq2[*itsm.Ticket, error] {
		sinces = append(sinces, since)
		return func(yield func(*itsm.Ticket, error) bool) {
			if !yield(rec(0, t1), nil) || !yield(rec(1, t2), nil) {
				return
			}
			if fail {
				yield(nil, &itsm.Error{Op: "list changes", Kind: itsm.KindUnavailable, Retryable: true, Status: 500, Message: "server error"})
				return
			}
			yield(rec(2, t3), nil)
		}
	}}
	svc := ticketsync.New(ticketsync.Config{}, db, jobs.NewQueue(),
		func(*steward.Integration, store.IntegrationSecrets) (itsm.Provider, error) { return fake, nil },
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil)

	_, err := svc.Poll(t.Context(), in.ID)
	require.Error(t, err)
	st, err := db.FindSyncState(t.Context(), in.ID)
	require.NoError(t, err)
	require.Equal(t, t2, st.Watermarks["incident"], "up to the last record applied, not past the failure")
	require.Contains(t, st.LastError, "server error")
	require.Equal(t, in.CreatedAt.Add(-ticketsync.PollOverlap), sinces[0], "a first poll starts at the integration's creation")

	fail = false
	rep, err := svc.Poll(t.Context(), in.ID)
	require.NoError(t, err)
	require.Equal(t, t2.Add(-ticketsync.PollOverlap), sinces[1], "resumes from the stored watermark minus the overlap")
	require.Equal(t, 1, rep.Changed, "the two applied records come again as no-ops")
	st, err = db.FindSyncState(t.Context(), in.ID)
	require.NoError(t, err)
	require.Equal(t, t3, st.Watermarks["incident"])
	require.Empty(t, st.LastError)
	for _, id := range ids {
		tk, err := db.FindTicketByAssignment(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, steward.TicketInProgress, tk.State)
	}
}
