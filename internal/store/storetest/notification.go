package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
)

func testNotifications(t *testing.T) {
	t.Parallel()
	t.Run("WhoIsTold", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, testNotificationItems)
	})
	t.Run("SentLog", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, testSentLog)
	})
	t.Run("PlanRace", func(t *testing.T) {
		t.Parallel()
		ForEachBackendPair(t, testNotificationPlanRace)
	})
	t.Run("Managers", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, testManagers)
	})
}

// testNotificationItems: digests list an owner's active assignments in any
// letter case, without those the owner opted out of, by the assignment or
// by the rule that made it; escalations list only overdue ones, without
// manager opt-outs; a group member shows its group's ticket.
func testNotificationItems(t *testing.T, db *store.DB) {
	ctx := t.Context()
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	overdue, soon := now.Add(-48*time.Hour), now.Add(72*time.Hour)
	in := Integration(t, db, "snow", "/subscriptions")

	a1 := Assignment(t, db, Assessment(t, db, "r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy).ID, "Ann@Example.com", overdue)
	a2 := ServiceNowAssignment(t, db, Assessment(t, db, "r2", "/subscriptions/s1/vm2", steward.StatusUnhealthy).ID, in.ID, "ann@example.com", soon)
	// The owner opted out on the assignment; the manager did not.
	a3 := &steward.Assignment{AssessmentID: Assessment(t, db, "r3", "/subscriptions/s1/vm3", steward.StatusUnhealthy).ID,
		Owner: "ann@example.com", DueDate: overdue, OwnerEmailOptOut: true}
	// A rule that now opts both out made this one, whose own flags are off.
	rule := &steward.Rule{Name: "quiet", Scope: "/subscriptions", Priority: 10, Enabled: true,
		When:  []steward.ConditionSet{{Severity: []steward.Severity{steward.SeverityHigh}}},
		Owner: steward.OwnerSource{Email: "ann@example.com"}, DueInDays: 7, OwnerEmailOptOut: true, ManagerEmailOptOut: true}
	a4 := &steward.Assignment{AssessmentID: Assessment(t, db, "r4", "/subscriptions/s1/vm4", steward.StatusUnhealthy).ID,
		Owner: "ann@example.com", DueDate: overdue}
	// Bob opted out of everything: no digest for him.
	a5 := &steward.Assignment{AssessmentID: Assessment(t, db, "r5", "/subscriptions/s1/vm5", steward.StatusUnhealthy).ID,
		Owner: "bob@example.com", DueDate: overdue, OwnerEmailOptOut: true, ManagerEmailOptOut: true}
	require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateRule(ctx, rule, "admin@example.com"); err != nil {
			return err
		}
		a4.RuleID = rule.ID
		for _, a := range []*steward.Assignment{a3, a4, a5} {
			if err := tx.CreateAssignment(ctx, a, "tester@example.com", "test"); err != nil {
				return err
			}
		}
		return nil
	}))
	// An ended assignment is not open work.
	ended := Assignment(t, db, Assessment(t, db, "r6", "/subscriptions/s1/vm6", steward.StatusUnhealthy).ID, "ann@example.com", overdue)
	require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.EndAssignment(ctx, ended.ID, steward.AssignmentRemoved, "tester@example.com", "gone")
		return err
	}))
	// The ticket got its number.
	_, err := db.RecordTicketCreated(ctx, a2.ID, &steward.Ticket{SysID: "abc", Number: "INC0010001",
		Link: "https://example.service-now.com/nav_to.do?uri=incident.do?sys_id=abc", StateLabel: "New", State: steward.TicketNew, RawState: "1"})
	require.NoError(t, err)

	owners, err := db.NotificationOwners(ctx)
	require.NoError(t, err)
	require.Len(t, owners, 1)
	require.Equal(t, "ann@example.com", strings.ToLower(owners[0]))

	items, err := db.NotificationItems(ctx, []string{"ANN@example.com"}, false, now)
	require.NoError(t, err)
	require.Equal(t, []int64{a1.ID, a2.ID}, itemIDs(items))
	require.Equal(t, "r2", items[1].RecommendationKey)
	require.Equal(t, "/subscriptions/s1/vm2", items[1].ResourceID)
	require.Equal(t, steward.SeverityHigh, items[1].Severity)
	require.Equal(t, soon, items[1].DueDate)
	require.Equal(t, "INC0010001", items[1].TicketNumber)
	require.Equal(t, "New", items[1].TicketState)
	require.Contains(t, items[1].TicketLink, "sys_id=abc")
	require.Empty(t, items[0].TicketNumber)
	require.Equal(t, steward.AssignmentManual, items[0].Type)
	require.Empty(t, items[0].TicketStatus)
	require.Equal(t, steward.AssignmentServiceNow, items[1].Type)
	require.Equal(t, steward.TicketCreated, items[1].TicketStatus)

	overdueOwners, err := db.OverdueOwners(ctx, now)
	require.NoError(t, err)
	require.Len(t, overdueOwners, 1)
	require.Equal(t, "ann@example.com", strings.ToLower(overdueOwners[0]))
	items, err = db.NotificationItems(ctx, []string{"ann@example.com", "bob@example.com"}, true, now)
	require.NoError(t, err)
	require.Equal(t, []int64{a1.ID, a3.ID}, itemIDs(items), "overdue, without manager opt-outs (a4's rule, a5's own)")

	none, err := db.NotificationItems(ctx, nil, false, now)
	require.NoError(t, err)
	require.Empty(t, none)
}

