package ticketsync_test

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/assignment"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store"
)

// testClock is the store's clock in these tests: real time moved by an
// offset the test sets, read by many workers at once.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Now().UTC().Add(time.Duration(c.offset.Load())) }

// set makes the clock read at from now on (ticking on from there).
func (c *testClock) set(at time.Time) { c.offset.Store(int64(time.Until(at))) }

// noonClock is a test clock at 12:00 UTC today, so a test's first minutes
// stay on one UTC day.
func noonClock() (*testClock, time.Time) {
	y, m, d := time.Now().UTC().Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	c := &testClock{}
	c.set(today.Add(12 * time.Hour))
	return c, today
}

// rule stores an enabled rule on /subscriptions/s1 for High findings whose
// tickets go to the integration "emulator" with a daily cap (0: none).
func (b *testBundle) rule(t *testing.T, name string, dailyCap int) *steward.Rule {
	t.Helper()
	r := &steward.Rule{Name: name, Scope: "/subscriptions/s1", Priority: 10, Enabled: true,
		When:  []steward.ConditionSet{{Severity: []steward.Severity{steward.SeverityHigh}}},
		Owner: steward.OwnerSource{Email: owner}, DueInDays: 14,
		Ticket: &steward.RuleTicket{Integration: "emulator", Type: steward.TicketTypeIncident, DailyCap: dailyCap}}
	require.NoError(t, b.srv.DB.WithTx(t.Context(), func(tx *store.Tx) error { return tx.CreateRule(t.Context(), r, "test") }))
	return r
}

// ruleAssign makes ServiceNow assignments as rule r would, all in one
// transaction (as an import chunk does), and returns their IDs.
func (b *testBundle) ruleAssign(t *testing.T, r *steward.Rule, assessmentIDs []int64) []int64 {
	t.Helper()
	var ids []int64
	err := b.srv.DB.WithTx(t.Context(), func(tx *store.Tx) error {
		for _, id := range assessmentIDs {
			a, err := b.srv.Tickets.Assignments().Create(t.Context(), tx, assignment.CreateRequest{
				AssessmentID: id, Type: steward.AssignmentServiceNow, Owner: owner, RemediationTimeframeDays: r.DueInDays,
				RuleID: r.ID, RuleCondition: "when[0]: severity High",
				Ticket: &assignment.TicketRequest{Type: r.Ticket.Type},
			}, "rule:"+r.Name)
			if err != nil {
				return err
			}
			ids = append(ids, a.ID)
		}
		return nil
	})
	require.NoError(t, err)
	return ids
}

// settledTickets returns the tickets of every listed assignment by status, once
// none is pending or retrying any more.
func (b *testBundle) settledTickets(t *testing.T, ids []int64) map[steward.TicketStatus][]*steward.Ticket {
	t.Helper()
	var out map[steward.TicketStatus][]*steward.Ticket
	require.Eventually(t, func() bool {
		out = map[steward.TicketStatus][]*steward.Ticket{}
		for _, id := range ids {
			tk, err := b.srv.DB.FindTicketByAssignment(t.Context(), id)
			require.NoError(t, err)
			if tk.Status == steward.TicketPending || tk.Status == steward.TicketRetrying {
				return false
			}
			out[tk.Status] = append(out[tk.Status], tk)
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "tickets settle")
	return out
}

// wakeSnoozed makes the snoozed ticket_create jobs due now, which is what
// River does on its own when their time comes on the real clock; the
// store's clock the test moved decides everything else.
func (b *testBundle) wakeSnoozed(t *testing.T) {
	t.Helper()
	// River records a snooze just after the worker returns: wait for it.
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.srv.DB.WithTx(t.Context(), func(tx *store.Tx) error {
			return tx.SQL().QueryRowContext(t.Context(), `SELECT count(*) FROM river_job
				WHERE kind = 'ticket_create' AND state IN ('available', 'running')`).Scan(&n)
		}))
		return n == 0
	}, 30*time.Second, 50*time.Millisecond, "ticket jobs at rest")
	require.NoError(t, b.srv.DB.WithTx(t.Context(), func(tx *store.Tx) error {
		now := `datetime('now', 'subsec')`
		if b.srv.DB.Postgres() {
			now = `now()`
		}
		_, err := tx.SQL().ExecContext(t.Context(), `UPDATE river_job SET state = 'available', scheduled_at = `+now+`
			WHERE kind = 'ticket_create' AND state = 'scheduled'`)
		return err
	}))
}

func day(today time.Time, n int) time.Time { return today.AddDate(0, 0, n) }

