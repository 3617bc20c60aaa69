package ticketsync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// syncSettings keeps the scheduler quiet (first poll due after a day), so
// each test decides when polls and reconciles run.
func syncSettings(closedNotFixed, deleted string) *steward.SyncSettings {
	return &steward.SyncSettings{PollInterval: steward.Duration(24 * time.Hour), ReconcileInterval: steward.Duration(7 * 24 * time.Hour),
		ClosedNotFixed: closedNotFixed, DeletedTicket: deleted}
}

type syncBundle struct {
	*testBundle
	in  *steward.Integration
	ids []int64 // assessment IDs, vm0..vmN-1
}

func setupSync(t *testing.T, n int, set *steward.SyncSettings) *syncBundle {
	t.Helper()
	b := setup(t, setupOpts{})
	ids := b.seed(t, n)
	in, err := b.client.CreateIntegration(t.Context(), apiclient.IntegrationRequest{
		Name: ptr("emulator"), Scope: ptr("/subscriptions/s1"), InstanceURL: ptr(b.emuURL), Local: ptr(true),
		AuthMode: ptr("basic"), Username: ptr("admin"), Password: ptr(emuPassword), RequestsPerSecond: ptr(500.0), Sync: set,
	})
	require.NoError(t, err)
	return &syncBundle{testBundle: b, in: in, ids: ids}
}

func (b *syncBundle) svc() *ticketsync.Service { return b.srv.Tickets }

// linked assigns assessment i with a ticket of type tt and waits for it.
func (b *syncBundle) linked(t *testing.T, i int, tt string) *apiclient.AssignmentDetail {
	t.Helper()
	a := b.assign(t, b.ids[i], tt)
	return b.waitTickets(t, []int64{a.ID}, 20*time.Second)[a.ID]
}

func (b *syncBundle) get(t *testing.T, id int64) *apiclient.AssignmentDetail {
	t.Helper()
	d, err := b.client.GetAssignment(t.Context(), id)
	require.NoError(t, err)
	return d
}

// scan posts one observation of vm<i> with status.
func (b *syncBundle) scan(t *testing.T, i int, status string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"assessments": []map[string]any{{
		"resource":       map[string]any{"id": fmt.Sprintf("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm%d", i), "cloud": "azure"},
		"recommendation": map[string]any{"key": "disk-encryption", "severity": "High"},
		"status":         status,
	}}})
	_, err := b.client.PostAssessments(t.Context(), bytes.NewReader(body))
	require.NoError(t, err)
}

func (b *syncBundle) poll(t *testing.T) ticketsync.PollReport {
	t.Helper()
	rep, err := b.svc().Poll(t.Context(), b.in.ID)
	require.NoError(t, err)
	return rep
}

func (b *syncBundle) reconcile(t *testing.T) ticketsync.ReconcileReport {
	t.Helper()
	rep, err := b.svc().Reconcile(t.Context(), b.in.ID)
	require.NoError(t, err)
	return rep
}

func (b *syncBundle) audit(t *testing.T, action string) []steward.AuditEvent {
	t.Helper()
	page, err := b.client.ListAudit(t.Context(), url.Values{"action": {action}, "limit": {"500"}})
	require.NoError(t, err)
	return page.Items
}

// waitFor polls cond for up to 20 s (job-driven work).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 20*time.Second, 50*time.Millisecond, what)
}

