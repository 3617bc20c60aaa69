package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
)

// LinkSpec describes one ticket already created in the ITSM, for
// LinkTickets.
type LinkSpec struct {
	AssessmentID  int64
	Type          steward.TicketType
	Table         string
	CorrelationID string
	SysID, Number string
	Owner         string
	// RemoteUpdatedAt and ModCount are the record's version.
	RemoteUpdatedAt time.Time
	ModCount        int
}

// LinkTickets creates, for each spec, an active ServiceNow assignment on its
// assessment with a ticket already created (status created, state New,
// assignee = owner) on integrationID, 2,000 per transaction. It is how
// benchmarks link many existing ITSM records without a request each. It
// returns the assignment IDs in spec order.
func LinkTickets(tb testing.TB, db *store.DB, integrationID int64, specs []LinkSpec) []int64 {
	tb.Helper()
	ids := make([]int64, 0, len(specs))
	due := time.Now().AddDate(0, 0, 30)
	for start := 0; start < len(specs); start += 2000 {
		chunk := specs[start:min(start+2000, len(specs))]
		require.NoError(tb, db.WithTx(tb.Context(), func(tx *store.Tx) error {
			for _, s := range chunk {
				a := &steward.Assignment{AssessmentID: s.AssessmentID, Type: steward.AssignmentServiceNow, Owner: s.Owner, DueDate: due}
				if err := tx.CreateAssignment(tb.Context(), a, "bench@example.com", ""); err != nil {
					return err
				}
				at := s.RemoteUpdatedAt
				tk := &steward.Ticket{AssignmentID: a.ID, IntegrationID: integrationID, Type: s.Type, Table: s.Table,
					CorrelationID: s.CorrelationID, Status: steward.TicketCreated, SysID: s.SysID, Number: s.Number,
					RawState: "1", StateLabel: "New", State: steward.TicketNew, AssigneeEmail: s.Owner,
					RemoteUpdatedAt: &at, ModCount: s.ModCount, ShortDescription: "bench"}
				if err := tx.CreateTicket(tb.Context(), tk); err != nil {
					return err
				}
				ids = append(ids, a.ID)
			}
			return nil
		}))
	}
	return ids
}

// linkOne creates a ServiceNow assignment on a fresh unhealthy assessment
// with a created incident ticket (sys_id sys-<n>, version 1 at at).
func linkOne(t *testing.T, db *store.DB, integrationID int64, n int, at time.Time) *steward.Assignment {
	t.Helper()
	res := fmt.Sprintf("/subscriptions/s1/vm%d", n)
	Apply(t, db, at.Add(-time.Hour), Observation("rec", res, steward.StatusUnhealthy))
	found, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{RecommendationKey: "rec", ResourceID: res})
	require.NoError(t, err)
	require.Len(t, found, 1)
	as := found[0]
	ids := LinkTickets(t, db, integrationID, []LinkSpec{{AssessmentID: as.ID, Type: steward.TicketTypeIncident, Table: "incident",
		CorrelationID: fmt.Sprintf("corr-%d", n), SysID: fmt.Sprintf("sys-%d", n), Number: fmt.Sprintf("INC%07d", n),
		Owner: "beth@example.com", RemoteUpdatedAt: at, ModCount: 1}})
	a, err := db.FindAssignmentByID(t.Context(), ids[0])
	require.NoError(t, err)
	return a
}

