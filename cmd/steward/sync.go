package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward/internal/apiclient"
)

// withSyncCommands adds 'sync' and 'status' to the integrations command.
func withSyncCommands(integrations *cobra.Command, g *globals) *cobra.Command {
	integrations.AddCommand(newSyncCommand(g), newSyncStatusCommand(g))
	return integrations
}

func newSyncCommand(g *globals) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "sync ID [--wait]",
		Short: "Synchronize an integration now: poll for changes, then reconcile every linked ticket",
		Long: `Synchronize an integration now instead of at its next interval: an
incremental poll for records changed since the last one, then a full
reconcile that reads every linked ticket and repairs what differs.

With --wait, follow it: progress while it runs, then what the reconcile
checked and repaired. Ctrl-C stops following; the sync goes on on the server.`,
		Example: `  steward integrations sync 1 --wait`,
		Args:    cobra.ExactArgs(1),
		RunE: g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
			before, err := c.SyncStatus(cmd.Context(), id)
			if err != nil {
				return err
			}
			queued, err := c.SyncNow(cmd.Context(), id)
			if err != nil {
				return err
			}
			if !wait {
				if g.output == "json" {
					return g.render(queued, nil)
				}
				fmt.Fprintf(g.stdout, "sync of integration %d queued; follow it with 'steward integrations status %d'\n", id, id)
				return nil
			}
			st, err := waitSync(cmd.Context(), c, id, before, newProgress(g.stderr))
			if err != nil {
				return err
			}
			if err := g.render(st, func(w *tabwriter.Writer) { reconcileTable(w, st) }); err != nil {
				return err
			}
			if st.LastError != "" && !after(st.LastReconcileSuccessAt, before.LastReconcileSuccessAt) {
				return fmt.Errorf("sync of integration %d failed: %s", id, st.LastError)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the sync until it finishes and print the reconcile report")
	return cmd
}

// waitSync polls the status until a reconcile newer than before's has
// finished, showing its progress on a terminal.
func waitSync(ctx context.Context, c *apiclient.Client, id int64, before *apiclient.SyncStatus, p *progress) (*apiclient.SyncStatus, error) {
	defer p.done()
	for {
		st, err := c.SyncStatus(ctx, id)
		if err != nil {
			return nil, err
		}
		if st.Running == "" && after(st.LastReconcileAt, before.LastReconcileAt) {
			return st, nil
		}
		switch {
		case st.Running == "":
			p.show(fmt.Sprintf("integration %d: sync queued", id))
		case st.Progress.Total > 0:
			p.show(p.line(st.Running, int64(st.Progress.Done), int64(st.Progress.Total), int64(st.Progress.Done), "tickets") +
				fmt.Sprintf("  (%d of %d)", st.Progress.Done, st.Progress.Total))
		default:
			p.show(fmt.Sprintf("integration %d: %s running", id, st.Running))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stopped following; the sync goes on on the server")
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// after reports whether t is set and later than prev (or prev is unset).
func after(t, prev *time.Time) bool {
	return t != nil && (prev == nil || t.After(*prev))
}

func reconcileTable(w *tabwriter.Writer, st *apiclient.SyncStatus) {
	r := st.LastReconcile
	row(w, "Reconciled:", when(st.LastReconcileAt, time.Now()))
	row(w, "Checked:", r.Checked)
	row(w, "Repaired:", r.Repaired)
	row(w, "Missing in ITSM:", r.Missing)
	for _, s := range r.Repairs {
		row(w, "", "- "+s)
	}
	if st.LastError != "" {
		row(w, "Last error:", st.LastError)
	}
}

func newSyncStatusCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status [ID]",
		Short: "Show how each integration's sync stands: last successful poll, reconcile and webhook, lag, last error",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				id, err := parseID(args[0])
				if err != nil {
					return err
				}
				st, err := c.SyncStatus(cmd.Context(), id)
				if err != nil {
					return err
				}
				return g.render(st, func(w *tabwriter.Writer) { syncDetail(w, st, time.Now()) })
			}
			page, err := c.ListIntegrations(cmd.Context())
			if err != nil {
				return err
			}
			type named struct {
				Name string `json:"name"`
				*apiclient.SyncStatus
			}
			var all []named
			for _, in := range page.Items {
				st, err := c.SyncStatus(cmd.Context(), in.ID)
				if err != nil {
					return fmt.Errorf("integration %d: %w", in.ID, err)
				}
				all = append(all, named{Name: in.Name, SyncStatus: st})
			}
			return g.render(all, func(w *tabwriter.Writer) {
				now := time.Now()
				row(w, "ID", "NAME", "LAST POLL OK", "LAST RECONCILE OK", "LAST WEBHOOK", "LAG", "RUNNING", "LAST ERROR")
				for _, s := range all {
					row(w, s.IntegrationID, s.Name, when(s.LastPollSuccessAt, now), when(s.LastReconcileSuccessAt, now),
						webhookCell(s.SyncStatus, now), lag(s.LagSeconds), running(s.SyncStatus), orDash(clip(s.LastError, 60)))
				}
			})
		},
	}
}

func syncDetail(w io.Writer, st *apiclient.SyncStatus, now time.Time) {
	row(w, "Integration:", st.IntegrationID)
	row(w, "Running:", running(st))
	row(w, "Last poll:", when(st.LastPollAt, now)+" (last successful: "+when(st.LastPollSuccessAt, now)+")")
	row(w, "Watermark:", when(st.Watermark, now))
	row(w, "Last reconcile:", when(st.LastReconcileAt, now)+" (last successful: "+when(st.LastReconcileSuccessAt, now)+")")
	r := st.LastReconcile
	row(w, "  found:", fmt.Sprintf("%d checked, %d repaired, %d missing in the ITSM", r.Checked, r.Repaired, r.Missing))
	for _, s := range r.Repairs {
		row(w, "", "- "+s)
	}
	row(w, "Last webhook:", webhookCell(st, now))
	row(w, "Webhook URL:", orDash(st.WebhookURL))
	row(w, "Lag:", lag(st.LagSeconds))
	row(w, "Last error:", orDash(st.LastError))
}

// when shows a time as UTC with how long ago it was.
func when(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " (" + ago(now.Sub(*t)) + ")"
}

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1fh ago", d.Hours())
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func webhookCell(st *apiclient.SyncStatus, now time.Time) string {
	if !st.HasWebhookSecret {
		return "no secret set"
	}
	return when(st.LastWebhookAt, now)
}

func lag(seconds float64) string {
	if seconds <= 0 {
		return "-"
	}
	return time.Duration(seconds * float64(time.Second)).Round(time.Second).String()
}

func running(st *apiclient.SyncStatus) string {
	switch {
	case st.Running == "":
		return "-"
	case st.Progress.Total > 0:
		return fmt.Sprintf("%s %d/%d", st.Running, st.Progress.Done, st.Progress.Total)
	}
	return strings.TrimSpace(st.Running)
}