// TestSyncRemoteStateRules applies each ticket type's states, as agents set
// them in ServiceNow, through each pull path (poll and reconcile): open
// states are shown (raw and normalized) and keep the assignment; Resolved,
// Closed and Canceled complete it with the reason and final state, and the
// ticket link stays.
func TestSyncRemoteStateRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		table, state string // raw state the agent sets
		label        string
		want         steward.TicketState
	}{
		{"incident", "2", "In Progress", steward.TicketInProgress},
		{"incident", "3", "On Hold", steward.TicketOnHold},
		{"incident", "6", "Resolved", steward.TicketResolved},
		{"incident", "7", "Closed", steward.TicketClosed},
		{"incident", "8", "Canceled", steward.TicketCanceled},
		{"problem", "103", "Root Cause Analysis", steward.TicketInProgress},
		{"problem", "106", "Resolved", steward.TicketResolved},
		{"problem", "107", "Closed", steward.TicketClosed},
		{"change_request", "-1", "Implement", steward.TicketInProgress},
		{"change_request", "0", "Review", steward.TicketResolved},
		{"change_request", "3", "Closed", steward.TicketClosed},
		{"change_request", "4", "Canceled", steward.TicketCanceled},
	}
	for _, via := range []string{"poll", "reconcile"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			b := setupSync(t, len(cases), syncSettings("nothing", "flag"))
			tickets := make([]*apiclient.AssignmentDetail, len(cases))
			for i, c := range cases {
				tickets[i] = b.linked(t, i, c.table)
			}
			if via == "poll" {
				require.Zero(t, b.poll(t).Changed, "nothing changed yet")
			}
			for i, c := range cases {
				_, err := b.emu.SetState(c.table, tickets[i].Ticket.SysID, snowemu.StateChange{State: c.state, User: "don.goodliffe"})
				require.NoError(t, err)
			}
			if via == "poll" {
				rep := b.poll(t)
				require.Equal(t, len(cases), rep.Changed, "%+v", rep)
			} else {
				rep := b.reconcile(t)
				require.Equal(t, len(cases), rep.Checked)
				require.Equal(t, len(cases), rep.Repaired, "%+v", rep)
				require.Len(t, rep.Repairs, len(cases))
			}
			for i, c := range cases {
				d := b.get(t, tickets[i].ID)
				tk := d.Ticket
				require.Equal(t, c.state, tk.RawState, c.table)
				require.Equal(t, c.label, tk.StateLabel)
				require.Equal(t, c.want, tk.State)
				require.NotEmpty(t, tk.Link, "the ticket link stays visible")
				if c.want.Ended() {
					require.Equal(t, steward.AssignmentCompleted, d.State, "%s %s", c.table, c.label)
					require.Equal(t, fmt.Sprintf("ticket %s %s in ServiceNow", tk.Number, c.label), d.EndReason)
					require.Equal(t, c.label, tk.EndedState)
					last := d.History[len(d.History)-1]
					require.Equal(t, steward.ActionCompleted, last.Action, "kept in history")
					require.Equal(t, steward.IntegrationActor("emulator"), last.Actor)
				} else {
					require.Equal(t, steward.AssignmentActive, d.State, "%s %s", c.table, c.label)
				}
			}
			// Applying the same again changes nothing, by either path.
			require.Zero(t, b.poll(t).Changed)
			require.Zero(t, b.reconcile(t).Repaired)
			require.Len(t, b.audit(t, store.AuditTicketSynced), len(cases), "one audit entry per real change")
			// Ended remotely: nothing was written back to ServiceNow.
			for i, c := range cases {
				rec, err := b.emu.Record(c.table, tickets[i].Ticket.SysID)
				require.NoError(t, err)
				require.Equal(t, "don.goodliffe", rec["sys_updated_by"], "Steward never wrote back")
			}
		})
	}
}

// TestSyncReassign: the assignee changed in ServiceNow becomes the owner,
// by poll, by reconcile and by webhook refresh.
func TestSyncReassign(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 3, syncSettings("nothing", "flag"))
	tickets := []*apiclient.AssignmentDetail{b.linked(t, 0, "incident"), b.linked(t, 1, "problem"), b.linked(t, 2, "change_request")}
	to := []string{"don.goodliffe@example.com", "abel.tuter@example.com", "david.loo@example.com"}
	for i, d := range tickets {
		_, err := b.emu.Reassign(d.Ticket.Table, d.Ticket.SysID, to[i], "")
		require.NoError(t, err)
	}
	out, err := b.svc().RefreshTicket(t.Context(), b.in.ID, "incident", tickets[0].Ticket.SysID) // webhook path
	require.NoError(t, err)
	require.True(t, out.OwnerChanged)
	require.False(t, out.Conflict)
	require.Equal(t, 2, b.poll(t).Changed, "the problem and the change (the incident is applied already)")
	to[2] = "fred.luddy@example.com"
	_, err = b.emu.Reassign("change_request", tickets[2].Ticket.SysID, to[2], "")
	require.NoError(t, err)
	rep := b.reconcile(t)
	require.Equal(t, 1, rep.Repaired, "%+v", rep)
	require.Contains(t, rep.Repairs[0], "assignee david.loo@example.com → fred.luddy@example.com")
	for i, d := range tickets {
		got := b.get(t, d.ID)
		require.Equal(t, to[i], got.Owner)
		require.Equal(t, to[i], got.Ticket.AssigneeEmail)
		last := got.History[len(got.History)-1]
		require.Equal(t, steward.IntegrationActor("emulator"), last.Actor)
		require.Contains(t, last.Reason, "assignee changed in ServiceNow")
		require.Equal(t, to[i], last.Changes["owner"].To)
	}
}

