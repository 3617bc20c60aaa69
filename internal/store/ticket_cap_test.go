package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// capBundle is a database with one integration and a rule whose tickets
// are capped per day, on a clock the test sets.
type capBundle struct {
	db    *store.DB
	in    *steward.Integration
	rule  *steward.Rule
	today time.Time
	n     int
}

func newCapBundle(t *testing.T, db *store.DB, dailyCap int) *capBundle {
	t.Helper()
	today := time.Date(2031, 3, 14, 0, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return today.Add(15 * time.Hour) }
	in := storetest.Integration(t, db, "prod", "")
	r := &steward.Rule{Name: "capped", Scope: "/", Priority: 1, Enabled: true,
		When:  []steward.ConditionSet{{Severity: []steward.Severity{steward.SeverityHigh}}},
		Owner: steward.OwnerSource{Email: "o@example.com"}, DueInDays: 7,
		Ticket: &steward.RuleTicket{Integration: "prod", DailyCap: dailyCap}}
	require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error { return tx.CreateRule(t.Context(), r, "test") }))
	return &capBundle{db: db, in: in, rule: r, today: today}
}

// at sets the clock to hours after the start of day n (0 is today).
func (b *capBundle) at(n int, hours float64) {
	at := b.today.AddDate(0, 0, n).Add(time.Duration(hours * float64(time.Hour)))
	b.db.Now = func() time.Time { return at }
}

func (b *capBundle) day(n int) time.Time { return b.today.AddDate(0, 0, n) }

// ticket creates a rule-made ServiceNow assignment (ruleID 0: a person's)
// with its pending ticket and returns the assignment ID.
func (b *capBundle) ticket(t *testing.T, ruleID int64) int64 {
	t.Helper()
	b.n++
	as := storetest.Assessment(t, b.db, "r1", fmt.Sprintf("/subscriptions/s1/vm%d", b.n), steward.StatusUnhealthy)
	a := &steward.Assignment{AssessmentID: as.ID, Type: steward.AssignmentServiceNow, Owner: "o@example.com",
		DueDate: b.today.AddDate(0, 0, 7), RuleID: ruleID}
	require.NoError(t, b.db.WithTx(t.Context(), func(tx *store.Tx) error {
		if err := tx.CreateAssignment(t.Context(), a, "rule:capped", ""); err != nil {
			return err
		}
		return tx.CreateTicket(t.Context(), &steward.Ticket{AssignmentID: a.ID, IntegrationID: b.in.ID, Type: steward.TicketTypeIncident,
			Table: "incident", CorrelationID: fmt.Sprintf("test-%d", a.ID), ShortDescription: "s", Description: "d"})
	}))
	return a.ID
}

func (b *capBundle) attempt(t *testing.T, id int64) store.TicketAttempt {
	t.Helper()
	at, err := b.db.MarkTicketAttempt(t.Context(), id)
	require.NoError(t, err)
	return at
}

func (b *capBundle) status(t *testing.T, id int64) *steward.Ticket {
	t.Helper()
	tk, err := b.db.FindTicketByAssignment(t.Context(), id)
	require.NoError(t, err)
	return tk
}

func (b *capBundle) auditCount(t *testing.T, action string) int {
	t.Helper()
	events, _, err := b.db.FindAuditEvents(t.Context(), store.AuditFilter{ActionPrefix: action})
	require.NoError(t, err)
	return len(events)
}

func TestDailyCapAttempts(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		b := newCapBundle(t, db, 2)
		first, second, third := b.ticket(t, b.rule.ID), b.ticket(t, b.rule.ID), b.ticket(t, b.rule.ID)
		manual := b.ticket(t, 0)

		require.Equal(t, store.TicketAttempt{Attempts: 1}, b.attempt(t, first))
		require.Equal(t, store.TicketAttempt{Attempts: 1}, b.attempt(t, second))
		got := b.attempt(t, third)
		require.Equal(t, store.TicketAttempt{DeferredUntil: b.day(1), NewlyDeferred: true}, got)
		tk := b.status(t, third)
		require.Equal(t, steward.TicketDeferred, tk.Status)
		require.Equal(t, b.day(1), *tk.DeferredUntil)
		require.Zero(t, tk.Attempts)
		require.Equal(t, 1, b.auditCount(t, store.AuditTicketDeferred))

		t.Run("RetriesAreNotCounted", func(t *testing.T) {
			require.Equal(t, 2, b.attempt(t, first).Attempts, "a ticket counts on its first send only")
		})
		t.Run("AssignmentsOfPeopleAreNotCapped", func(t *testing.T) {
			require.Equal(t, 1, b.attempt(t, manual).Attempts)
		})
		t.Run("WokenEarlyItWaits", func(t *testing.T) {
			require.Equal(t, store.TicketAttempt{DeferredUntil: b.day(1)}, b.attempt(t, third))
			require.Equal(t, 1, b.auditCount(t, store.AuditTicketDeferred), "audited once")
		})
		t.Run("ListedByStatus", func(t *testing.T) {
			items, _, err := b.db.FindTickets(t.Context(), store.TicketFilter{Status: steward.TicketDeferred})
			require.NoError(t, err)
			require.Len(t, items, 1)
			require.Equal(t, third, items[0].AssignmentID)
		})
		t.Run("OnItsDayItUsesItsPlace", func(t *testing.T) {
			b.at(1, 0.5)
			require.Equal(t, store.TicketAttempt{Attempts: 1}, b.attempt(t, third))
			tk := b.status(t, third)
			require.Equal(t, steward.TicketPending, tk.Status, "being sent")
			require.Equal(t, b.day(1), *tk.DeferredUntil, "kept as history")
			// Day 1 had one place left.
			require.Equal(t, store.TicketAttempt{Attempts: 1}, b.attempt(t, b.ticket(t, b.rule.ID)))
			require.Equal(t, b.day(2), b.attempt(t, b.ticket(t, b.rule.ID)).DeferredUntil)
		})
	})
}

