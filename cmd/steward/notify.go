package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// newNotifyCommand is `steward notify`: e-mail notifications, the weekly
// digests and overdue escalations (docs/notifications.md).
func newNotifyCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "E-mail notifications: test the SMTP setup, preview a digest, the sent-log, resends, owners' managers",
	}
	cmd.AddCommand(newNotifyTestCommand(g), newNotifyPreviewCommand(g), newNotifyStatusCommand(g), newNotifyListCommand(g),
		newNotifyResendCommand(g), newNotifyManagersCommand(g))
	return cmd
}

func newNotifyTestCommand(g *globals) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "test --to ADDRESS",
		Short: "Send a test message through the server's SMTP settings and print the SMTP server's answer",
		Args:  noArgs("notify test takes no arguments; give the address with --to"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return errors.New("notify test needs --to ADDRESS")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.SendTestMail(cmd.Context(), to)
			if err != nil {
				return err
			}
			return g.render(res, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Accepted by the SMTP server: %s\nTo: %s\nMessage-ID: <%s>\n", res.Reply, res.To, res.MessageID)
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the address to send the test message to")
	return cmd
}

func newNotifyPreviewCommand(g *globals) *cobra.Command {
	var owner, manager, htmlFile string
	cmd := &cobra.Command{
		Use:   "preview --owner EMAIL | --manager EMAIL [--html FILE]",
		Short: "Show what an owner's digest or a manager's escalation would say now (works without an SMTP server)",
		Args:  noArgs("notify preview takes no arguments; give --owner or --manager"),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, recipient := steward.NotificationDigest, owner
			switch {
			case owner != "" && manager != "":
				return errors.New("give --owner (a digest) or --manager (an escalation), not both")
			case owner == "" && manager == "":
				return errors.New("notify preview needs --owner EMAIL (a digest) or --manager EMAIL (an escalation)")
			case manager != "":
				kind, recipient = steward.NotificationEscalation, manager
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.PreviewNotification(cmd.Context(), kind, recipient)
			if err != nil {
				return err
			}
			if htmlFile != "" && p.Items > 0 {
				if err := os.WriteFile(htmlFile, []byte(p.HTML), 0o644); err != nil {
					return fmt.Errorf("write the HTML part: %w", err)
				}
			}
			if g.output == "json" {
				return g.render(p, nil)
			}
			return printPreview(g.stdout, p, htmlFile)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&owner, "owner", "", "the owner whose weekly digest to show")
	fl.StringVar(&manager, "manager", "", "the manager whose overdue escalation to show")
	fl.StringVar(&htmlFile, "html", "", "also write the HTML part to this file")
	return cmd
}

// printPreview prints a preview's headers and its plain-text part as they
// would be sent, or says plainly that nothing would be.
func printPreview(w io.Writer, p *steward.MailPreview, htmlFile string) error {
	to := strings.Join(p.To, ", ")
	if p.Items == 0 {
		what := "they have no open assignment to tell of"
		if p.Kind == steward.NotificationEscalation {
			what = "none of their reports has an overdue assignment to tell of"
		}
		_, err := fmt.Fprintf(w, "Nothing would be sent to %s (%s): %s.\n", to, p.Kind, what)
		return err
	}
	fmt.Fprintf(w, "To: %s\nSubject: %s\nKind: %s, %d assignment%s\n", to, p.Subject, p.Kind, p.Items, plural(p.Items))
	if htmlFile != "" {
		fmt.Fprintf(w, "HTML part written to %s\n", htmlFile)
	}
	fmt.Fprintln(w)
	_, err := io.WriteString(w, strings.TrimRight(p.Text, "\n")+"\n")
	return err
}

func newNotifyStatusCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "The e-mail setup, the next digest, the sent-log by state, what needs attention, owners without a manager",
		Args:  noArgs("notify status takes no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.NotificationStatus(cmd.Context())
			if err != nil {
				return err
			}
			return g.render(st, func(w *tabwriter.Writer) { notifyStatusTable(w, st) })
		},
	}
}

// notificationStates is the order states are counted in.
var notificationStates = []steward.NotificationState{steward.NotificationSent, steward.NotificationPending, steward.NotificationSending,
	steward.NotificationRetrying, steward.NotificationFailed, steward.NotificationUnknown, steward.NotificationSkipped}