// TestSyncDeleted: a record deleted in ServiceNow flags the ticket (policy
// flag: the assignment stays) or ends the assignment (policy end); found
// by a webhook refresh or by the reconcile, never by silence.
func TestSyncDeleted(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"flag", "end"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			b := setupSync(t, 2, syncSettings("nothing", policy))
			d0, d1 := b.linked(t, 0, "incident"), b.linked(t, 1, "problem")
			require.NoError(t, b.emu.DeleteRecord("incident", d0.Ticket.SysID, ""))
			require.NoError(t, b.emu.DeleteRecord("problem", d1.Ticket.SysID, ""))

			out, err := b.svc().RefreshTicket(t.Context(), b.in.ID, "incident", d0.Ticket.SysID)
			require.NoError(t, err)
			require.True(t, out.Changed)
			require.Equal(t, policy == "end", out.Ended)
			rep := b.reconcile(t)
			require.Equal(t, 1, rep.Missing, "the problem; the incident is known deleted already: %+v", rep)
			for _, d := range []*apiclient.AssignmentDetail{d0, d1} {
				got := b.get(t, d.ID)
				require.Equal(t, steward.TicketFlagDeleted, got.Ticket.Flag)
				if policy == "end" {
					require.Equal(t, steward.AssignmentRemoved, got.State)
					require.Contains(t, got.EndReason, "deleted in ServiceNow")
				} else {
					require.Equal(t, steward.AssignmentActive, got.State, "flagged, not dropped")
				}
			}
			require.Len(t, b.audit(t, store.AuditTicketDeletedInITSM), 2)
			out, err = b.svc().RefreshTicket(t.Context(), b.in.ID, "incident", d0.Ticket.SysID)
			require.NoError(t, err)
			require.False(t, out.Changed, "idempotent")
		})
	}
}

// TestSyncOutOfOrderAndDuplicates: refreshes (webhooks) duplicated or
// delivered out of order never move a ticket back: a stale copy is
// ignored by ModCount.
func TestSyncOutOfOrderAndDuplicates(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 1, syncSettings("nothing", "flag"))
	d := b.linked(t, 0, "incident")
	p, _, err := b.svc().Provider(t.Context(), b.in.ID)
	require.NoError(t, err)

	_, err = b.emu.SetState("incident", d.Ticket.SysID, snowemu.StateChange{State: "2"})
	require.NoError(t, err)
	v1, err := p.Ticket(t.Context(), refOf(d))
	require.NoError(t, err)
	_, err = b.emu.SetState("incident", d.Ticket.SysID, snowemu.StateChange{State: "3"})
	require.NoError(t, err)
	v2, err := p.Ticket(t.Context(), refOf(d))
	require.NoError(t, err)
	require.Greater(t, v2.ModCount, v1.ModCount)

	out, err := b.svc().ApplyRemote(t.Context(), b.in.ID, v2, ticketsync.ViaWebhook)
	require.NoError(t, err)
	require.True(t, out.Changed)
	out, err = b.svc().ApplyRemote(t.Context(), b.in.ID, v1, ticketsync.ViaWebhook) // late delivery
	require.NoError(t, err)
	require.True(t, out.Stale)
	out, err = b.svc().ApplyRemote(t.Context(), b.in.ID, v2, ticketsync.ViaWebhook) // duplicate
	require.NoError(t, err)
	require.Equal(t, ticketsync.SyncOutcome{}, out)
	for range 2 {
		out, err = b.svc().RefreshTicket(t.Context(), b.in.ID, "incident", d.Ticket.SysID)
		require.NoError(t, err)
		require.False(t, out.Changed)
	}
	got := b.get(t, d.ID)
	require.Equal(t, "3", got.Ticket.RawState)
	require.Equal(t, steward.TicketOnHold, got.Ticket.State)
	require.Equal(t, v2.ModCount, got.Ticket.ModCount)
	require.Len(t, b.audit(t, store.AuditTicketSynced), 1)

	_, err = b.svc().RefreshTicket(t.Context(), b.in.ID, "incident", "0123456789abcdef0123456789abcdef")
	require.Equal(t, steward.CodeNotFound, steward.ErrorCode(err), "a record Steward does not link")
}