func itemIDs(items []store.NotificationItem) []int64 {
	var out []int64
	for _, it := range items {
		out = append(out, it.AssignmentID)
	}
	return out
}

// testSentLog: a period is claimed once; a recipient, kind and period is
// planned once in any letter case; transitions are conditional, so only
// one attempt moves a row to sending; listing filters and pages.
func testSentLog(t *testing.T, db *store.DB) {
	ctx := t.Context()
	start := time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC)
	since, err := db.NotificationsSince(ctx, start)
	require.NoError(t, err)
	require.Equal(t, start, since)
	since, err = db.NotificationsSince(ctx, start.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, start, since, "the first record stays")
	var first, again, planned bool
	require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		first, err = tx.ClaimNotificationPeriod(ctx, "2026-W49")
		return err
	}))
	require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		again, err = tx.ClaimNotificationPeriod(ctx, "2026-W49")
		return err
	}))
	require.True(t, first)
	require.False(t, again)
	planned, err = db.NotificationPeriodPlanned(ctx, "2026-W49")
	require.NoError(t, err)
	require.True(t, planned)
	planned, err = db.NotificationPeriodPlanned(ctx, "2026-W50")
	require.NoError(t, err)
	require.False(t, planned)

	plan := func(p store.NotificationPlan) (id int64, created bool) {
		t.Helper()
		require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
			var err error
			id, created, err = tx.PlanNotification(ctx, p)
			return err
		}))
		return id, created
	}
	id, created := plan(store.NotificationPlan{Recipient: "Ann@Example.com", Kind: steward.NotificationDigest, Period: "2026-W49"})
	require.True(t, created)
	id2, created := plan(store.NotificationPlan{Recipient: "ann@example.COM", Kind: steward.NotificationDigest, Period: "2026-W49"})
	require.False(t, created)
	require.Equal(t, id, id2)
	esc, created := plan(store.NotificationPlan{Recipient: "boss@example.com", Kind: steward.NotificationEscalation, Period: "2026-W49",
		Subjects: []string{"ann@example.com", "bob@example.com"}})
	require.True(t, created)
	require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
		_, _, err := tx.PlanNotification(ctx, store.NotificationPlan{Recipient: "not an address", Kind: steward.NotificationDigest, Period: "2026-W49"})
		RequireCode(t, err, steward.CodeInvalid)
		return nil
	}))

	n, err := db.FindNotification(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "Ann@Example.com", n.Recipient)
	require.Equal(t, steward.NotificationPending, n.State)
	require.Nil(t, n.Subjects)
	e, err := db.FindNotification(ctx, esc)
	require.NoError(t, err)
	require.Equal(t, []string{"ann@example.com", "bob@example.com"}, e.Subjects)
	_, err = db.FindNotification(ctx, 99999)
	RequireCode(t, err, steward.CodeNotFound)

	waiting := []steward.NotificationState{steward.NotificationPending, steward.NotificationRetrying}
	mid := "steward.1@example.com"
	ok, err := db.TransitionNotification(ctx, id, waiting, store.NotificationChange{To: steward.NotificationSending, Attempt: true, MessageID: &mid})
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = db.TransitionNotification(ctx, id, waiting, store.NotificationChange{To: steward.NotificationSending, Attempt: true})
	require.NoError(t, err)
	require.False(t, ok, "a second attempt may not take the row")
	reply, at := "250 2.0.0 Ok", time.Date(2026, 11, 30, 8, 1, 0, 0, time.UTC)
	ok, err = db.TransitionNotification(ctx, id, []steward.NotificationState{steward.NotificationSending},
		store.NotificationChange{To: steward.NotificationSent, Reply: &reply, SentAt: &at})
	require.NoError(t, err)
	require.True(t, ok)
	n, err = db.FindNotification(ctx, id)
	require.NoError(t, err)
	require.Equal(t, steward.NotificationSent, n.State)
	require.Equal(t, 1, n.Attempts)
	require.Equal(t, reply, n.Reply)
	require.Equal(t, mid, n.MessageID)
	require.Equal(t, at, *n.SentAt)
	_, err = db.TransitionNotification(ctx, id, nil, store.NotificationChange{To: steward.NotificationSent})
	RequireCode(t, err, steward.CodeInvalid)

	why := "450 4.2.0 try later"
	next := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	ok, err = db.TransitionNotification(ctx, esc, waiting, store.NotificationChange{To: steward.NotificationRetrying, Attempt: true, LastError: &why, NextAttemptAt: &next})
	require.NoError(t, err)
	require.True(t, ok)

	counts, err := db.CountNotifications(ctx)
	require.NoError(t, err)
	require.Equal(t, map[steward.NotificationState]int{steward.NotificationSent: 1, steward.NotificationRetrying: 1}, counts)
	retrying, _, err := db.FindNotifications(ctx, store.NotificationFilter{States: []steward.NotificationState{steward.NotificationRetrying}})
	require.NoError(t, err)
	require.Len(t, retrying, 1)
	require.Equal(t, why, retrying[0].LastError)
	require.Equal(t, next, *retrying[0].NextAttemptAt)
	_, _, err = db.FindNotifications(ctx, store.NotificationFilter{States: []steward.NotificationState{"lost"}})
	RequireCode(t, err, steward.CodeInvalid)

	for i := range 5 {
		plan(store.NotificationPlan{Recipient: fmt.Sprintf("o%d@example.com", i), Kind: steward.NotificationDigest, Period: "2026-W50"})
	}
	all := walk(t, 2, func(cursor string) ([]*steward.Notification, string, error) {
		return db.FindNotifications(ctx, store.NotificationFilter{Period: "2026-W50", Kind: steward.NotificationDigest, Cursor: cursor, Limit: 2})
	})
	require.Len(t, all, 5)
	require.Greater(t, all[0].ID, all[4].ID, "newest first")
	mine, _, err := db.FindNotifications(ctx, store.NotificationFilter{Recipient: "O3@example.com"})
	require.NoError(t, err)
	require.Len(t, mine, 1)
}