func testSync(t *testing.T) {
	t.Run("TicketVersions", func(t *testing.T) {
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := Integration(t, db, "sn", "/")
			other := Integration(t, db, "other", "/")
			at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			a := linkOne(t, db, in.ID, 1, at)
			b := linkOne(t, db, in.ID, 2, at)
			linkOne(t, db, other.ID, 3, at)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				tk, err := tx.FindTicketByAssignment(ctx, b.ID)
				if err != nil {
					return err
				}
				tk.ModCount = 7
				_, err = tx.UpdateTicketRemote(ctx, b.ID, tk)
				return err
			}))
			got, err := db.TicketVersions(ctx, in.ID)
			require.NoError(t, err)
			require.Equal(t, map[int64]int{a.ID: 1, b.ID: 7}, got, "this integration's tickets only, at their versions")
		})
	})
	t.Run("StateBookkeeping", func(t *testing.T) {
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := Integration(t, db, "sn", "/")
			st, err := db.FindSyncState(ctx, in.ID)
			require.NoError(t, err)
			require.Nil(t, st.LastPollAt, "never synced: zero state")
			require.Empty(t, st.Watermarks)

			t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			require.NoError(t, db.RecordSyncStart(ctx, in.ID, "poll", t0))
			require.NoError(t, db.RecordPollResult(ctx, in.ID, store.PollResult{StartedAt: t0,
				Watermarks: map[string]time.Time{"incident": t0.Add(-time.Minute), "problem": t0.Add(-2 * time.Minute)}}))
			// A failed (or slower, older) poll never moves a watermark back.
			require.NoError(t, db.RecordPollResult(ctx, in.ID, store.PollResult{StartedAt: t0.Add(time.Hour), Err: "poll: down",
				Watermarks: map[string]time.Time{"incident": t0.Add(-time.Hour), "problem": t0}}))
			st, err = db.FindSyncState(ctx, in.ID)
			require.NoError(t, err)
			require.Equal(t, t0.Add(-time.Minute), st.Watermarks["incident"])
			require.Equal(t, t0, st.Watermarks["problem"], "what the failed poll applied is kept")
			require.Equal(t, "poll: down", st.LastError)
			require.Equal(t, t0, *st.AppliedThrough, "only a successful poll moves applied-through")
			require.Equal(t, t0, *st.LastPollAt)
			require.NotNil(t, st.LastPollSuccessAt)

			var rep store.ReconcileReport
			rep.Checked, rep.Repaired = 100, 60
			for i := range 60 {
				rep.Repairs = append(rep.Repairs, fmt.Sprintf("INC%d fixed", i))
			}
			require.NoError(t, db.RecordSyncStart(ctx, in.ID, "reconcile", t0))
			require.NoError(t, db.RecordReconcileResult(ctx, in.ID, rep, ""))
			require.NoError(t, db.RecordWebhookAt(ctx, in.ID, t0))
			st, err = db.FindSyncState(ctx, in.ID)
			require.NoError(t, err)
			require.Empty(t, st.LastError, "a success clears the error")
			require.Equal(t, 60, st.LastReconcile.Repaired)
			require.Len(t, st.LastReconcile.Repairs, store.MaxReconcileRepairs, "capped")
			require.NotNil(t, st.LastReconcileSuccessAt)
			require.Equal(t, t0, *st.LastWebhookAt)
			// Processes record webhooks concurrently: an earlier time
			// committed later never moves it back.
			require.NoError(t, db.RecordWebhookAt(ctx, in.ID, t0.Add(-time.Minute)))
			st, err = db.FindSyncState(ctx, in.ID)
			require.NoError(t, err)
			require.Equal(t, t0, *st.LastWebhookAt, "never backwards")
			require.NoError(t, db.RecordWebhookAt(ctx, in.ID, t0.Add(time.Minute)))
			st, err = db.FindSyncState(ctx, in.ID)
			require.NoError(t, err)
			require.Equal(t, t0.Add(time.Minute), *st.LastWebhookAt)
			RequireCode(t, db.RecordSyncStart(ctx, in.ID, "nap", t0), steward.CodeInvalid)
		})
	})

	t.Run("RemoteOrderAndFlags", func(t *testing.T) {
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := Integration(t, db, "sn", "/")
			t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			a := linkOne(t, db, in.ID, 1, t0)
			apply := func(mod int, at time.Time, state steward.TicketState) int {
				var order int
				require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
					var err error
					order, err = tx.UpdateTicketRemote(ctx, a.ID, &steward.Ticket{SysID: "sys-1", RawState: "2", StateLabel: "x", State: state,
						AssigneeEmail: "beth@example.com", RemoteUpdatedAt: &at, ModCount: mod})
					return err
				}))
				return order
			}
			flag := steward.TicketFlagDeleted
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				return tx.SetTicketSync(ctx, a.ID, store.TicketSyncUpdate{Flag: &flag})
			}))
			require.Equal(t, store.RemoteSame, apply(1, t0, steward.TicketNew))
			tk, err := db.FindTicketByAssignment(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, steward.TicketFlagDeleted, tk.Flag, "the same version proves nothing")
			require.Equal(t, store.RemoteNewer, apply(2, t0.Add(time.Second), steward.TicketInProgress))
			require.Equal(t, store.RemoteStale, apply(1, t0.Add(time.Hour), steward.TicketNew))
			tk, err = db.FindTicketByAssignment(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, steward.TicketInProgress, tk.State)
			require.Equal(t, 2, tk.ModCount)
			require.Empty(t, tk.Flag, "a newer version clears deleted_in_itsm")

			msg, ended := "resolution refused by ServiceNow (state New)", "Resolved"
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				return tx.SetTicketSync(ctx, a.ID, store.TicketSyncUpdate{SyncError: &msg, EndedState: &ended})
			}))
			got, err := db.FindAssignmentByID(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, msg, got.Ticket.SyncError)
			require.Equal(t, ended, got.Ticket.EndedState)
			RequireCode(t, db.WithTx(ctx, func(tx *store.Tx) error {
				return tx.SetTicketSync(ctx, 999, store.TicketSyncUpdate{SyncError: &msg})
			}), steward.CodeNotFound)
		})
	})

	t.Run("LinkedTickets", func(t *testing.T) {
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := Integration(t, db, "sn", "/")
			other := Integration(t, db, "other", "/")
			t0 := time.Now().UTC()
			var as []*steward.Assignment
			for i := range 5 {
				as = append(as, linkOne(t, db, in.ID, i, t0))
			}
			linkOne(t, db, other.ID, 9, t0)
			flag := steward.TicketFlagDeleted
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				if err := tx.SetTicketSync(ctx, as[1].ID, store.TicketSyncUpdate{Flag: &flag}); err != nil {
					return err
				}
				_, err := tx.EndAssignment(ctx, as[2].ID, steward.AssignmentCompleted, "system", "healthy")
				return err
			}))
			n, err := db.CountLinkedTickets(ctx, in.ID)
			require.NoError(t, err)
			require.Equal(t, 4, n, "deleted ones are out; a completed assignment whose ticket is open is still verified")
			var got []int64
			var after int64
			for {
				page, err := db.FindLinkedTickets(ctx, in.ID, after, 2)
				require.NoError(t, err)
				if len(page) == 0 {
					break
				}
				for _, tk := range page {
					got = append(got, tk.AssignmentID)
				}
				after = page[len(page)-1].AssignmentID
			}
			require.Equal(t, []int64{as[0].ID, as[2].ID, as[3].ID, as[4].ID}, got)
			tables, err := db.TicketTables(ctx, in.ID, []string{"incident", "problem", "change_request"})
			require.NoError(t, err)
			require.Equal(t, []string{"incident"}, tables)

			var resolve []int64
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				resolve, err = tx.TicketsToResolve(ctx, []int64{as[1].ID, as[2].ID})
				return err
			}))
			require.Equal(t, []int64{as[2].ID}, resolve, "a deleted record is not resolved")
		})
	})

	t.Run("ClosedNotFixedAndReopen", func(t *testing.T) {
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := Integration(t, db, "sn", "/")
			t0 := time.Now().UTC().Add(-time.Hour)
			stillBad := linkOne(t, db, in.ID, 1, t0)
			fixed := linkOne(t, db, in.ID, 2, t0)
			notYet := linkOne(t, db, in.ID, 3, t0)
			endedAt := t0.Add(10 * time.Minute)
			for _, a := range []*steward.Assignment{stillBad, fixed, notYet} {
				require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
					if _, err := tx.EndAssignment(ctx, a.ID, steward.AssignmentCompleted, "servicenow", "ticket resolved"); err != nil {
						return err
					}
					return tx.SetTicketSync(ctx, a.ID, store.TicketSyncUpdate{RemoteEndedAt: &endedAt})
				}))
			}
			check := func() []store.ClosedNotFixed {
				var out []store.ClosedNotFixed
				require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
					var err error
					out, err = tx.CheckClosedNotFixed(ctx)
					return err
				}))
				return out
			}
			require.Empty(t, check(), "no scan since the tickets ended")
			Apply(t, db, endedAt.Add(time.Minute),
				Observation("rec", "/subscriptions/s1/vm1", steward.StatusUnhealthy),
				Observation("rec", "/subscriptions/s1/vm2", steward.StatusHealthy))
			got := check()
			require.Len(t, got, 1)
			require.Equal(t, stillBad.ID, got[0].AssignmentID)
			require.Empty(t, check(), "decided once")
			tk, err := db.FindTicketByAssignment(ctx, stillBad.ID)
			require.NoError(t, err)
			require.Equal(t, steward.TicketFlagClosedNotFixed, tk.Flag)
			tk, err = db.FindTicketByAssignment(ctx, fixed.ID)
			require.NoError(t, err)
			require.Empty(t, tk.Flag)
			Apply(t, db, endedAt.Add(2*time.Minute), Observation("rec", "/subscriptions/s1/vm2", steward.StatusUnhealthy))
			require.Empty(t, check(), "a fixed resource that regressed later is a new finding, not closed-not-fixed")
			Apply(t, db, endedAt.Add(3*time.Minute), Observation("rec", "/subscriptions/s1/vm3", steward.StatusUnhealthy))
			require.Len(t, check(), 1)
			events, _, err := db.FindAuditEvents(ctx, store.AuditFilter{ActionPrefix: store.AuditTicketClosedNotFixed})
			require.NoError(t, err)
			require.Len(t, events, 2)

			var reopened *steward.Assignment
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				reopened, err = tx.ReopenAssignment(ctx, stillBad.ID, "system", "ticket reopened")
				return err
			}))
			require.Equal(t, steward.AssignmentActive, reopened.State)
			history, err := db.FindAssignmentEvents(ctx, stillBad.ID)
			require.NoError(t, err)
			last := history[len(history)-1]
			require.Equal(t, steward.Change{From: "completed", To: "active"}, last.Changes["state"])
			RequireCode(t, db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.ReopenAssignment(ctx, stillBad.ID, "system", "again")
				return err
			}), steward.CodeConflict)
		})
	})
}