// TestSyncConflict: the owner changed in Steward and the assignee in
// ServiceNow since the last sync. ServiceNow wins on every path; Steward's
// change stays in history and the conflict is audited.
func TestSyncConflict(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"poll", "reconcile", "push"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			b := setupSync(t, 1, syncSettings("nothing", "flag"))
			d := b.linked(t, 0, "incident")
			_, err := b.emu.Reassign("incident", d.Ticket.SysID, "don.goodliffe@example.com", "")
			require.NoError(t, err)
			if via != "push" {
				// Change the owner in the store only, as if the push had not
				// run yet (it would apply the same rule: see "push").
				require.NoError(t, b.srv.DB.WithTx(t.Context(), func(tx *store.Tx) error {
					_, err := tx.UpdateAssignment(t.Context(), d.ID, store.AssignmentUpdate{Owner: ptr("abel.tuter@example.com")}, "secadmin@example.com", "handover")
					return err
				}))
			}
			switch via {
			case "poll":
				b.poll(t)
			case "reconcile":
				require.Equal(t, 1, b.reconcile(t).Repaired)
			case "push":
				_, err := b.svc().UpdateAssignment(t.Context(), d.ID, store.AssignmentUpdate{Owner: ptr("abel.tuter@example.com")}, "secadmin@example.com", "handover")
				require.NoError(t, err)
			}
			waitFor(t, "servicenow wins", func() bool { return b.get(t, d.ID).Owner == "don.goodliffe@example.com" })
			got := b.get(t, d.ID)
			n := len(got.History)
			require.Equal(t, "secadmin@example.com", got.History[n-2].Actor, "Steward's change is kept in history")
			require.Contains(t, got.History[n-1].Reason, "conflict: overridden by ServiceNow")
			conflicts := b.audit(t, store.AuditTicketSyncConflict)
			require.Len(t, conflicts, 1)
			require.Equal(t, "servicenow_wins", conflicts[0].Details["rule"])
			require.Equal(t, "abel.tuter@example.com", conflicts[0].Details["steward_owner"])
			rec, err := b.emu.Record("incident", d.Ticket.SysID)
			require.NoError(t, err)
			don, _ := b.emu.UserID("don.goodliffe")
			require.Equal(t, don, rec["assigned_to"], "ServiceNow keeps its assignee")
		})
	}
}

func refOf(d *apiclient.AssignmentDetail) itsm.Ref {
	return itsm.Ref{Table: d.Ticket.Table, SysID: d.Ticket.SysID}
}