// testNotificationPlanRace: two processes planning the same period at once
// plan it once, and the same e-mail once.
func testNotificationPlanRace(t *testing.T, a, b *store.DB) {
	ctx := t.Context()
	claim := func(db *store.DB) func() error {
		return func() error {
			return db.WithTx(ctx, func(tx *store.Tx) error {
				claimed, err := tx.ClaimNotificationPeriod(ctx, "2026-W49")
				if err != nil {
					return err
				}
				if !claimed {
					return steward.Errorf(steward.CodeConflict, "already planned")
				}
				_, created, err := tx.PlanNotification(ctx, store.NotificationPlan{Recipient: "ann@example.com", Kind: steward.NotificationDigest, Period: "2026-W49"})
				if err == nil && !created {
					return fmt.Errorf("claimed the period but the e-mail was already planned")
				}
				return err
			})
		}
	}
	requireOneWins(t, race(claim(a), claim(b)), steward.CodeConflict)
	rows, _, err := a.FindNotifications(ctx, store.NotificationFilter{})
	require.NoError(t, err)
	require.Len(t, rows, 1)

	// Two attempts taking one row to sending: one wins.
	take := func(db *store.DB) func() error {
		return func() error {
			ok, err := db.TransitionNotification(ctx, rows[0].ID, []steward.NotificationState{steward.NotificationPending},
				store.NotificationChange{To: steward.NotificationSending, Attempt: true})
			if err == nil && !ok {
				return steward.Errorf(steward.CodeConflict, "taken")
			}
			return err
		}
	}
	requireOneWins(t, race(take(a), take(b)), steward.CodeConflict)
}

