package ticketsync_test

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// An agent's action on a ticket, or Steward reading it (read).
type agentStep string

const (
	reassign agentStep = "reassign" // to fred.luddy
	resolve  agentStep = "resolve"
	read     agentStep = "read"
)

const newAssignee = "fred.luddy@example.com"

// act performs one agent action on d's incident in the emulator.
func (b *syncBundle) act(t *testing.T, d *apiclient.AssignmentDetail, step agentStep) {
	t.Helper()
	var err error
	switch step {
	case reassign:
		_, err = b.emu.Reassign("incident", d.Ticket.SysID, "fred.luddy", "beth.anglin")
	case resolve:
		_, err = b.emu.SetState("incident", d.Ticket.SysID, snowemu.StateChange{State: "6", User: "fred.luddy"})
	}
	require.NoError(t, err)
}

// TestSyncReassignAndResolve: an agent reassigns a ticket and resolves it.
// Whether one read sees both changes at once or each read sees one, in
// either order, and whether the read is a poll or a webhook's refresh, the
// assignment ends completed with the new assignee as its owner, and the
// history says so.
func TestSyncReassignAndResolve(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		steps []agentStep
	}{
		{"merged in one read", []agentStep{reassign, resolve, read}},
		{"merged, resolved first", []agentStep{resolve, reassign, read}},
		{"reassign, read, resolve, read", []agentStep{reassign, read, resolve, read}},
		{"resolve, read, reassign, read", []agentStep{resolve, read, reassign, read}},
	}
	for _, via := range []string{ticketsync.ViaPoll, ticketsync.ViaWebhook} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			b := setupSync(t, len(cases), syncSettings("nothing", "flag"))
			for i, c := range cases {
				name := c.name
				d := b.linked(t, i, "incident")
				for _, step := range c.steps {
					if step != read {
						b.act(t, d, step)
						continue
					}
					if via == ticketsync.ViaPoll {
						b.poll(t)
					} else {
						_, err := b.svc().RefreshTicket(t.Context(), b.in.ID, "incident", d.Ticket.SysID)
						require.NoError(t, err)
					}
				}
				got := b.get(t, d.ID)
				require.Equal(t, newAssignee, got.Ticket.AssigneeEmail, name)
				require.Equal(t, newAssignee, got.Owner, "%s: the owner follows the final assignee", name)
				require.Equal(t, steward.AssignmentCompleted, got.State, name)
				require.Equal(t, "Resolved", got.Ticket.EndedState, name)
				var ownerChanged bool
				for _, e := range got.History {
					if c, ok := e.Changes["owner"]; ok {
						require.False(t, ownerChanged, "%s: one owner change: %+v", name, got.History)
						ownerChanged = true
						require.Equal(t, owner, c.From, name)
						require.Equal(t, newAssignee, c.To, name)
						require.Equal(t, steward.IntegrationActor("emulator"), e.Actor, name)
						require.Contains(t, e.Reason, "assignee changed in ServiceNow", name)
					}
				}
				require.True(t, ownerChanged, "%s: the owner change is in history: %+v", name, got.History)
			}
			// Reading again changes nothing.
			require.Zero(t, b.poll(t).Changed)
			require.Zero(t, b.reconcile(t).Repaired)
		})
	}
}