// httpGet reads u with token as its bearer token.
func httpGet(u, token string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestSyncOwnerPushNoEcho: an owner changed in Steward reaches assigned_to;
// a poll afterwards applies nothing and writes no history or audit entry.
func TestSyncOwnerPushNoEcho(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 1, syncSettings("nothing", "flag"))
	d := b.linked(t, 0, "incident")
	_, err := b.svc().UpdateAssignment(t.Context(), d.ID, store.AssignmentUpdate{Owner: ptr("don.goodliffe@example.com")}, "secadmin@example.com", "handover")
	require.NoError(t, err)
	don, _ := b.emu.UserID("don.goodliffe")
	waitFor(t, "assigned_to updated", func() bool {
		rec, err := b.emu.Record("incident", d.Ticket.SysID)
		return err == nil && rec["assigned_to"] == don
	})
	waitFor(t, "push recorded", func() bool { return len(b.audit(t, store.AuditTicketOwnerPushed)) == 1 })
	before := b.get(t, d.ID)
	require.Equal(t, "don.goodliffe@example.com", before.Ticket.AssigneeEmail)
	rec, _ := b.emu.Record("incident", d.Ticket.SysID)
	require.Equal(t, rec["sys_mod_count"], fmt.Sprint(before.Ticket.ModCount), "the written version is stored")

	rep := b.poll(t)
	require.Equal(t, 1, rep.Seen, "the poll sees Steward's own write...")
	require.Zero(t, rep.Changed, "...and applies nothing")
	_, err = b.svc().RefreshTicket(t.Context(), b.in.ID, "incident", d.Ticket.SysID) // its webhook
	require.NoError(t, err)
	after := b.get(t, d.ID)
	require.Equal(t, len(before.History), len(after.History), "no history event")
	require.Empty(t, b.audit(t, store.AuditTicketSynced), "no sync audit")
}

// TestSyncHealthyResolves: an assessment turning Healthy resolves its
// ticket per the table's state model, with a close note naming the scan;
// a refused transition becomes a work note and a visible refusal.
func TestSyncHealthyResolves(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 5, syncSettings("nothing", "flag"))
	inc := b.linked(t, 0, "incident")
	prbNew := b.linked(t, 1, "problem")
	prbRCA := b.linked(t, 2, "problem")
	chgNew := b.linked(t, 3, "change_request")
	chgImpl := b.linked(t, 4, "change_request")
	_, err := b.emu.SetState("problem", prbRCA.Ticket.SysID, snowemu.StateChange{State: "103"})
	require.NoError(t, err)
	_, err = b.emu.SetState("change_request", chgImpl.Ticket.SysID, snowemu.StateChange{State: "-1"})
	require.NoError(t, err)
	b.poll(t)
	for i := range 5 {
		b.scan(t, i, "Healthy")
	}
	type want struct {
		d          *apiclient.AssignmentDetail
		raw        string
		state      steward.TicketState
		syncError  string
		closeField string
	}
	for _, w := range []want{
		{inc, "6", steward.TicketResolved, "", "close_code"},
		{prbRCA, "106", steward.TicketResolved, "", "resolution_code"},
		{chgImpl, "3", steward.TicketClosed, "", "close_code"},
		{prbNew, "101", steward.TicketNew, "resolution refused by ServiceNow (state New)", ""},
		{chgNew, "-5", steward.TicketNew, "resolution refused by ServiceNow (state New)", ""},
	} {
		table := w.d.Ticket.Table
		waitFor(t, table+" "+w.raw, func() bool {
			got := b.get(t, w.d.ID)
			return got.Ticket.RawState == w.raw && got.Ticket.SyncError == w.syncError &&
				(w.syncError == "" || len(b.audit(t, store.AuditTicketResolveRefused)) == 2)
		})
		got := b.get(t, w.d.ID)
		require.Equal(t, steward.AssignmentCompleted, got.State)
		require.Equal(t, w.state, got.Ticket.State)
		rec, err := b.emu.Record(table, w.d.Ticket.SysID)
		require.NoError(t, err)
		require.Equal(t, w.raw, rec["state"], "ServiceNow's own state")
		require.Equal(t, rec["sys_mod_count"], fmt.Sprint(got.Ticket.ModCount), "what ServiceNow returned is stored")
		if w.closeField != "" {
			require.NotEmpty(t, rec[w.closeField])
			require.Contains(t, rec["close_notes"], "Resolved by Steward: scan at ")
			require.Contains(t, rec["close_notes"], got.ResourceID+" healthy for ")
		}
		if table == "problem" && w.syncError == "" {
			require.Equal(t, "fix_applied", rec["resolution_code"])
			require.NotEmpty(t, rec["cause_notes"])
			require.Contains(t, rec["fix_notes"], "Resolved by Steward")
		}
	}
	// The audit event is written after the ticket's new state is stored.
	waitFor(t, "three ticket.resolved audit events", func() bool { return len(b.audit(t, store.AuditTicketResolved)) == 3 })
	require.Len(t, b.audit(t, store.AuditTicketResolved), 3)
	// Steward's own writes come back as nothing new.
	rep := b.poll(t)
	require.Zero(t, rep.Changed, "%+v", rep)
	require.Zero(t, b.reconcile(t).Repaired)
	for _, d := range []*apiclient.AssignmentDetail{inc, prbNew} {
		require.NotEqual(t, steward.IntegrationActor("emulator"), b.get(t, d.ID).History[len(b.get(t, d.ID).History)-1].Actor,
			"completed by the scan, not by the ticket")
	}
}

