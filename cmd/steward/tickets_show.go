package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward/internal/apiclient"
)

// newTicketsShowCommand is `steward tickets show ID`: one ticket with its
// ServiceNow fields and its assignment. Tickets are named by their
// assignment's ID, the ASSIGNMENT column of `tickets list`.
func newTicketsShowCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ASSIGNMENT_ID",
		Short: "Show one ticket: number, link, state, assignee, sync problems and its assignment",
		Args:  argsFor("the assignment ID of the ticket (the ASSIGNMENT column of 'steward tickets list')"),
		RunE: g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
			t, err := c.GetTicket(cmd.Context(), id)
			if err != nil {
				return err
			}
			return g.render(t, func(w *tabwriter.Writer) {
				state := string(t.State)
				if t.StateLabel != "" {
					state = t.StateLabel
				}
				status := string(t.Status)
				if t.Attempts > 0 {
					status += fmt.Sprintf(" (%d attempts)", t.Attempts)
				}
				row(w, "Assignment:", fmt.Sprintf("%d (%s, owner %s)", t.AssignmentID, t.AssignmentState, t.Owner))
				row(w, "Number:", orDash(t.Number))
				row(w, "Table:", t.Table)
				row(w, "Status:", status)
				row(w, "State:", orDash(state))
				row(w, "Assignee:", orDash(t.AssigneeEmail))
				row(w, "Link:", orDash(t.Link))
				row(w, "Resource:", t.ResourceID)
				row(w, "Recommendation:", fmt.Sprintf("%s (%s)", t.RecommendationKey, t.Severity))
				row(w, "Correlation ID:", t.CorrelationID)
				if t.EndedState != "" {
					row(w, "Ended as:", t.EndedState)
				}
				if t.Flag != "" {
					row(w, "Flag:", string(t.Flag))
				}
				if t.Error != "" {
					row(w, "Error:", t.Error)
				}
				if t.SyncError != "" {
					row(w, "Sync error:", t.SyncError)
				}
				synced := "never"
				if t.LastSyncedAt != nil {
					synced = t.LastSyncedAt.UTC().Format(time.RFC3339)
				}
				row(w, "Last synced:", synced)
			})
		}),
	}
}
