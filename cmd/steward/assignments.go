package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// assignmentFlags are the settable fields of an assignment.
type assignmentFlags struct {
	owner, due, eta, justification, reason string
	days                                   int
	grace, noOwnerMail, noManagerMail      bool
}

func (af *assignmentFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&af.owner, "owner", "", "owner e-mail address")
	f.IntVar(&af.days, "days", 0, "remediation timeframe in days from now (7, 14, 30, 90 or any)")
	f.StringVar(&af.due, "due", "", "explicit due date, YYYY-MM-DD")
	f.BoolVar(&af.grace, "grace-period", false, "grace period: an overdue assignment does not count against the owner's secure score yet")
	f.StringVar(&af.eta, "eta", "", "owner's estimated completion date, YYYY-MM-DD (needs --justification)")
	f.StringVar(&af.justification, "justification", "", "why the ETA is later than the due date")
	f.BoolVar(&af.noOwnerMail, "no-owner-email", false, "do not e-mail the owner about this assignment")
	f.BoolVar(&af.noManagerMail, "no-manager-email", false, "do not e-mail the owner's manager when it is overdue")
	f.StringVar(&af.reason, "reason", "", "why, recorded in the history")
}

// ticketFlags turn `steward assign` into a ServiceNow assignment.
type ticketFlags struct {
	ticketType, caller, short, description string
	integration                            int64
}

func (tf *ticketFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&tf.ticketType, "ticket", "", "open a ServiceNow ticket: incident, problem or change_request (the owner becomes its assignee)")
	f.Int64Var(&tf.integration, "integration", 0, "integration ID (default: the one whose scope holds the resource)")
	f.StringVar(&tf.caller, "caller", "", "ticket caller/requester e-mail")
	f.StringVar(&tf.short, "short-description", "", "ticket short description (default: from the integration's template)")
	f.StringVar(&tf.description, "description", "", "ticket description (default: from the integration's template)")
}

func (af *assignmentFlags) request(cmd *cobra.Command) apiclient.AssignmentRequest {
	req := apiclient.AssignmentRequest{
		Owner: af.owner, RemediationTimeframeDays: af.days, DueDate: af.due,
		ETA: af.eta, ETAJustification: af.justification, Reason: af.reason,
	}
	changed := cmd.Flags().Changed
	if changed("grace-period") {
		req.GracePeriod = &af.grace
	}
	if changed("no-owner-email") {
		req.OwnerEmailOptOut = &af.noOwnerMail
	}
	if changed("no-manager-email") {
		req.ManagerEmailOptOut = &af.noManagerMail
	}
	return req
}

func newAssignCommand(g *globals) *cobra.Command {
	var af assignmentFlags
	var tf ticketFlags
	cmd := &cobra.Command{
		Use:   "assign ASSESSMENT_ID --owner EMAIL (--days N | --due YYYY-MM-DD)",
		Short: "Assign an unhealthy assessment to an owner with a due date",
		Long: `Assign an unhealthy assessment to an owner with a due date.
Find assessment IDs with 'steward recommendations show KEY'.`,
		Example: "  steward assign 42 --owner alice@example.com --days 30 --reason 'team owns the VM'",
		Args:    argsFor("the assessment ID (see 'steward recommendations show KEY')"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("assessment ID %q is not a number", args[0])
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			req := af.request(cmd)
			req.AssessmentID = id
			if tf.ticketType != "" {
				req.Type, req.TicketType, req.IntegrationID = "servicenow", tf.ticketType, tf.integration
				req.AssignedTo, req.Owner = req.Owner, ""
				req.Caller, req.ShortDescription, req.Description = tf.caller, tf.short, tf.description
			}
			a, err := c.CreateAssignment(cmd.Context(), req)
			if err != nil {
				return err
			}
			return g.render(a, func(w *tabwriter.Writer) { assignmentTable(w, []steward.Assignment{*a}) })
		},
	}
	af.add(cmd)
	tf.add(cmd)
	return cmd
}

func newAssignmentsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "assignments", Short: "List, show, change and remove assignments"}

	list := &cobra.Command{Use: "list", Short: "List assignments (active unless --state says otherwise), earliest due first", Args: cobra.NoArgs}
	lf := addListFlags(list, "owner", "state", "scope", "recommendation", "resource")
	overdue := list.Flags().Bool("overdue", false, "only assignments past their due date")
	within := list.Flags().Int("due-within", 0, "only assignments due within N days")
	list.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		q := lf.values()
		if *overdue {
			q.Set("overdue", "true")
		}
		if *within > 0 {
			q.Set("due_within_days", strconv.Itoa(*within))
		}
		page, err := c.ListAssignments(cmd.Context(), q)
		if err != nil {
			return err
		}
		return g.render(page, func(w *tabwriter.Writer) {
			assignmentTable(w, page.Items)
			w.Flush()
			nextHint(g.stdout, page.NextCursor)
		})
	}

	show := &cobra.Command{Use: "show ID", Short: "Show an assignment and its history", Args: argsFor("the assignment ID (see 'steward assignments list')")}
	show.RunE = g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
		d, err := c.GetAssignment(cmd.Context(), id)
		if err != nil {
			return err
		}
		return g.render(d, func(w *tabwriter.Writer) {
			assignmentTable(w, []steward.Assignment{d.Assignment})
			w.Flush()
			if t := d.Ticket; t != nil {
				fmt.Fprintf(g.stdout, "\nTicket: %s\n", ticketLine(t))
				if until := deferredUntil(t); until != "" {
					fmt.Fprintf(g.stdout, "  deferred by the daily cap of rule %d; opens at %s\n", d.RuleID, until)
				}
				if p := ticketProblem(t); p != "" {
					fmt.Fprintf(g.stdout, "  reason: %s\n", p)
				}
				if t.Status == steward.TicketFailed {
					fmt.Fprintf(g.stdout, "  retry once that is fixed: steward tickets retry %d\n", d.ID)
				}
				if t.Link != "" {
					fmt.Fprintf(g.stdout, "  %s\n", t.Link)
				}
			}
			fmt.Fprintln(g.stdout, "\nHistory:")
			row(w, "WHEN", "WHO", "ACTION", "CHANGES", "REASON")
			for _, e := range d.History {
				row(w, e.At.UTC().Format(time.RFC3339), e.Actor, e.Action, changes(e.Changes), orDash(e.Reason))
			}
		})
	})

	var af assignmentFlags
	update := &cobra.Command{Use: "update ID", Short: "Change an active assignment (owner, due date, ETA, ...)", Args: argsFor("the assignment ID (see 'steward assignments list')")}
	af.add(update)
	update.RunE = g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
		a, err := c.UpdateAssignment(cmd.Context(), id, af.request(cmd))
		if err != nil {
			return err
		}
		return g.render(a, func(w *tabwriter.Writer) { assignmentTable(w, []steward.Assignment{*a}) })
	})

	var reason string
	remove := &cobra.Command{Use: "remove ID", Aliases: []string{"delete"}, Short: "End an assignment; it stays in history", Args: argsFor("the assignment ID (see 'steward assignments list')")}
	remove.Flags().StringVar(&reason, "reason", "", "why, recorded in the history")
	remove.RunE = g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
		a, err := c.DeleteAssignment(cmd.Context(), id, reason)
		if err != nil {
			return err
		}
		return g.render(a, func(w *tabwriter.Writer) { assignmentTable(w, []steward.Assignment{*a}) })
	})
	cmd.AddCommand(list, show, update, remove)
	return cmd
}

func assignmentTable(w *tabwriter.Writer, items []steward.Assignment) {
	row(w, "ID", "STATE", "OWNER", "DUE", "SEVERITY", "TICKET", "RECOMMENDATION", "RESOURCE")
	now := time.Now()
	for _, a := range items {
		due := day(a.DueDate)
		if a.Overdue(now) {
			due += " (overdue)"
		}
		ticket := "-"
		if t := a.Ticket; t != nil {
			ticket = string(t.Status)
			if t.Number != "" {
				ticket = t.Number + " " + string(t.State)
			}
		}
		row(w, a.ID, a.State, a.Owner, due, a.Severity, ticket, clip(a.RecommendationKey, 40), a.ResourceID)
	}
}

func changes(c map[string]steward.Change) string {
	if len(c) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(c))
	for field, ch := range c {
		parts = append(parts, fmt.Sprintf("%s: %v → %v", field, ch.From, ch.To))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("ID %q is not a positive number", s)
	}
	return id, nil
}