// TestSyncClosedNotFixed: a ticket ended in ServiceNow while a later scan
// still finds the resource unhealthy is flagged "closed, not fixed"; the
// policy decides what follows.
func TestSyncClosedNotFixed(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"nothing", "reopen", "new_ticket"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			b := setupSync(t, 2, syncSettings(policy, "flag"))
			d := b.linked(t, 0, "incident")
			fixed := b.linked(t, 1, "incident")
			for _, x := range []*apiclient.AssignmentDetail{d, fixed} {
				_, err := b.emu.SetState("incident", x.Ticket.SysID, snowemu.StateChange{State: "6", User: "don.goodliffe"})
				require.NoError(t, err)
			}
			b.poll(t)
			require.Equal(t, steward.AssignmentCompleted, b.get(t, d.ID).State)
			time.Sleep(1100 * time.Millisecond) // the next scan is later than sys_updated_on (seconds)
			b.scan(t, 0, "Unhealthy")
			b.scan(t, 1, "Healthy")
			waitFor(t, "flagged", func() bool {
				return len(b.audit(t, store.AuditTicketClosedNotFixed)) == 1
			})
			require.Empty(t, b.get(t, fixed.ID).Ticket.Flag, "a fixed resource is not flagged")
			switch policy {
			case "nothing":
				got := b.get(t, d.ID)
				require.Equal(t, steward.TicketFlagClosedNotFixed, got.Ticket.Flag, "shown")
				require.Equal(t, steward.AssignmentCompleted, got.State)
				require.Equal(t, 2, b.emu.Count("incident"))
			case "reopen":
				waitFor(t, "reopened", func() bool { return b.get(t, d.ID).State == steward.AssignmentActive })
				got := b.get(t, d.ID)
				require.Empty(t, got.Ticket.Flag)
				require.Equal(t, steward.TicketInProgress, got.Ticket.State)
				rec, _ := b.emu.Record("incident", d.Ticket.SysID)
				require.Equal(t, "2", rec["state"])
				require.Contains(t, got.History[len(got.History)-1].Reason, "reopened")
				require.Equal(t, 2, b.emu.Count("incident"), "same ticket")
				require.Zero(t, b.poll(t).Changed, "no echo")
			case "new_ticket":
				waitFor(t, "new ticket", func() bool { return b.emu.Count("incident") == 3 })
				page, err := b.client.ListAssignments(t.Context(), url.Values{"resource": {d.ResourceID}})
				require.NoError(t, err)
				require.Len(t, page.Items, 1)
				next := page.Items[0]
				require.NotEqual(t, d.ID, next.ID)
				require.Equal(t, owner, next.Owner)
				tickets := b.waitTickets(t, []int64{next.ID}, 20*time.Second)
				require.NotEqual(t, d.Ticket.CorrelationID, tickets[next.ID].Ticket.CorrelationID)
				require.Equal(t, steward.TicketFlagClosedNotFixed, b.get(t, d.ID).Ticket.Flag, "the old one stays flagged")
			}
		})
	}
}

