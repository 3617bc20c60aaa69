package ticketsync_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/assignment"
	"github.com/stewardhq/steward/internal/rules"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store"
)

// groupRule stores a rule on /subscriptions/s1 whose tickets are grouped
// by recommendation, owned by the test's owner.
func (b *syncBundle) groupRule(t *testing.T) *steward.Rule { return b.groupRuleOwned(t, owner) }

// groupRuleOwned is groupRule with another owner.
func (b *syncBundle) groupRuleOwned(t *testing.T, email string) *steward.Rule {
	t.Helper()
	r := &steward.Rule{Name: "grouped", Scope: "/subscriptions/s1", Priority: 10, Enabled: true,
		When:  []steward.ConditionSet{{Severity: []steward.Severity{steward.SeverityHigh}}},
		Owner: steward.OwnerSource{Email: email}, DueInDays: 14,
		Ticket: &steward.RuleTicket{Integration: "emulator", Type: steward.TicketTypeIncident, GroupBy: steward.GroupByRecommendation}}
	require.NoError(t, b.srv.DB.WithTx(t.Context(), func(tx *store.Tx) error { return tx.CreateRule(t.Context(), r, "test") }))
	return r
}

// groupAssign makes the grouped assignments rule r makes on the
// assessments, in one transaction as an import chunk does.
func (b *syncBundle) groupAssign(t *testing.T, r *steward.Rule, assessmentIDs []int64) []int64 {
	t.Helper()
	var ids []int64
	require.NoError(t, b.srv.DB.WithTx(t.Context(), func(tx *store.Tx) error {
		for _, id := range assessmentIDs {
			a, err := b.srv.Tickets.Assignments().Create(t.Context(), tx, assignment.CreateRequest{
				AssessmentID: id, Type: steward.AssignmentServiceNow, Owner: r.Owner.Email, RemediationTimeframeDays: r.DueInDays,
				RuleID: r.ID, RuleCondition: "when[0]: severity High",
				Ticket: &assignment.TicketRequest{Type: r.Ticket.Type, Group: true},
			}, "rule:"+r.Name)
			if err != nil {
				return err
			}
			ids = append(ids, a.ID)
		}
		return nil
	}))
	return ids
}

// workNotes returns the work notes of a record, oldest first.
func (b *syncBundle) workNotes(sysID string) []string {
	var out []string
	for _, j := range b.emu.Records("sys_journal_field") {
		if j["element_id"] == sysID && j["element"] == "work_notes" {
			out = append(out, j["value"])
		}
	}
	return out
}

// TestGroupTicketLifecycle: five findings of one recommendation under a
// rule grouping by recommendation open exactly one record listing all
// five; a sixth joining later is a work note on it; fixes are noted, and
// the last fix resolves it. Every member shows the shared ticket.
func TestGroupTicketLifecycle(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 6, syncSettings("nothing", "flag"))
	r := b.groupRule(t)
	ids := b.groupAssign(t, r, b.ids[:5])

	waitFor(t, "group ticket created", func() bool { return b.get(t, ids[4]).Ticket.Status == steward.TicketCreated })
	require.Equal(t, 1, b.emu.Count("incident"))
	rec := b.emu.Records("incident")[0]
	for i := range 5 {
		require.Contains(t, rec["description"], "/virtualMachines/vm"+string(rune('0'+i)))
	}
	require.True(t, strings.HasSuffix(rec["correlation_id"], "-g1"), rec["correlation_id"])
	shared := b.get(t, ids[0]).Ticket
	for _, id := range ids {
		d := b.get(t, id)
		require.Equal(t, shared.Number, d.Ticket.Number, "every member shows the shared ticket")
		require.Equal(t, shared.Link, d.Ticket.Link)
	}
	time.Sleep(500 * time.Millisecond)
	require.Empty(t, b.workNotes(shared.SysID), "members listed in the record are not noted again")

	sixth := b.groupAssign(t, r, b.ids[5:])[0]
	waitFor(t, "join noted", func() bool { return len(b.workNotes(shared.SysID)) == 1 })
	require.Contains(t, b.workNotes(shared.SysID)[0], "vm5 joined")
	require.Equal(t, 1, b.emu.Count("incident"))
	require.Equal(t, shared.Number, b.get(t, sixth).Ticket.Number)

	for i := range 5 {
		b.scan(t, i, "Healthy")
	}
	waitFor(t, "fixes noted", func() bool { return len(b.workNotes(shared.SysID)) == 6 })
	got, err := b.emu.Record("incident", shared.SysID)
	require.NoError(t, err)
	require.Equal(t, "1", got["state"], "open while one member is unhealthy")

	b.scan(t, 5, "Healthy")
	waitFor(t, "resolved by the last fix", func() bool {
		got, err := b.emu.Record("incident", shared.SysID)
		require.NoError(t, err)
		return got["state"] == "6"
	})
	require.Equal(t, 1, b.emu.Count("incident"))
	// Steward stores the resolution it wrote, on the shared ticket, and
	// audits it for the member whose fix resolved it.
	waitFor(t, "resolution stored", func() bool { return b.get(t, sixth).Ticket.State == steward.TicketResolved })
	for _, id := range append(ids, sixth) {
		d := b.get(t, id)
		require.Equal(t, steward.AssignmentCompleted, d.State)
		require.Equal(t, steward.TicketResolved, d.Ticket.State)
	}
	resolved := b.audit(t, store.AuditTicketResolved)
	require.Len(t, resolved, 1)
	require.Equal(t, sixth, resolved[0].AssignmentID)
}

