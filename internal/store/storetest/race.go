package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stretchr/testify/require"
)

// raceRounds is how many times each race is run: one round may happen not
// to overlap, twenty on two cores do.
const raceRounds = 20

// race runs fa and fb at the same moment, each on a goroutine of its own,
// and returns their errors.
func race(fa, fb func() error) [2]error {
	start := make(chan struct{})
	var errs [2]error
	var wg sync.WaitGroup
	wg.Go(func() { <-start; errs[0] = fa() })
	wg.Go(func() { <-start; errs[1] = fb() })
	close(start)
	wg.Wait()
	return errs
}

// requireOneWins fails unless exactly one of errs is nil and the other
// carries code; it returns the winner's index.
func requireOneWins(t *testing.T, errs [2]error, code steward.Code) int {
	t.Helper()
	switch {
	case errs[0] == nil && errs[1] != nil:
		RequireCode(t, errs[1], code)
		return 0
	case errs[1] == nil && errs[0] != nil:
		RequireCode(t, errs[0], code)
		return 1
	}
	t.Fatalf("want exactly one winner, got errors %v and %v", errs[0], errs[1])
	return -1
}

// testRaces makes two writers, each with a handle of its own on one
// database (as two Steward processes have), race where "exactly once" or
// "never backwards" must hold. On PostgreSQL these fail without the
// store's row locks, advisory locks or unique keys.
func testRaces(t *testing.T) {
	t.Parallel()

	t.Run("OneActiveAssignment", func(t *testing.T) {
		t.Parallel()
		ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
			ctx := t.Context()
			for i := range raceRounds {
				asm := Assessment(t, a, "race", fmt.Sprintf("/subscriptions/s1/vm%d", i), steward.StatusUnhealthy)
				create := func(db *store.DB) func() error {
					return func() error {
						return db.WithTx(ctx, func(tx *store.Tx) error {
							return tx.CreateAssignment(ctx, &steward.Assignment{AssessmentID: asm.ID, Owner: "o@example.com",
								DueDate: t0.Add(24 * time.Hour)}, "tester@example.com", "race")
						})
					}
				}
				requireOneWins(t, race(create(a), create(b)), steward.CodeConflict)
				got, _, err := b.FindAssignments(ctx, store.AssignmentFilter{AssessmentIDs: []int64{asm.ID}})
				require.NoError(t, err)
				require.Len(t, got, 1, "round %d: one active assignment", i)
			}
		})
	})

	t.Run("NoActiveAssignmentOnAFixedFinding", func(t *testing.T) {
		t.Parallel()
		ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
			ctx := t.Context()
			for i := range raceRounds {
				res := fmt.Sprintf("/subscriptions/s1/vm%d", i)
				asm := Assessment(t, a, "race", res, steward.StatusUnhealthy)
				errs := race(func() error {
					return a.WithTx(ctx, func(tx *store.Tx) error {
						return tx.CreateAssignment(ctx, &steward.Assignment{AssessmentID: asm.ID, Owner: "o@example.com",
							DueDate: t0.Add(24 * time.Hour)}, "tester@example.com", "race")
					})
				}, func() error {
					return b.WithTx(ctx, func(tx *store.Tx) error {
						_, err := tx.ApplyObservations(ctx, []steward.Observation{Observation("race", res, steward.StatusHealthy)}, time.Time{})
						return err
					})
				})
				require.NoError(t, errs[1])
				if errs[0] != nil {
					RequireCode(t, errs[0], steward.CodeInvalid) // it saw the finding fixed
				}
				got, err := b.FindAssessmentByID(ctx, asm.ID)
				require.NoError(t, err)
				require.Equal(t, steward.StatusHealthy, got.Status)
				require.Zero(t, got.AssignmentID, "round %d: an assignment made first is completed by the fix", i)
			}
		})
	})

	t.Run("IngestChunksTakeTurns", func(t *testing.T) {
		t.Parallel()
		ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
			ctx := t.Context()
			const n = 50
			for i := range raceRounds {
				// Both chunks see the same findings for the first time; the
				// later one also sees them turn Healthy an hour on.
				var first, later []steward.Observation
				for j := range n {
					o := Observation(fmt.Sprintf("rec%d", i), fmt.Sprintf("/subscriptions/s%d/vm%d", i, j), steward.StatusUnhealthy)
					o.ObservedAt = t0
					first = append(first, o)
					o.Status, o.ObservedAt = steward.StatusHealthy, t1
					later = append(later, o)
				}
				var res [2]store.ApplyResult
				apply := func(db *store.DB, k int, obs []steward.Observation) func() error {
					return func() error {
						return db.WithTx(ctx, func(tx *store.Tx) error {
							var err error
							res[k], err = tx.ApplyObservations(ctx, obs, time.Time{})
							return err
						})
					}
				}
				errs := race(apply(a, 0, first), apply(b, 1, later))
				require.NoError(t, errs[0], "round %d", i)
				require.NoError(t, errs[1], "round %d", i)
				require.Equal(t, n, res[0].AssessmentsCreated+res[1].AssessmentsCreated, "round %d: each finding created once", i)
				require.Equal(t, n, res[0].ResourcesCreated+res[1].ResourcesCreated, "round %d", i)
				got, _, err := b.FindAssessments(ctx, store.AssessmentFilter{RecommendationKey: fmt.Sprintf("rec%d", i), Limit: n})
				require.NoError(t, err)
				require.Len(t, got, n)
				for _, asm := range got {
					require.Equal(t, steward.StatusHealthy, asm.Status, "round %d: the later observation wins", i)
				}
			}
		})
	})

	t.Run("TicketCreatedOnce", func(t *testing.T) {
		t.Parallel()
		ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
			ctx := t.Context()
			in := Integration(t, a, "sn", "/")
			for i := range raceRounds {
				asm := Assessment(t, a, "race", fmt.Sprintf("/subscriptions/s1/vm%d", i), steward.StatusUnhealthy)
				sa := ServiceNowAssignment(t, a, asm.ID, in.ID, "o@example.com", t0.Add(24*time.Hour))
				record := func(db *store.DB, sysID string) func() error {
					return func() error {
						_, err := db.RecordTicketCreated(ctx, sa.ID, &steward.Ticket{SysID: sysID, Number: "INC-" + sysID})
						return err
					}
				}
				sysIDs := [2]string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)}
				won := requireOneWins(t, race(record(a, sysIDs[0]), record(b, sysIDs[1])), steward.CodeConflict)
				tk, err := b.FindTicketByAssignment(ctx, sa.ID)
				require.NoError(t, err)
				require.Equal(t, sysIDs[won], tk.SysID)
				events, _, err := b.FindAuditEvents(ctx, store.AuditFilter{AssignmentID: sa.ID, ActionPrefix: store.AuditTicketCreated})
				require.NoError(t, err)
				require.Len(t, events, 1, "round %d: the ticket is recorded created once", i)
			}
		})
	})

	t.Run("IntegrationDeleteSeesTicketBeingCreated", func(t *testing.T) {
		t.Parallel()
		ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
			ctx := t.Context()
			in := Integration(t, a, "sn", "/")
			asm := Assessment(t, a, "race", "/subscriptions/s1/vm1", steward.StatusUnhealthy)
			// a creates a ticket on the integration and holds its
			// transaction open while b marks the integration and deletes it.
			created, release, aDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
			var errA error
			go func() {
				defer close(aDone)
				errA = a.WithTx(ctx, func(tx *store.Tx) error {
					g := &steward.Assignment{AssessmentID: asm.ID, Type: steward.AssignmentServiceNow, Owner: "o@example.com", DueDate: t1}
					if err := tx.CreateAssignment(ctx, g, "tester@example.com", "race"); err != nil {
						return err
					}
					if err := tx.CreateTicket(ctx, &steward.Ticket{AssignmentID: g.ID, IntegrationID: in.ID, Type: steward.TicketTypeIncident,
						Table: "incident", CorrelationID: "race-1", ShortDescription: "s", Description: "d"}); err != nil {
						return err
					}
					close(created)
					<-release
					return nil
				})
			}()
			select {
			case <-created:
			case <-aDone:
				require.NoError(t, errA)
			}
			deleted := make(chan error, 1)
			go func() {
				deleted <- b.WithTx(ctx, func(tx *store.Tx) error {
					if _, err := tx.MarkIntegrationDeleting(ctx, in.ID, "admin@example.com"); err != nil {
						return err
					}
					return tx.DeleteIntegration(ctx, in.ID, "admin@example.com")
				})
			}()
			if b.Postgres() {
				// Until the delete waits for a's transaction (or is done).
				require.Eventually(t, func() bool {
					if len(deleted) > 0 {
						return true
					}
					var n int
					err := a.Writer().QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
						WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
					return err == nil && n > 0
				}, 10*time.Second, 5*time.Millisecond)
			}
			close(release)
			<-aDone
			require.NoError(t, errA)
			RequireCode(t, <-deleted, steward.CodeConflict) // it counted the new active assignment
			_, err := b.FindIntegrationByID(ctx, in.ID)
			require.NoError(t, err, "the integration is still there")
		})
	})

	t.Run("WatermarkNeverMovesBack", func(t *testing.T) {
		t.Parallel()
		ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
			ctx := t.Context()
			in := Integration(t, a, "sn", "/")
			const polls = 100
			base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			// Each writer records later watermarks than its last, the two
			// interleaved (a even, b odd microseconds); neither may ever
			// read back less than it recorded.
			poll := func(db *store.DB, odd int) func() error {
				return func() error {
					for i := range polls {
						w := base.Add(time.Duration(2*i+odd) * time.Microsecond)
						if err := db.RecordPollResult(ctx, in.ID, store.PollResult{StartedAt: w,
							Watermarks: map[string]time.Time{"incident": w}}); err != nil {
							return err
						}
						st, err := db.FindSyncState(ctx, in.ID)
						if err != nil {
							return err
						}
						if got := st.Watermarks["incident"]; got.Before(w) {
							return fmt.Errorf("the watermark moved back from %s to %s", w.Format(time.RFC3339Nano), got.Format(time.RFC3339Nano))
						}
					}
					return nil
				}
			}
			errs := race(poll(a, 0), poll(b, 1))
			require.NoError(t, errs[0])
			require.NoError(t, errs[1])
			st, err := a.FindSyncState(ctx, in.ID)
			require.NoError(t, err)
			last := base.Add(time.Duration(2*(polls-1)+1) * time.Microsecond)
			require.Equal(t, last, st.Watermarks["incident"], "the latest watermark wins")
			require.Equal(t, last, *st.AppliedThrough)
		})
	})

	t.Run("OneQueuedSourceRun", func(t *testing.T) {
		t.Parallel()
		ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
			ctx := t.Context()
			src := &store.SourceRecord{Source: steward.Source{Name: "src", Kind: "test", Scope: "/subscriptions/s1", Enabled: true,
				Settings: []byte(`{}`)}, ScheduleEvery: time.Hour}
			require.NoError(t, a.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateSource(ctx, src, nil, "admin") }))
			// What queueing a run does: none queued or running, so queue one.
			queue := func(db *store.DB) func() error {
				return func() error {
					return db.WithTx(ctx, func(tx *store.Tx) error {
						active, err := tx.ActiveSourceRun(ctx, src.ID)
						if err != nil || active != nil {
							return err
						}
						return tx.CreateSourceRun(ctx, &steward.SourceRun{SourceID: src.ID, RequestedBy: "race"})
					})
				}
			}
			for i := range raceRounds {
				errs := race(queue(a), queue(b))
				require.NoError(t, errs[0])
				require.NoError(t, errs[1])
				runs, err := b.FindSourceRuns(ctx, src.ID, 2*raceRounds)
				require.NoError(t, err)
				var queued []*steward.SourceRun
				for _, r := range runs {
					if r.State == steward.SourceRunQueued {
						queued = append(queued, r)
					}
				}
				require.Len(t, queued, 1, "round %d: one run queued", i)
				queued[0].State = steward.SourceRunDone
				require.NoError(t, a.WithTx(ctx, func(tx *store.Tx) error { return tx.UpdateSourceRun(ctx, queued[0]) }))
			}
		})
	})

	t.Run("ScopeTagMergesKeepBoth", func(t *testing.T) {
		t.Parallel()
		ForEachBackendPair(t, func(t *testing.T, a, b *store.DB) {
			ctx := t.Context()
			for i := range raceRounds {
				scope := steward.Scope(fmt.Sprintf("/subscriptions/s%d", i))
				merge := func(db *store.DB, key string) func() error {
					return func() error {
						return db.WithTx(ctx, func(tx *store.Tx) error {
							_, err := tx.MergeScopeTags(ctx, scope, map[string]string{key: "x"}, "source:"+key)
							return err
						})
					}
				}
				errs := race(merge(a, "a"), merge(b, "b"))
				require.NoError(t, errs[0])
				require.NoError(t, errs[1])
				tags, err := a.ScopeTagMap(ctx)
				require.NoError(t, err)
				require.Equal(t, map[string]string{"a": "x", "b": "x"}, tags[scope], "round %d: neither merge is lost", i)
			}
		})
	})
}