// TestSyncPollFaults: throttling during a poll is retried; a poll that
// fails leaves the watermark where it was and the next poll catches up.
func TestSyncPollFaults(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 3, syncSettings("nothing", "flag"))
	var ds []*apiclient.AssignmentDetail
	for i := range 3 {
		ds = append(ds, b.linked(t, i, "incident"))
	}
	b.poll(t)
	st0, err := b.svc().SyncStatus(t.Context(), b.in.ID)
	require.NoError(t, err)
	require.NotNil(t, st0.Watermark)

	_, err = b.emu.SetState("incident", ds[0].Ticket.SysID, snowemu.StateChange{State: "2"})
	require.NoError(t, err)
	b.emu.SetFaults(snowemu.Faults{Storm429: 1, StormRetryAfter: 1, StormDuration: 1500 * time.Millisecond, Methods: []string{"GET"}})
	rep := b.poll(t)
	require.Equal(t, 1, rep.Changed, "retried through the 429s")

	_, err = b.emu.SetState("incident", ds[1].Ticket.SysID, snowemu.StateChange{State: "3"})
	require.NoError(t, err)
	b.emu.SetFaults(snowemu.Faults{Error500: 1, Methods: []string{"GET"}})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	_, err = b.svc().Poll(ctx, b.in.ID)
	cancel()
	require.Error(t, err)
	st1, err := b.svc().SyncStatus(t.Context(), b.in.ID)
	require.NoError(t, err)
	require.Contains(t, st1.LastError, "poll")
	require.Equal(t, st1.LastPollSuccessAt, func() *time.Time {
		st, _ := b.srv.DB.FindSyncState(t.Context(), b.in.ID)
		return st.LastPollSuccessAt
	}())
	require.False(t, st1.Watermark.After(ds[1].Ticket.CreatedAt.Add(time.Hour)), "sanity")
	require.Equal(t, steward.TicketNew, b.get(t, ds[1].ID).Ticket.State, "not applied")

	b.emu.SetFaults(snowemu.Faults{})
	rep = b.poll(t)
	require.Equal(t, 1, rep.Changed, "the next poll catches up")
	require.Equal(t, steward.TicketOnHold, b.get(t, ds[1].ID).Ticket.State)
	st2, err := b.svc().SyncStatus(t.Context(), b.in.ID)
	require.NoError(t, err)
	require.Empty(t, st2.LastError)
	require.False(t, st2.Watermark.Before(*st0.Watermark))
}

// TestSyncRestartMidPoll stops Steward while a poll is reading (slow
// answers), changes more records while it is down, and starts it again:
// the next poll resumes from the stored watermark and applies everything.
func TestSyncRestartMidPoll(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 3, syncSettings("nothing", "flag"))
	var ds []*apiclient.AssignmentDetail
	for i := range 3 {
		ds = append(ds, b.linked(t, i, "incident"))
	}
	b.poll(t)
	wm, err := b.srv.DB.FindSyncState(t.Context(), b.in.ID)
	require.NoError(t, err)
	_, err = b.emu.SetState("incident", ds[0].Ticket.SysID, snowemu.StateChange{State: "2"})
	require.NoError(t, err)
	b.emu.SetFaults(snowemu.Faults{SlowBodyChunk: 16, SlowBodyDelay: 200 * time.Millisecond, Methods: []string{"GET"}})
	require.NoError(t, b.svc().SyncNow(t.Context(), b.in.ID, "secadmin@example.com"))
	waitFor(t, "poll running", func() bool {
		st, err := b.svc().SyncStatus(t.Context(), b.in.ID)
		return err == nil && st.Running == "poll"
	})
	b.stop(t, 100*time.Millisecond)
	// Read while no server runs: once one starts, it retries the
	// interrupted job, whose poll may move the watermark at once.
	stopped := storetest.MustOpenURL(t, b.dbPath)
	after, err := stopped.FindSyncState(t.Context(), b.in.ID)
	require.NoError(t, err)
	require.Equal(t, wm.Watermarks, after.Watermarks, "the interrupted poll did not move the watermark")
	b.emu.SetFaults(snowemu.Faults{})
	_, err = b.emu.SetState("incident", ds[1].Ticket.SysID, snowemu.StateChange{State: "6"})
	require.NoError(t, err)

	b.start(t)
	// The interrupted sync-now job is retried on start; polling directly
	// as well must agree with it.
	b.poll(t)
	require.Equal(t, steward.TicketInProgress, b.get(t, ds[0].ID).Ticket.State)
	require.Equal(t, steward.AssignmentCompleted, b.get(t, ds[1].ID).State)
	require.Equal(t, steward.TicketNew, b.get(t, ds[2].ID).Ticket.State)
}