// TestGroupTicketOwnerPushAndDelete: a member's new owner is pushed to the
// shared record and, read back, becomes every active member's owner; the
// record deleted in ServiceNow under the "end" policy removes every member.
func TestGroupTicketOwnerPushAndDelete(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 3, syncSettings("nothing", "end"))
	r := b.groupRule(t)
	ids := b.groupAssign(t, r, b.ids)
	waitFor(t, "group ticket created", func() bool { return b.get(t, ids[0]).Ticket.Status == steward.TicketCreated })
	sysID := b.get(t, ids[0]).Ticket.SysID

	_, err := b.client.UpdateAssignment(t.Context(), ids[2], apiclient.AssignmentRequest{Owner: "fred.luddy@example.com"})
	require.NoError(t, err)
	waitFor(t, "owner pushed", func() bool {
		rec, err := b.emu.Record("incident", sysID)
		require.NoError(t, err)
		return b.get(t, ids[2]).Ticket.AssigneeEmail == "fred.luddy@example.com" && rec["assigned_to"] != ""
	})
	for _, id := range ids {
		require.Equal(t, "fred.luddy@example.com", b.get(t, id).Owner, "assignment %d follows the shared ticket", id)
	}

	require.NoError(t, b.emu.DeleteRecord("incident", sysID, "admin"))
	_, err = b.svc().RefreshTicket(t.Context(), b.in.ID, "incident", sysID)
	require.NoError(t, err)
	for _, id := range ids {
		require.Equal(t, steward.AssignmentRemoved, b.get(t, id).State)
	}
}

// TestGroupTicketClosedByAgentEndsAllMembers: an agent closing the shared
// record ends every member assignment, and a reassignment before moves
// every member's owner.
func TestGroupTicketClosedByAgentEndsAllMembers(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 3, syncSettings("nothing", "flag"))
	r := b.groupRule(t)
	ids := b.groupAssign(t, r, b.ids)
	waitFor(t, "group ticket created", func() bool { return b.get(t, ids[0]).Ticket.Status == steward.TicketCreated })
	sysID := b.get(t, ids[0]).Ticket.SysID

	_, err := b.emu.Reassign("incident", sysID, "fred.luddy@example.com", "admin")
	require.NoError(t, err)
	b.poll(t)
	for _, id := range ids {
		require.Equal(t, "fred.luddy@example.com", b.get(t, id).Owner)
	}

	_, err = b.emu.SetState("incident", sysID, snowemu.StateChange{State: "7", User: "don.goodliffe"})
	require.NoError(t, err)
	b.poll(t)
	for _, id := range ids {
		require.Equal(t, steward.AssignmentCompleted, b.get(t, id).State)
	}
	require.Equal(t, 1, b.emu.Count("incident"))
}

// TestGroupTicketRestartMidCreation stops Steward after ServiceNow committed
// the shared record but before Steward recorded it, then starts it again:
// the retry finds the record by the group's correlation ID, so the group
// still has exactly one record, listing every member.
func TestGroupTicketRestartMidCreation(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 4, syncSettings("nothing", "flag"))
	r := b.groupRule(t)
	b.emu.SetFaults(snowemu.Faults{SlowBodyChunk: 8, SlowBodyDelay: 300 * time.Millisecond, Methods: []string{"POST"}, PathPrefix: "/api/now/table/incident"})
	ids := b.groupAssign(t, r, b.ids)
	require.Eventually(t, func() bool { return b.emu.Count("incident") == 1 }, 20*time.Second, 10*time.Millisecond)
	b.stop(t, 100*time.Millisecond) // the worker is cut off mid-answer

	b.emu.SetFaults(snowemu.Faults{})
	b.start(t)
	tickets := b.waitTickets(t, ids, 60*time.Second)
	require.Equal(t, 1, b.emu.Count("incident"))
	rec := b.emu.Records("incident")[0]
	for _, d := range tickets {
		require.Equal(t, rec["number"], d.Ticket.Number)
	}
	require.GreaterOrEqual(t, tickets[ids[0]].Ticket.Attempts, 2, "the record was found on a later attempt")
	require.Equal(t, 4, strings.Count(rec["description"], "\n- /subscriptions/s1/"))
}

