package demo

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/snowemu"
)

// demoTicket is one ticket the demo opens.
type demoTicket struct {
	assignment *apiclient.AssignmentDetail
	ticketType steward.TicketType
}

func (t demoTicket) number() string { return t.assignment.Ticket.Number }

// openTickets opens one ticket of each type, plus a second incident that
// stays open, on unhealthy resources of different clouds.
func (d *Demo) openTickets(ctx context.Context) ([]demoTicket, error) {
	page, err := d.client.ListAssessments(ctx, url.Values{"status": {"Unhealthy"}, "limit": {"500"}})
	if err != nil {
		return nil, err
	}
	// Prefer a spread over clouds, most severe first within each.
	byCloud := map[steward.Cloud][]steward.Assessment{}
	for _, a := range page.Items {
		byCloud[a.Cloud] = append(byCloud[a.Cloud], a)
	}
	for _, list := range byCloud {
		sort.SliceStable(list, func(i, j int) bool { return list[i].Severity.Rank() > list[j].Severity.Rank() })
	}
	plan := []struct {
		cloud steward.Cloud
		typ   steward.TicketType
	}{
		{steward.CloudAzure, steward.TicketTypeIncident},
		{steward.CloudAWS, steward.TicketTypeProblem},
		{steward.CloudGCP, steward.TicketTypeChangeRequest},
		{steward.CloudAzure, steward.TicketTypeIncident},
	}
	var out []demoTicket
	for _, p := range plan {
		if len(byCloud[p.cloud]) == 0 {
			return nil, fmt.Errorf("no unhealthy %s finding left to open a ticket for", p.cloud)
		}
		as := byCloud[p.cloud][0]
		byCloud[p.cloud] = byCloud[p.cloud][1:]
		a, err := d.client.CreateAssignment(ctx, apiclient.AssignmentRequest{
			AssessmentID: as.ID, Type: "servicenow", TicketType: string(p.typ), AssignedTo: owner,
			Caller: "abel.tuter@example.com", RemediationTimeframeDays: 14, Reason: "demo: security team routes the finding to its owner",
		})
		if err != nil {
			return nil, fmt.Errorf("open a %s for %s: %w", p.typ, as.ResourceID, err)
		}
		out = append(out, demoTicket{assignment: &apiclient.AssignmentDetail{Assignment: *a}, ticketType: p.typ})
	}

	d.step(5, "Opened ServiceNow tickets for unhealthy resources (one background job each; exactly one record per assignment):")
	for i := range out {
		t := &out[i]
		detail, err := d.waitAssignment(ctx, t.assignment.ID, "ticket created", func(a *apiclient.AssignmentDetail) bool {
			return a.Ticket != nil && a.Ticket.Status == steward.TicketCreated
		})
		if err != nil {
			return nil, err
		}
		t.assignment = detail
		tk := detail.Ticket
		recs := d.emu.FindByCorrelationID(tk.Table, tk.CorrelationID)
		observed := fmt.Sprintf("%d record(s) in %s", len(recs), tk.Table)
		if err := d.check(fmt.Sprintf("%s %s: one record, right table", tk.Number, t.ticketType), "1 record(s) in "+string(t.ticketType), observed,
			len(recs) == 1 && tk.Table == string(t.ticketType) && recs[0]["sys_id"] == tk.SysID); err != nil {
			return nil, err
		}
		d.say("      %-11s %-15s %-8s %s", tk.Number, t.ticketType, detail.Severity, shorten(tk.ShortDescription, 90))
		d.say("                  %s", shorten(detail.ResourceID, 100))
		d.say("                  assigned to %s, due %s, %s", detail.Owner, detail.DueDate.Format("2006-01-02"), tk.Link)
	}
	return out, nil
}

