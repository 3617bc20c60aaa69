package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
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

With --wait, follow it: progress while it runs, then the changes the poll
applied (from the audit log) and what the reconcile checked and repaired. Ctrl-C stops following; the sync goes on on the server.`,
		Example: `  steward integrations sync 1 --wait`,
		Args:    argsFor("the integration ID (see 'steward integrations list')"),
		RunE: g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
			before, err := c.SyncStatus(cmd.Context(), id)
			if err != nil {
				return err
			}
			// What the poll applies is recorded in the audit log; remember
			// where it stood to report only what this sync added.
			mark, auditErr := newestAuditID(cmd.Context(), c, id)
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
			rep := syncReport{SyncStatus: st}
			if auditErr == nil {
				rep.PollApplied, auditErr = pollChanges(cmd.Context(), c, id, mark)
			}
			if err := g.render(rep, func(w *tabwriter.Writer) { syncReportTable(w, rep, auditErr) }); err != nil {
				return err
			}
			if st.LastError != "" && !after(st.LastReconcileSuccessAt, before.LastReconcileSuccessAt) {
				return fmt.Errorf("sync of integration %d failed: %s", id, st.LastError)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the sync until it finishes and print what the poll applied and the reconcile report")
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

// syncReport is what 'integrations sync --wait' prints: the status after
// the sync and the changes its poll applied.
type syncReport struct {
	*apiclient.SyncStatus
	PollApplied []steward.AuditEvent `json:"poll_applied"`
}

// newestAuditID is the ID of the integration's newest audit event (0 if
// none).
func newestAuditID(ctx context.Context, c *apiclient.Client, id int64) (int64, error) {
	page, err := c.ListAudit(ctx, url.Values{"integration": {strconv.FormatInt(id, 10)}, "limit": {"1"}})
	if err != nil || len(page.Items) == 0 {
		return 0, err
	}
	return page.Items[0].ID, nil
}

// pollChanges returns the changes polls applied to the integration's
// tickets after the audit event mark, oldest first: the sync's own poll,
// and any scheduled one that ran meanwhile.
func pollChanges(ctx context.Context, c *apiclient.Client, id, mark int64) ([]steward.AuditEvent, error) {
	q := url.Values{"integration": {strconv.FormatInt(id, 10)}, "action": {"ticket."}, "limit": {"500"}}
	var out []steward.AuditEvent
	for {
		page, err := c.ListAudit(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range page.Items {
			if e.ID <= mark {
				slices.Reverse(out)
				return out, nil
			}
			if e.Details["via"] == "poll" {
				out = append(out, e)
			}
		}
		if page.NextCursor == "" {
			slices.Reverse(out)
			return out, nil
		}
		q.Set("cursor", page.NextCursor)
	}
}

func syncReportTable(w *tabwriter.Writer, rep syncReport, auditErr error) {
	switch {
	case auditErr != nil:
		row(w, "Poll applied:", "not shown: "+userMessage(auditErr))
	case len(rep.PollApplied) == 0:
		row(w, "Poll applied:", "no changes")
	default:
		row(w, "Poll applied:", fmt.Sprintf("%d change%s", len(rep.PollApplied), plural(len(rep.PollApplied))))
		for _, e := range rep.PollApplied {
			row(w, "", "- "+pollLine(e))
		}
	}
	reconcileTable(w, rep.SyncStatus)
}

// pollLine tells one applied change, e.g. "INC0010001 (assignment 3):
// state=New→Resolved assignment=completed".
func pollLine(e steward.AuditEvent) string {
	d := maps.Clone(e.Details)
	number, _ := d["number"].(string)
	for _, k := range []string{"via", "number", "mod_count", "updated_by", "sys_id"} {
		delete(d, k)
	}
	if e.Action == "ticket.deleted_in_itsm" {
		d["deleted_in_servicenow"] = true
	}
	return fmt.Sprintf("%s (assignment %d): %s", orDash(number), e.AssignmentID, keyValues(d))
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
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("integrations status takes at most one integration ID; got %d: %s", len(args), strings.Join(args, " "))
			}
			return nil
		},
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