// TestGroupTicketIntegrationDelete: deleting the integration of a group
// ticket removes every member assignment, not only the ticket's own.
func TestGroupTicketIntegrationDelete(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 3, syncSettings("nothing", "flag"))
	r := b.groupRule(t)
	ids := b.groupAssign(t, r, b.ids)
	b.waitTickets(t, ids, 30*time.Second)
	p, err := b.client.IntegrationDeletePreview(t.Context(), b.in.ID)
	require.NoError(t, err)
	require.Equal(t, 3, p.ActiveAssignments, "every member")
	require.Equal(t, 1, p.Tickets, "the shared ticket once")
	require.Equal(t, 1, p.OpenTickets)

	_, err = b.client.DeleteIntegration(t.Context(), b.in.ID)
	require.NoError(t, err)
	waitFor(t, "members removed", func() bool {
		for _, id := range ids {
			if b.get(t, id).State != steward.AssignmentRemoved {
				return false
			}
		}
		return true
	})
}

// TestGroupTicketRetryThroughMember: a failed group ticket is retried
// through any member, even after its first member was fixed, and the record
// then lists the members still active.
func TestGroupTicketRetryThroughMember(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 3, syncSettings("nothing", "flag"))
	r := b.groupRuleOwned(t, "nobody@example.com")
	ids := b.groupAssign(t, r, b.ids)
	waitFor(t, "group ticket failed", func() bool { return b.get(t, ids[2]).Ticket.Status == steward.TicketFailed })
	require.Zero(t, b.emu.Count("incident"))

	b.scan(t, 0, "Healthy") // the ticket's own assignment is completed
	waitFor(t, "first member fixed", func() bool { return b.get(t, ids[0]).State == steward.AssignmentCompleted })
	_, err := b.emu.AddUser(snowemu.UserSpec{UserName: "nobody", FirstName: "No", LastName: "Body", Email: "nobody@example.com"})
	require.NoError(t, err)
	_, err = b.client.RetryTicket(t.Context(), ids[2])
	require.NoError(t, err)
	waitFor(t, "group ticket created", func() bool { return b.get(t, ids[2]).Ticket.Status == steward.TicketCreated })
	require.Equal(t, 1, b.emu.Count("incident"))
	desc := b.emu.Records("incident")[0]["description"]
	require.Equal(t, 2, strings.Count(desc, "\n- /subscriptions/s1/"), desc)
	require.NotContains(t, desc, "\n- /subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm0\n")
}

// TestGroupTicketPlanCountsOpenGroups: a plan changing a grouping rule
// whose group of a recommendation is open counts the findings it would
// assign there as joining that ticket, not as a new one.
func TestGroupTicketPlanCountsOpenGroups(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 4, syncSettings("nothing", "flag"))
	r := b.groupRule(t)
	b.groupAssign(t, r, b.ids[:2])

	changed := *r
	changed.DueInDays = 7
	p, err := rules.MakePlan(t.Context(), b.srv.DB, []*steward.Rule{r}, []*steward.Rule{&changed}, rules.PlanOptions{})
	require.NoError(t, err)
	require.Len(t, p.Change, 1)
	require.Equal(t, 2, p.Change[0].Assign)
	require.Zero(t, p.Change[0].Tickets, "they join the open group's ticket")
}

// TestGroupTicketOnArrival: findings an import turns Unhealthy under a rule
// grouping by recommendation share one record, through rule evaluation.
func TestGroupTicketOnArrival(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	_, err := b.client.CreateIntegration(t.Context(), apiclient.IntegrationRequest{
		Name: ptr("emulator"), Scope: ptr("/subscriptions/s1"), InstanceURL: ptr(b.emuURL), Local: ptr(true),
		AuthMode: ptr("basic"), Username: ptr("admin"), Password: ptr(emuPassword), RequestsPerSecond: ptr(500.0),
		Sync: syncSettings("nothing", "flag"),
	})
	require.NoError(t, err)
	sb := &syncBundle{testBundle: b}
	sb.groupRule(t)
	b.seed(t, 5)

	page, err := b.client.ListAssignments(t.Context(), url.Values{"state": {"active"}})
	require.NoError(t, err)
	require.Len(t, page.Items, 5)
	waitFor(t, "group ticket created", func() bool { return b.emu.Count("incident") == 1 && sb.get(t, page.Items[4].ID).Ticket.Number != "" })
	number := sb.get(t, page.Items[0].ID).Ticket.Number
	for _, a := range page.Items {
		require.Equal(t, number, sb.get(t, a.ID).Ticket.Number)
	}
	require.Equal(t, 5, strings.Count(b.emu.Records("incident")[0]["description"], "\n- /subscriptions/s1/"))
}