// TestDailyCapBacklog: deferred tickets fill the following days in order,
// cap per day; a changed cap applies from the next ticket; a deferred
// ticket whose assignment ends gives its place back; a deleted rule caps
// nothing.
func TestDailyCapBacklog(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		b := newCapBundle(t, db, 2)
		var days []time.Time
		for range 7 {
			days = append(days, b.attempt(t, b.ticket(t, b.rule.ID)).DeferredUntil)
		}
		require.Equal(t, []time.Time{{}, {}, b.day(1), b.day(1), b.day(2), b.day(2), b.day(3)}, days)

		// Raising the cap gives today and the days already counted more room.
		b.rule.Ticket.DailyCap = 3
		require.NoError(t, b.db.WithTx(t.Context(), func(tx *store.Tx) error {
			return tx.UpdateRule(t.Context(), b.rule.ID, b.rule, "test")
		}))
		require.True(t, b.attempt(t, b.ticket(t, b.rule.ID)).DeferredUntil.IsZero())
		require.Equal(t, b.day(1), b.attempt(t, b.ticket(t, b.rule.ID)).DeferredUntil)

		// A ticket deferred to day 2 whose assignment ended is failed on its
		// day; its place goes to the next ticket.
		ended := b.ticket(t, b.rule.ID)
		require.Equal(t, b.day(2), b.attempt(t, ended).DeferredUntil)
		b.at(2, 1)
		require.NoError(t, b.db.RecordTicketFailure(t.Context(), ended, steward.TicketFailed, "assignment removed before its ticket was created"))
		require.True(t, b.attempt(t, b.ticket(t, b.rule.ID)).DeferredUntil.IsZero(), "the place it gave back")
		require.Equal(t, b.day(3), b.attempt(t, b.ticket(t, b.rule.ID)).DeferredUntil)

		// A deleted rule caps nothing: its tickets are sent, deferred ones when
		// their job runs (on their day).
		waiting := b.ticket(t, b.rule.ID)
		require.Equal(t, b.day(3), b.attempt(t, waiting).DeferredUntil)
		late := b.ticket(t, b.rule.ID)
		require.Equal(t, b.day(4), b.attempt(t, b.ticket(t, b.rule.ID)).DeferredUntil, "day 3 is full")
		require.NoError(t, b.db.WithTx(t.Context(), func(tx *store.Tx) error {
			_, err := tx.DeleteRule(t.Context(), b.rule.ID, "test")
			return err
		}))
		require.Equal(t, 1, b.attempt(t, late).Attempts)
		require.Equal(t, 1, b.attempt(t, waiting).Attempts)
	})
}

// TestDailyCapConcurrent: many first sends at once never pass the cap,
// from one handle's pool or from two handles (two processes) at once.
func TestDailyCapConcurrent(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, b *capBundle, send func(id int64) (store.TicketAttempt, error)) {
		var ids []int64
		for range 30 {
			ids = append(ids, b.ticket(t, b.rule.ID))
		}
		var (
			mu    sync.Mutex
			count = map[time.Time]int{}
			wg    sync.WaitGroup
		)
		for _, id := range ids {
			wg.Go(func() {
				at, err := send(id)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				count[at.DeferredUntil]++
				mu.Unlock()
			})
		}
		wg.Wait()
		require.Equal(t, map[time.Time]int{{}: 7, b.day(1): 7, b.day(2): 7, b.day(3): 7, b.day(4): 2}, count)
	}
	t.Run("OneHandle", func(t *testing.T) {
		t.Parallel()
		storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
			b := newCapBundle(t, db, 7)
			check(t, b, func(id int64) (store.TicketAttempt, error) { return b.db.MarkTicketAttempt(t.Context(), id) })
		})
	})
	t.Run("TwoHandles", func(t *testing.T) {
		t.Parallel()
		storetest.ForEachBackendPair(t, func(t *testing.T, db, other *store.DB) {
			b := newCapBundle(t, db, 7)
			other.Now = db.Now
			check(t, b, func(id int64) (store.TicketAttempt, error) {
				if id%2 == 0 {
					return other.MarkTicketAttempt(t.Context(), id)
				}
				return b.db.MarkTicketAttempt(t.Context(), id)
			})
		})
	})
}