// TestSyncShuffledVersions applies every version of tickets that agents
// reassign and resolve in different orders, each delivered several times
// in a shuffled order, as a flood of duplicated, reordered webhooks would
// (their refreshes may read any version). Every ticket ends with its final
// assignee as owner and its assignment completed.
func TestSyncShuffledVersions(t *testing.T) {
	t.Parallel()
	agents := []string{"david.loo", "fred.luddy", "abel.tuter", "don.goodliffe"}
	const n = 8
	b := setupSync(t, n, syncSettings("nothing", "flag"))
	p, _, err := b.svc().Provider(t.Context(), b.in.ID)
	require.NoError(t, err)
	rnd := rand.New(rand.NewPCG(10, 8))
	var versions []*itsm.Ticket
	final := map[int64]string{} // assignment → final assignee
	tickets := make([]*apiclient.AssignmentDetail, n)
	for i := range n {
		d := b.linked(t, i, "incident")
		tickets[i] = d
		// Two or three reassignments with the resolution before, between
		// or after them.
		steps := 2 + i%2
		resolveAt := i % (steps + 1)
		for s := 0; s <= steps; s++ {
			if s == resolveAt {
				_, err := b.emu.SetState("incident", d.Ticket.SysID, snowemu.StateChange{State: "6", User: "fred.luddy"})
				require.NoError(t, err)
			} else {
				who := agents[(i+s)%len(agents)]
				_, err := b.emu.Reassign("incident", d.Ticket.SysID, who, "beth.anglin")
				require.NoError(t, err)
				final[d.ID] = who + "@example.com"
			}
			v, err := p.Ticket(t.Context(), refOf(d))
			require.NoError(t, err)
			for range 1 + rnd.IntN(3) {
				versions = append(versions, v)
			}
		}
	}
	rnd.Shuffle(len(versions), func(i, j int) { versions[i], versions[j] = versions[j], versions[i] })
	for _, v := range versions {
		_, err := b.svc().ApplyRemote(t.Context(), b.in.ID, v, ticketsync.ViaWebhook)
		require.NoError(t, err)
	}
	for _, d := range tickets {
		got := b.get(t, d.ID)
		require.Equal(t, final[d.ID], got.Ticket.AssigneeEmail, "assignment %d", d.ID)
		require.Equal(t, final[d.ID], got.Owner, "assignment %d: owner follows the final assignee", d.ID)
		require.Equal(t, steward.AssignmentCompleted, got.State, "assignment %d", d.ID)
	}
}

// TestWebhookFloodEndsWithFinalAssignee: the emulator sends every delivery
// twice and out of order while agents reassign and resolve eight tickets;
// each refresh re-reads whatever version is current. Every assignment ends
// completed, owned by its ticket's final assignee.
func TestWebhookFloodEndsWithFinalAssignee(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{emu: snowemu.Options{WebhookDuplicate: 1, WebhookReorder: true, WebhookReorderWindow: 300 * time.Millisecond, Seed: 10}})
	in := b.integration(t, "basic")
	_, err := b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{WebhookSecret: ptr(webhookSecret)})
	require.NoError(t, err)
	b.wireWebhook(t, in.ID)
	const n = 8
	ids := b.seed(t, n)
	var assignmentIDs []int64
	for _, id := range ids {
		assignmentIDs = append(assignmentIDs, b.assign(t, id, "incident").ID)
	}
	tickets := b.waitTickets(t, assignmentIDs, 30*time.Second)
	agents := []string{"david.loo", "fred.luddy", "abel.tuter", "don.goodliffe"}
	final := map[int64]string{}
	for i, id := range assignmentIDs {
		sysID := tickets[id].Ticket.SysID
		// Half are resolved then reassigned, half reassigned then resolved.
		if i%2 == 0 {
			_, err := b.emu.SetState("incident", sysID, snowemu.StateChange{State: "6", User: "fred.luddy"})
			require.NoError(t, err)
		}
		for s := range 2 {
			who := agents[(i+s)%len(agents)]
			_, err := b.emu.Reassign("incident", sysID, who, "beth.anglin")
			require.NoError(t, err)
			final[id] = who + "@example.com"
		}
		if i%2 == 1 {
			_, err := b.emu.SetState("incident", sysID, snowemu.StateChange{State: "6", User: "fred.luddy"})
			require.NoError(t, err)
		}
	}
	b.emu.WaitWebhooks()
	for _, dl := range b.emu.WebhookDeliveries() {
		require.Equal(t, http.StatusAccepted, dl.Status, dl.Body)
	}
	for _, id := range assignmentIDs {
		rec, err := b.emu.Record("incident", tickets[id].Ticket.SysID)
		require.NoError(t, err)
		modCount := rec["sys_mod_count"]
		got, _ := b.waitAssignment(t, id, 15*time.Second, func(d *apiclient.AssignmentDetail) bool {
			return strconv.Itoa(d.Ticket.ModCount) == modCount
		})
		require.Equal(t, final[id], got.Ticket.AssigneeEmail, "assignment %d", id)
		require.Equal(t, final[id], got.Owner, "assignment %d: owner follows the final assignee", id)
		require.Equal(t, steward.AssignmentCompleted, got.State, "assignment %d", id)
	}
}