// agentWorks has a ServiceNow agent resolve, cancel and reassign tickets,
// and waits for Steward to follow each change.
func (d *Demo) agentWorks(ctx context.Context, tickets []demoTicket) error {
	d.step(6, "A ServiceNow agent (%s) works the tickets; Steward follows each change:", agent)
	inc, prb, chg := tickets[0], tickets[1], tickets[2]

	if err := d.pause(ctx, fmt.Sprintf("%s resolves %s", agent, inc.number())); err != nil {
		return err
	}
	start := time.Now()
	if _, err := d.emu.SetState("incident", inc.number(), snowemu.StateChange{State: "Resolved", CloseCode: "Solution provided",
		CloseNotes: "Enabled Microsoft Defender for the subscription.", User: agent}); err != nil {
		return fmt.Errorf("agent resolves %s: %w", inc.number(), err)
	}
	a, err := d.waitAssignment(ctx, inc.assignment.ID, "assignment ended after resolve", func(a *apiclient.AssignmentDetail) bool {
		return a.State != steward.AssignmentActive
	})
	if err != nil {
		return err
	}
	if err := d.checkEnded(a, steward.TicketResolved); err != nil {
		return err
	}
	d.say("      → Steward ended the assignment (kept in history, ticket link kept) %s later", since(start))

	if err := d.pause(ctx, fmt.Sprintf("%s cancels %s", agent, chg.number())); err != nil {
		return err
	}
	start = time.Now()
	if _, err := d.emu.SetState("change_request", chg.number(), snowemu.StateChange{State: "Canceled", User: agent}); err != nil {
		return fmt.Errorf("agent cancels %s: %w", chg.number(), err)
	}
	a, err = d.waitAssignment(ctx, chg.assignment.ID, "assignment ended after cancel", func(a *apiclient.AssignmentDetail) bool {
		return a.State != steward.AssignmentActive
	})
	if err != nil {
		return err
	}
	if err := d.checkEnded(a, steward.TicketCanceled); err != nil {
		return err
	}
	d.say("      → Steward ended the assignment %s later", since(start))

	if err := d.pause(ctx, fmt.Sprintf("%s reassigns %s to %s", agent, prb.number(), newAssignee)); err != nil {
		return err
	}
	start = time.Now()
	if _, err := d.emu.Reassign("problem", prb.number(), newAssignee, agent); err != nil {
		return fmt.Errorf("agent reassigns %s: %w", prb.number(), err)
	}
	a, err = d.waitAssignment(ctx, prb.assignment.ID, "owner followed the reassignment", func(a *apiclient.AssignmentDetail) bool {
		return a.Owner == newOwnerEmail
	})
	if err != nil {
		return err
	}
	last := a.History[len(a.History)-1]
	if err := d.check(prb.number()+": reassignment in history", "owner "+owner+" → "+newOwnerEmail,
		fmt.Sprintf("owner %v → %v", last.Changes["owner"].From, last.Changes["owner"].To),
		a.State == steward.AssignmentActive && last.Changes["owner"].To == newOwnerEmail); err != nil {
		return err
	}
	d.say("      → the owner in Steward is now %s, %s later", newOwnerEmail, since(start))

	d.step(7, "Steward and ServiceNow agree: %d assignments ended with their tickets, 1 changed owner, 1 still open.", 2)
	return nil
}

func (d *Demo) checkEnded(a *apiclient.AssignmentDetail, want steward.TicketState) error {
	last := a.History[len(a.History)-1]
	observed := fmt.Sprintf("assignment %s, ticket %s, last history %q, link kept: %t", a.State, a.Ticket.State, last.Reason, a.Ticket.Link != "")
	return d.check(fmt.Sprintf("%s %s → assignment ended", a.Ticket.Number, want),
		fmt.Sprintf("assignment completed, ticket %s, link kept", want), observed,
		a.State == steward.AssignmentCompleted && a.Ticket.State == want && a.Ticket.Link != "" &&
			last.Action == steward.ActionCompleted && strings.Contains(last.Reason, a.Ticket.Number))
}

// waitAssignment polls Steward until cond holds or the timeout passes.
func (d *Demo) waitAssignment(ctx context.Context, id int64, what string, cond func(*apiclient.AssignmentDetail) bool) (*apiclient.AssignmentDetail, error) {
	deadline := time.Now().Add(d.opts.Timeout)
	for {
		a, err := d.client.GetAssignment(ctx, id)
		if err != nil {
			return nil, err
		}
		if cond(a) {
			return a, nil
		}
		if time.Now().After(deadline) {
			observed := fmt.Sprintf("assignment %d %s, owner %s", id, a.State, a.Owner)
			if a.Ticket != nil {
				observed += fmt.Sprintf(", ticket %s %s %s", a.Ticket.Number, a.Ticket.Status, a.Ticket.Error)
			}
			return nil, d.check(what, fmt.Sprintf("within %s", d.opts.Timeout), observed, false)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// pause announces the next agent action and waits Pace, so a person
// watching the list view sees it happen.
func (d *Demo) pause(ctx context.Context, what string) error {
	if d.opts.Pace <= 0 {
		return nil
	}
	d.say("      In %s: %s ...", d.opts.Pace, what)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d.opts.Pace):
	}
	return nil
}

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// governanceReport reads today's governance report: the story leaves two
// assignments active (the problem, now David's, and the second incident)
// and two completed (the resolved incident and the canceled change: a
// ticket resolved, canceled or closed in ServiceNow completes its
// assignment).
func (d *Demo) governanceReport(ctx context.Context) error {
	rep, err := d.client.GovernanceReport(ctx, apiclient.ReportQuery{Since: "1d"})
	if err != nil {
		return fmt.Errorf("read the governance report: %w", err)
	}
	owners := map[string]steward.GovernanceRow{}
	for _, o := range rep.Owners {
		owners[o.Key] = o
	}
	t := rep.Totals
	observed := fmt.Sprintf("%d assigned, %d completed; %s %d+%d, %s %d+%d", t.Assigned, t.Completed,
		owner, owners[owner].Assigned, owners[owner].Completed, newOwnerEmail, owners[newOwnerEmail].Assigned, owners[newOwnerEmail].Completed)
	expected := fmt.Sprintf("2 assigned, 2 completed; %s 1+2, %s 1+0", owner, newOwnerEmail)
	if err := d.check("governance report: assigned and completed by owner", expected, observed, observed == expected); err != nil {
		return err
	}
	d.step(8, "The governance report agrees: %d assignments active (%d overdue), %d completed today.", t.Assigned, t.Overdue, t.Completed)
	for _, o := range rep.Owners {
		d.say("      %-26s %d active, %d overdue, %d completed", o.Key, o.Assigned, o.Overdue, o.Completed)
	}
	d.say("      Trends, by owner and scope: %s report, or the charts on %s/", d.cli(), d.srv.URL())
	return nil
}