// TestDailyCapDefersTickets: a rule with a daily cap of 3 makes 5
// ServiceNow assignments; 3 records are created, 2 tickets wait, visibly
// (status deferred, deferred_until the next UTC midnight, audited once),
// and are created, once each, when the day has rolled over.
func TestDailyCapDefersTickets(t *testing.T) {
	t.Parallel()
	clock, today := noonClock()
	b := setup(t, setupOpts{now: clock.Now})
	assessments := b.seed(t, 5)
	b.integration(t, "oauth_password")
	r := b.rule(t, "capped", 3)
	ids := b.ruleAssign(t, r, assessments)

	got := b.settledTickets(t, ids)
	require.Len(t, got[steward.TicketCreated], 3)
	require.Len(t, got[steward.TicketDeferred], 2)
	require.Equal(t, 3, b.emu.Count("incident"), "never more than the cap")
	tomorrow := day(today, 1)
	for _, tk := range got[steward.TicketDeferred] {
		require.NotNil(t, tk.DeferredUntil)
		require.True(t, tomorrow.Equal(*tk.DeferredUntil), "deferred until %s, want the next UTC midnight", tk.DeferredUntil)
		require.Zero(t, tk.Attempts, "never sent")
	}

	// Visible through the API (validated against the OpenAPI document).
	page, err := b.client.ListTickets(t.Context(), url.Values{"status": {"deferred"}})
	require.NoError(t, err)
	require.Len(t, page.Items, 2)
	require.True(t, tomorrow.Equal(*page.Items[0].DeferredUntil))
	d, err := b.client.GetAssignment(t.Context(), page.Items[0].AssignmentID)
	require.NoError(t, err)
	require.Equal(t, steward.TicketDeferred, d.Ticket.Status)
	require.Equal(t, r.ID, d.RuleID)
	audit, err := b.client.ListAudit(t.Context(), url.Values{"action": {store.AuditTicketDeferred}})
	require.NoError(t, err)
	require.Len(t, audit.Items, 2)
	require.Equal(t, tomorrow.Format(time.RFC3339), audit.Items[0].Details["until"])

	// Woken before their day, they wait on: nothing is sent or audited.
	b.wakeSnoozed(t)
	time.Sleep(time.Second)
	require.Len(t, b.settledTickets(t, ids)[steward.TicketDeferred], 2)
	require.Equal(t, 3, b.emu.Count("incident"))

	// While they wait, one changes owner and the other's resource is
	// fixed. The owner push and the resolve have nothing to do yet, and do
	// not wait (snoozing) for the tickets' day.
	handed, fixed := got[steward.TicketDeferred][0].AssignmentID, got[steward.TicketDeferred][1].AssignmentID
	_, err = b.client.UpdateAssignment(t.Context(), handed, apiclient.AssignmentRequest{Owner: "fred.luddy@example.com"})
	require.NoError(t, err)
	fd, err := b.client.GetAssignment(t.Context(), fixed)
	require.NoError(t, err)
	_, err = b.client.PostAssessments(t.Context(), strings.NewReader(fmt.Sprintf(
		`{"assessments":[{"resource":{"id":%q},"recommendation":{"key":"disk-encryption","severity":"High"},"status":"Healthy"}]}`, fd.ResourceID)))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.srv.DB.WithTx(t.Context(), func(tx *store.Tx) error {
			return tx.SQL().QueryRowContext(t.Context(), `SELECT count(*) FROM river_job
				WHERE kind IN ('ticket_update_owner', 'ticket_resolve') AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&n)
		}))
		return n == 0
	}, 20*time.Second, 50*time.Millisecond, "owner push and resolve done")

	clock.set(tomorrow.Add(time.Minute))
	b.wakeSnoozed(t)
	sent := []int64{}
	for _, id := range ids {
		if id != fixed {
			sent = append(sent, id)
		}
	}
	created := b.waitTickets(t, sent, 30*time.Second)
	b.requireOneRecordEach(t, "incident", created)
	after := created[handed].Ticket
	require.Equal(t, 1, after.Attempts, "sent once")
	require.True(t, tomorrow.Equal(*after.DeferredUntil), "kept as history")
	require.Equal(t, "fred.luddy@example.com", after.AssigneeEmail, "sent with the owner of its day")
	// Its job was woken with the others but may run after them: wait for it
	// to leave deferred (settledTickets counts deferred as settled).
	var tk *steward.Ticket
	require.Eventually(t, func() bool {
		var err error
		tk, err = b.srv.DB.FindTicketByAssignment(t.Context(), fixed)
		require.NoError(t, err)
		return tk.Status != steward.TicketDeferred && tk.Status != steward.TicketPending && tk.Status != steward.TicketRetrying
	}, 30*time.Second, 50*time.Millisecond, "the fixed resource's ticket job ran")
	require.Equal(t, steward.TicketFailed, tk.Status, "a fixed resource's ticket is never sent")
	require.Contains(t, tk.Error, "completed before its ticket was created")
	audit, err = b.client.ListAudit(t.Context(), url.Values{"action": {store.AuditTicketDeferred}})
	require.NoError(t, err)
	require.Len(t, audit.Items, 2, "audited once each")
}

// TestDailyCapConcurrentWorkers: 40 tickets of a rule capped at 10 a day
// reach the 50 ticket workers at once; exactly 10 are sent, the others are
// deferred to the following days, 10 a day, and each day sends its 10. A
// day Steward missed (down) does not send twice the cap: its tickets take
// the next day with room.
func TestDailyCapConcurrentWorkers(t *testing.T) {
	t.Parallel()
	clock, today := noonClock()
	b := setup(t, setupOpts{now: clock.Now})
	assessments := b.seed(t, 40)
	b.integration(t, "basic")
	r := b.rule(t, "capped", 10)
	ids := b.ruleAssign(t, r, assessments)

	got := b.settledTickets(t, ids)
	require.Len(t, got[steward.TicketCreated], 10)
	require.Equal(t, 10, b.emu.Count("incident"))
	perDay := map[time.Time][]int64{}
	for _, tk := range got[steward.TicketDeferred] {
		perDay[*tk.DeferredUntil] = append(perDay[*tk.DeferredUntil], tk.AssignmentID)
	}
	require.Len(t, perDay, 3)
	for n := 1; n <= 3; n++ {
		require.Len(t, perDay[day(today, n)], 10, "day %d", n)
	}

	// Day 1 sends the 10 deferred to it.
	clock.set(day(today, 1).Add(time.Minute))
	b.wakeSnoozed(t)
	b.waitTickets(t, perDay[day(today, 1)], 30*time.Second)
	got = b.settledTickets(t, ids)
	require.Len(t, got[steward.TicketCreated], 20)
	require.Equal(t, 20, b.emu.Count("incident"))

	// Steward misses day 2: on day 3, the 10 of day 3 are sent and the 10
	// of day 2 take day 4, the next with room.
	clock.set(day(today, 3).Add(time.Minute))
	b.wakeSnoozed(t)
	b.waitTickets(t, perDay[day(today, 3)], 30*time.Second)
	// Day 2's tickets were woken too; their jobs may run after day 3's
	// were sent (a deferred ticket counts as settled before and after), so
	// wait until each has been deferred again.
	require.Eventually(t, func() bool {
		got = b.settledTickets(t, ids)
		for _, tk := range got[steward.TicketDeferred] {
			if !day(today, 4).Equal(*tk.DeferredUntil) {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "day 2's tickets deferred again, to day 4")
	require.Len(t, got[steward.TicketCreated], 30)
	require.Equal(t, 30, b.emu.Count("incident"))
	var late []int64
	for _, tk := range got[steward.TicketDeferred] {
		require.True(t, day(today, 4).Equal(*tk.DeferredUntil), "deferred until %s", tk.DeferredUntil)
		late = append(late, tk.AssignmentID)
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	want := perDay[day(today, 2)]
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	require.Equal(t, want, late)

	clock.set(day(today, 4).Add(time.Minute))
	b.wakeSnoozed(t)
	b.requireOneRecordEach(t, "incident", b.waitTickets(t, ids, 30*time.Second))
}

// TestRuleTicketClosedNotFixed: no ping-pong. An agent closes the ticket of
// a rule-made assignment while the resource is still unhealthy; re-imports
// that still find it unhealthy follow the integration's closed-not-fixed
// policy, and the rule, still enabled and matching, opens no new ticket of
// its own.
func TestRuleTicketClosedNotFixed(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"nothing", "new_ticket"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			b := setupSync(t, 1, syncSettings(policy, "flag"))
			r := b.rule(t, "high-to-beth", 0)
			id := b.ruleAssign(t, r, b.ids)[0]
			d := b.waitTickets(t, []int64{id}, 20*time.Second)[id]
			require.Equal(t, r.ID, d.RuleID)

			_, err := b.emu.SetState("incident", d.Ticket.SysID, snowemu.StateChange{State: "7", User: "don.goodliffe"})
			require.NoError(t, err)
			b.poll(t)
			require.Equal(t, steward.AssignmentCompleted, b.get(t, id).State)
			time.Sleep(1100 * time.Millisecond) // the next scan is later than sys_updated_on (seconds)
			b.scan(t, 0, "Unhealthy")
			waitFor(t, "flagged", func() bool { return len(b.audit(t, store.AuditTicketClosedNotFixed)) == 1 })

			active := func() []steward.Assignment {
				page, err := b.client.ListAssignments(t.Context(), url.Values{"resource": {d.ResourceID}})
				require.NoError(t, err)
				return page.Items
			}
			switch policy {
			case "nothing":
				b.scan(t, 0, "Unhealthy")
				time.Sleep(1500 * time.Millisecond) // room for any job a scan queued
				require.Empty(t, active(), "nothing reassigns it")
				require.Equal(t, 1, b.emu.Count("incident"), "no new ticket")
				require.Equal(t, steward.TicketFlagClosedNotFixed, b.get(t, id).Ticket.Flag, "the flag is the signal")
			case "new_ticket":
				waitFor(t, "new ticket", func() bool { return b.emu.Count("incident") == 2 })
				next := active()
				require.Len(t, next, 1)
				require.NotEqual(t, id, next[0].ID)
				b.scan(t, 0, "Unhealthy")
				time.Sleep(1500 * time.Millisecond)
				require.Len(t, active(), 1)
				b.requireOneRecordEach(t, "incident", map[int64]*apiclient.AssignmentDetail{
					id: b.get(t, id), next[0].ID: b.waitTickets(t, []int64{next[0].ID}, 20*time.Second)[next[0].ID]})
			}
		})
	}
}
