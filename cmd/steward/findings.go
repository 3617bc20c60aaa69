package main

import (
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// listFlags are the filters shared by list verbs; each maps to the API
// query parameter of the same name.
type listFlags struct {
	params map[string]*string
	limit  int
	cursor string
}

func addListFlags(cmd *cobra.Command, names ...string) *listFlags {
	lf := &listFlags{params: map[string]*string{}}
	help := map[string]string{
		"scope":          "resource ID prefix, e.g. /subscriptions/<id> or /aws/accounts/<id>",
		"severity":       "comma list of Low, Medium, High, Critical",
		"cloud":          "azure, aws, gcp or other",
		"source":         "finding source, e.g. prowler",
		"recommendation": "recommendation key",
		"resource":       "resource ID",
		"owner":          "owner e-mail",
		"state":          "active, completed, removed or all",
		"status":         "Healthy, Unhealthy or NotApplicable",
		"type":           "resource type",
		"integration":    "integration ID",
		"assignment":     "assignment ID",
		"action":         "action prefix, e.g. ticket. or integration.created",
	}
	for _, n := range names {
		lf.params[n] = cmd.Flags().String(n, "", help[n])
	}
	cmd.Flags().IntVar(&lf.limit, "limit", 0, "rows per page (server default 50, max 500)")
	cmd.Flags().StringVar(&lf.cursor, "cursor", "", "continue from a previous page")
	return lf
}

// describeTicketFilters gives the filters of 'tickets list' their own
// help: there, status, state and type are the ticket's, not the
// assessment's or the assignment's. It runs once the command tree is
// built, so the tickets verb keeps its shared addListFlags call.
func describeTicketFilters(root *cobra.Command) {
	list, _, err := root.Find([]string{"tickets", "list"})
	if err != nil || list == root {
		return
	}
	for name, help := range map[string]string{
		"status": "ticket status: deferred (by a rule's daily cap), pending, created, retrying or failed",
		"state":  "ticket state: New, InProgress, OnHold, Resolved, Closed or Canceled",
		"type":   "ticket type: incident, problem or change_request",
	} {
		if f := list.Flags().Lookup(name); f != nil {
			f.Usage = help
		}
	}
}

func (lf *listFlags) values() url.Values {
	q := url.Values{}
	for k, v := range lf.params {
		if *v != "" {
			q.Set(k, *v)
		}
	}
	if lf.limit > 0 {
		q.Set("limit", strconv.Itoa(lf.limit))
	}
	if lf.cursor != "" {
		q.Set("cursor", lf.cursor)
	}
	return q
}

func newRecommendationsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "recommendations",
		Aliases: []string{"recs", "rec"},
		Short:   "List and show recommendations",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List recommendations with their unhealthy, healthy and not-applicable counts",
		Args:  cobra.NoArgs,
	}
	lf := addListFlags(list, "scope", "severity", "status", "cloud", "source")
	list.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		page, err := c.ListRecommendations(cmd.Context(), lf.values())
		if err != nil {
			return err
		}
		return g.render(page, func(w *tabwriter.Writer) {
			row(w, "SEVERITY", "UNHEALTHY", "HEALTHY", "N/A", "KEY", "NAME")
			for _, r := range page.Items {
				row(w, r.Severity, r.Unhealthy, r.Healthy, r.NotApplicable, r.Key, clip(r.DisplayName, 70))
			}
			w.Flush()
			nextHint(g.stdout, page.NextCursor)
		})
	}
	show := &cobra.Command{
		Use:   "show KEY",
		Short: "Show one recommendation and its affected resources",
		Args:  argsFor("the recommendation key (see 'steward recommendations list')"),
	}
	sf := addListFlags(show, "status", "scope")
	show.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		d, err := c.GetRecommendation(cmd.Context(), args[0], sf.values())
		if err != nil {
			return err
		}
		return g.render(d, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "%s\n\n", d.DisplayName)
			row(w, "Key:", d.Key)
			row(w, "Severity:", d.Severity)
			row(w, "Source:", orDash(d.Source))
			row(w, "Category:", orDash(d.Category))
			row(w, "Counts:", fmt.Sprintf("%d unhealthy, %d healthy, %d not applicable", d.Unhealthy, d.Healthy, d.NotApplicable))
			w.Flush()
			if d.Description != "" {
				fmt.Fprintf(g.stdout, "\nDescription:\n  %s\n", d.Description)
			}
			if d.Remediation != "" {
				fmt.Fprintf(g.stdout, "\nRemediation:\n  %s\n", d.Remediation)
			}
			fmt.Fprintf(g.stdout, "\nAffected resources:\n")
			row(w, "ASSESSMENT", "STATUS", "ASSIGNMENT", "SINCE", "RESOURCE")
			for _, a := range d.Affected.Items {
				assigned := "-"
				if a.AssignmentID != 0 {
					assigned = strconv.FormatInt(a.AssignmentID, 10)
				}
				row(w, a.ID, a.Status, assigned, day(a.StatusChangedAt), a.ResourceID)
			}
			w.Flush()
			nextHint(g.stdout, d.Affected.NextCursor)
		})
	}
	cmd.AddCommand(list, show)
	return cmd
}

func newAssessmentsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "assessments", Short: "List assessments"}
	list := &cobra.Command{Use: "list", Short: "List assessments (one recommendation on one resource)", Args: cobra.NoArgs}
	lf := addListFlags(list, "recommendation", "resource", "scope", "severity", "status", "cloud")
	list.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		page, err := c.ListAssessments(cmd.Context(), lf.values())
		if err != nil {
			return err
		}
		return g.render(page, func(w *tabwriter.Writer) {
			row(w, "ID", "STATUS", "SEVERITY", "RECOMMENDATION", "RESOURCE")
			for _, a := range page.Items {
				row(w, a.ID, a.Status, a.Severity, clip(a.RecommendationKey, 50), a.ResourceID)
			}
			w.Flush()
			nextHint(g.stdout, page.NextCursor)
		})
	}
	cmd.AddCommand(list)
	return cmd
}