func notifyStatusTable(w *tabwriter.Writer, st *steward.NotificationStatus) {
	if st.Enabled {
		row(w, "E-mail:", "enabled, through "+st.SMTP)
	} else {
		row(w, "E-mail:", "not configured: nothing is planned or sent (set STEWARD_SMTP_HOST and STEWARD_SMTP_FROM; docs/notifications.md)")
	}
	next := st.NextDigest.Format("2006-01-02 15:04 MST")
	if !st.Enabled {
		next += " (once e-mail is configured)"
	}
	row(w, "Digests:", fmt.Sprintf("%s, next %s", st.Schedule, next))
	var counts []string
	for _, s := range notificationStates {
		if n := st.Counts[s]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, s))
		}
	}
	// A state this CLI does not know yet is still counted.
	for _, s := range slices.Sorted(maps.Keys(st.Counts)) {
		if n := st.Counts[s]; n > 0 && !slices.Contains(notificationStates, s) {
			counts = append(counts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(counts) == 0 {
		counts = []string{"none yet"}
	}
	row(w, "Sent-log:", strings.Join(counts, ", "))

	fmt.Fprintln(w)
	if len(st.Attention) == 0 {
		fmt.Fprintln(w, "Nothing needs attention (no retrying, failed or unknown notification).")
	} else {
		fmt.Fprintln(w, "Needing attention (steward notify resend ID sends one again):")
		notificationTable(w, st.Attention)
	}

	fmt.Fprintln(w)
	if len(st.OwnersWithoutManager) == 0 {
		fmt.Fprintln(w, "No owner with overdue work is recorded without a manager.")
		return
	}
	fmt.Fprintln(w, "Owners with overdue work and no manager found (steward notify managers set OWNER MANAGER):")
	row(w, "OWNER", "SINCE", "TRIED")
	for _, m := range st.OwnersWithoutManager {
		row(w, m.Owner, m.ResolvedAt.Local().Format("2006-01-02 15:04"), orDash(m.Detail))
	}
}

// notificationTable lists notifications, their last error (or the SMTP
// server's answer) last: it is the longest column.
func notificationTable(w io.Writer, items []steward.Notification) {
	row(w, "ID", "RECIPIENT", "KIND", "PERIOD", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR / REPLY")
	for _, n := range items {
		next := "-"
		if n.NextAttemptAt != nil {
			next = n.NextAttemptAt.Local().Format("2006-01-02 15:04:05")
		}
		detail := n.LastError
		if n.State == steward.NotificationSent || detail == "" {
			detail = n.Reply
		}
		row(w, n.ID, n.Recipient, n.Kind, n.Period, n.State, n.Attempts, next, orDash(clip(detail, 100)))
	}
}

func newNotifyListCommand(g *globals) *cobra.Command {
	var states []string
	var f apiclient.NotificationFilter
	var kind string
	cmd := &cobra.Command{
		Use:   "list [--state S] [--kind K] [--period P] [--recipient R] [--limit N]",
		Short: "The sent-log of e-mail notifications, newest first",
		Args:  noArgs("notify list takes no arguments; filter with flags"),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, s := range states {
				for _, p := range strings.Split(s, ",") {
					if p = strings.TrimSpace(p); p != "" {
						f.States = append(f.States, steward.NotificationState(p))
					}
				}
			}
			f.Kind = steward.NotificationKind(kind)
			c, err := g.client()
			if err != nil {
				return err
			}
			page, err := c.ListNotifications(cmd.Context(), f)
			if err != nil {
				return err
			}
			return g.render(page, func(w *tabwriter.Writer) {
				if len(page.Items) == 0 {
					fmt.Fprintln(w, "No notifications.")
					return
				}
				notificationTable(w, page.Items)
				nextHint(w, page.NextCursor)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&states, "state", nil, "pending, sending, sent, retrying, failed, unknown or skipped (repeatable or a comma list)")
	fl.StringVar(&kind, "kind", "", "digest or escalation")
	fl.StringVar(&f.Period, "period", "", "an ISO week, e.g. 2026-W48")
	fl.StringVar(&f.Recipient, "recipient", "", "the recipient's e-mail address")
	fl.IntVar(&f.Limit, "limit", 0, "page size (default: the server's)")
	fl.StringVar(&f.Cursor, "cursor", "", "continue from a previous page")
	return cmd
}

func newNotifyResendCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resend ID",
		Short: "Send a failed, unknown or retrying notification again (an unknown one may then arrive twice); audited",
		Args:  argsFor("the notification ID"),
		RunE: g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
			n, err := c.ResendNotification(cmd.Context(), id)
			if err != nil {
				return err
			}
			return g.render(n, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Notification %d (%s of %s to %s) is %s again: it is sent shortly.\n", n.ID, n.Kind, n.Period, n.Recipient, n.State)
			})
		}),
	}
}

func newNotifyManagersCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "managers",
		Short: "Owners' managers for overdue escalations, where ServiceNow names none",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the owner → manager mapping",
		Args:  noArgs("notify managers list takes no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			page, err := c.ListManagers(cmd.Context())
			if err != nil {
				return err
			}
			return g.render(page, func(w *tabwriter.Writer) {
				if len(page.Items) == 0 {
					fmt.Fprintln(w, "No manager is mapped.")
					return
				}
				row(w, "OWNER", "MANAGER", "UPDATED", "BY")
				for _, m := range page.Items {
					row(w, m.Owner, m.Manager, m.UpdatedAt.Local().Format("2006-01-02 15:04"), m.UpdatedBy)
				}
			})
		},
	}
	set := &cobra.Command{
		Use:   "set OWNER MANAGER",
		Short: "Name an owner's manager (replacing an earlier one); audited",
		Args:  exactArgs(2, "notify managers set needs the owner's and the manager's e-mail addresses: set OWNER MANAGER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			m, err := c.SetManager(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return g.render(m, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "The manager of %s is %s.\n", m.Owner, m.Manager)
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete OWNER",
		Short: "Remove an owner's manager mapping; audited",
		Args:  argsFor("the owner's e-mail address"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			m, err := c.DeleteManager(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.render(m, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Removed the manager mapping of %s (was %s).\n", m.Owner, m.Manager)
			})
		},
	}
	cmd.AddCommand(list, set, del)
	return cmd
}