// TestSyncNowPollThenReconcile: sync now runs a poll then a reconcile in the
// background; the status shows their times, the report and the lag.
func TestSyncNowPollThenReconcile(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 2, syncSettings("nothing", "flag"))
	d := b.linked(t, 0, "incident")
	b.linked(t, 1, "problem")
	_, err := b.emu.SetState("incident", d.Ticket.SysID, snowemu.StateChange{State: "2"})
	require.NoError(t, err)
	b.svc().RecordWebhook(t.Context(), b.in.ID, true)
	b.svc().RecordWebhook(t.Context(), b.in.ID, false)
	require.NoError(t, b.svc().SyncNow(t.Context(), b.in.ID, "secadmin@example.com"))
	var st *ticketsync.SyncStatus
	waitFor(t, "reconciled", func() bool {
		st, err = b.svc().SyncStatus(t.Context(), b.in.ID)
		require.NoError(t, err)
		return st.LastReconcileSuccessAt != nil
	})
	require.NotNil(t, st.LastPollSuccessAt)
	require.NotNil(t, st.LastWebhookAt)
	require.NotNil(t, st.Watermark)
	require.Equal(t, 2, st.LastReconcile.Checked)
	require.Zero(t, st.LastReconcile.Repaired, "the poll had applied it")
	require.Less(t, st.LagSeconds, 30.0)
	require.Equal(t, steward.TicketInProgress, b.get(t, d.ID).Ticket.State)
	require.Len(t, b.audit(t, store.AuditIntegrationSyncRequest), 1)
	raw, err := json.Marshal(st)
	require.NoError(t, err)
	for _, k := range []string{`"last_poll_success_at"`, `"lag_seconds"`, `"last_reconcile":{"checked":2`, `"progress":{"done"`} {
		require.Contains(t, string(raw), k)
	}
	metrics := b.metrics(t)
	for _, k := range []string{`steward_sync_events_total{integration="emulator",result="accepted"} 1`,
		`steward_sync_events_total{integration="emulator",result="rejected"} 1`,
		`steward_sync_poll_requests_total{integration="emulator"}`, `steward_sync_applied_total{outcome="changed",via="poll"} 1`} {
		require.Contains(t, metrics, k)
	}
}

func (b *syncBundle) metrics(t *testing.T) string {
	t.Helper()
	resp, err := httpGet(b.srv.URL()+"/metrics", b.token)
	require.NoError(t, err)
	return strings.TrimSpace(resp)
}

// TestSyncHealthyResolveUsesMappedCloseCode: an integration's close code
// for a ticket type replaces the default when Steward resolves a ticket.
func TestSyncHealthyResolveUsesMappedCloseCode(t *testing.T) {
	t.Parallel()
	b := setupSync(t, 1, syncSettings("nothing", "flag"))
	_, err := b.client.UpdateIntegration(t.Context(), b.in.ID, apiclient.IntegrationRequest{
		TicketTypes: map[steward.TicketType]steward.TicketMapping{steward.TicketTypeIncident: {CloseCode: "Resolved by change"}},
	})
	require.NoError(t, err)
	inc := b.linked(t, 0, "incident")
	b.scan(t, 0, "Healthy")
	waitFor(t, "incident resolved", func() bool { return b.get(t, inc.ID).Ticket.RawState == "6" })
	rec, err := b.emu.Record("incident", inc.Ticket.SysID)
	require.NoError(t, err)
	require.Equal(t, "Resolved by change", rec["close_code"])
}