// testManagers: mappings are set, replaced, listed and deleted (audited),
// found managers are recorded per owner.
func testManagers(t *testing.T, db *store.DB) {
	ctx := t.Context()
	m, err := db.PutManagerMapping(ctx, "Ann@Example.com", "boss@example.com", "admin@example.com")
	require.NoError(t, err)
	require.Equal(t, "Ann@Example.com", m.Owner)
	_, err = db.PutManagerMapping(ctx, "ann@example.com", "chief@example.com", "admin@example.com")
	require.NoError(t, err)
	got, err := db.ManagerMappingOf(ctx, "ANN@example.com")
	require.NoError(t, err)
	require.Equal(t, "chief@example.com", got)
	all, err := db.FindManagerMappings(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Equal(t, "ann@example.com", all[0].Owner)
	require.Equal(t, "admin@example.com", all[0].UpdatedBy)

	_, err = db.PutManagerMapping(ctx, "ann@example.com", "ANN@example.com", "admin@example.com")
	RequireCode(t, err, steward.CodeInvalid)
	_, err = db.PutManagerMapping(ctx, "ann@example.com", "nobody", "admin@example.com")
	RequireCode(t, err, steward.CodeInvalid)

	deleted, err := db.DeleteManagerMapping(ctx, "Ann@example.com", "admin@example.com")
	require.NoError(t, err)
	require.Equal(t, "chief@example.com", deleted.Manager)
	require.Equal(t, "ann@example.com", deleted.Owner)
	_, err = db.DeleteManagerMapping(ctx, "ann@example.com", "admin@example.com")
	RequireCode(t, err, steward.CodeNotFound)
	got, err = db.ManagerMappingOf(ctx, "ann@example.com")
	require.NoError(t, err)
	require.Empty(t, got)
	events, _, err := db.FindAuditEvents(ctx, store.AuditFilter{})
	require.NoError(t, err)
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	require.Subset(t, actions, []string{"manager_mapping.set", "manager_mapping.deleted"})

	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	require.NoError(t, db.RecordOwnerManagers(ctx, []steward.OwnerManager{
		{Owner: "ann@example.com", Manager: "boss@example.com", Source: steward.ManagerFromServiceNow, ResolvedAt: at},
		{Owner: "bob@example.com", Source: steward.ManagerUnknown, Detail: "snow: no active user has this e-mail address", ResolvedAt: at},
	}))
	require.NoError(t, db.RecordOwnerManagers(ctx, []steward.OwnerManager{
		{Owner: "Ann@example.com", Source: steward.ManagerUnknown, Detail: "no manager mapping", ResolvedAt: at.Add(time.Hour)},
	}))
	without, err := db.FindOwnerManagers(ctx, true)
	require.NoError(t, err)
	require.Len(t, without, 2)
	require.Equal(t, "Ann@example.com", without[0].Owner)
	require.Equal(t, "no manager mapping", without[0].Detail)
	require.Equal(t, at.Add(time.Hour), without[0].ResolvedAt)
	everyone, err := db.FindOwnerManagers(ctx, false)
	require.NoError(t, err)
	require.Len(t, everyone, 2)
}
