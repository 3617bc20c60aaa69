package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// reportDailyShown is how many of the daily series' last days the table
// output shows; -o json and -o csv --table daily have them all.
const reportDailyShown = 14

// newReportCommand is `steward report`: the governance report
// (docs/reports.md), GET /api/v1/reports/governance.
func newReportCommand(g *globals) *cobra.Command {
	var q apiclient.ReportQuery
	var severity, cloud, table string
	cmd := &cobra.Command{
		Use:   "report [--scope S] [--severity SEV] [--cloud C] [--owner EMAIL] [--since 90d|DATE] [--until DATE] [--limit N] [-o table|json|csv [--table T]]",
		Short: "The governance report: is remediation keeping up, who is behind, how long fixes take",
		Long: `Print the governance report (docs/reports.md) for a period, the 90 days
ending today unless --since and --until say otherwise:

  - the totals: assignments active now, on time and overdue, and those
    completed in the period with the mean and p90 days to remediate;
  - the same by owner, by scope (subscription, AWS account, GCP project or
    organization) and by severity, most overdue first;
  - the daily series (unhealthy, assigned, unassigned, on time, overdue,
    completed, new): the table shows its last 14 days.

-o json prints the whole report as the API answers it. -o csv prints one
table as the API's CSV, for a spreadsheet: --table owners (the default for
-o csv), scopes, severities or daily (every day of the period).

A token limited to a scope gets the report of its scope; --scope may only
narrow it.`,
		Example: `  steward report
  steward report --scope /subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333 --since 30d
  steward report --severity high --owner alice@example.com --since 2026-09-01 --until 2026-09-30
  steward report -o csv > governance-owners.csv
  steward report -o csv --table daily --since 365d > governance-daily.csv
  steward report -o json | jq '.owners[] | select(.overdue > 0)'`,
		Args: noArgs("report takes no arguments; filter with flags"),
		RunE: func(cmd *cobra.Command, args []string) error {
			q.Severity, q.Cloud = steward.Severity(severity), steward.Cloud(cloud)
			switch g.output {
			case "csv":
				if table == "" {
					table = "owners"
				}
			case "table", "", "json":
				if table != "" {
					return errors.New("--table chooses the table -o csv prints; the table and json outputs hold every table")
				}
			default:
				return fmt.Errorf("output %q is not table, json or csv", g.output)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if g.output == "csv" {
				out, err := c.GovernanceReportCSV(cmd.Context(), q, table)
				if err != nil {
					return err
				}
				_, err = g.stdout.Write(out)
				return err
			}
			rep, err := c.GovernanceReport(cmd.Context(), q)
			if err != nil {
				return err
			}
			return g.render(rep, func(w *tabwriter.Writer) { reportTable(w, rep) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&q.Scope, "scope", "", "only resources inside this scope, e.g. /subscriptions/<id> (default: everything, or your token's scope)")
	fl.StringVar(&severity, "severity", "", "only findings of this severity: low, medium, high or critical")
	fl.StringVar(&cloud, "cloud", "", "only resources of this cloud: azure, aws, gcp or other")
	fl.StringVar(&q.Owner, "owner", "", "only this owner's assignments (the daily series then counts only theirs)")
	fl.StringVar(&q.Since, "since", "", "the period's first day: N days back, today included (90d), or a date (2026-09-01); default 90d")
	fl.StringVar(&q.Until, "until", "", "the period's last day, a date; default today")
	fl.IntVar(&q.Limit, "limit", 0, "the most rows of the owner and scope tables (default: the server's, 100)")
	fl.StringVar(&table, "table", "", "with -o csv: owners (default), scopes, severities or daily")
	return cmd
}

// reportTable prints a report for people: what it covers, the totals, the
// three tables and the daily series' last days.
func reportTable(w io.Writer, rep *steward.GovernanceReport) {
	f := rep.Filter
	scope := "all scopes"
	if f.Scope != "" {
		scope = "scope " + string(f.Scope)
	}
	days := int(f.To.Sub(f.From)/(24*time.Hour)) + 1
	fmt.Fprintf(w, "Governance report for %s, %s to %s (%d day%s), generated %s\n", scope,
		f.From.Format(steward.ReportDate), f.To.Format(steward.ReportDate), days, plural(days), rep.GeneratedAt.UTC().Format("2006-01-02 15:04 MST"))
	var only []string
	if f.Severity != "" {
		only = append(only, "severity "+string(f.Severity))
	}
	if f.Cloud != "" {
		only = append(only, "cloud "+string(f.Cloud))
	}
	if f.Owner != "" {
		only = append(only, "owner "+f.Owner)
	}
	if len(only) > 0 {
		fmt.Fprintf(w, "Only %s\n", strings.Join(only, ", "))
	}

	t := rep.Totals
	fmt.Fprintln(w)
	row(w, "Assigned now:", fmt.Sprintf("%d (%d on time, %d overdue: %s)", t.Assigned, t.OnTime, t.Overdue, percent(t)))
	row(w, "Completed in the period:", t.Completed)
	row(w, "Days to remediate:", fmt.Sprintf("mean %s, p90 %s", daysText(t.MeanDaysToRemediate), daysText(t.P90DaysToRemediate)))

	reportRows(w, "Owners", "OWNER", rep.Owners, rep.OwnersTotal)
	reportRows(w, "Scopes", "SCOPE", rep.Scopes, rep.ScopesTotal)
	reportRows(w, "Severities", "SEVERITY", rep.Severities, len(rep.Severities))

	fmt.Fprintln(w)
	source := "the daily snapshots"
	if rep.DailySource == steward.DailyFromHistory {
		source = "status and assignment history"
	}
	if len(rep.Daily) == 0 {
		fmt.Fprintln(w, "Daily: no day of the period has counts yet.")
		return
	}
	shown := rep.Daily[max(0, len(rep.Daily)-reportDailyShown):]
	fmt.Fprintf(w, "Daily, the last %d of %d day%s (from %s; -o csv --table daily has them all):\n", len(shown), len(rep.Daily), plural(len(rep.Daily)), source)
	row(w, "DATE", "UNHEALTHY", "ASSIGNED", "UNASSIGNED", "ON TIME", "OVERDUE", "COMPLETED", "NEW")
	provisional := false
	for _, d := range shown {
		date := d.Date
		if d.Provisional {
			date += " *"
			provisional = true
		}
		row(w, date, d.Unhealthy, d.Assigned, d.Unassigned, d.OnTime, d.Overdue, d.Completed, d.New)
	}
	if provisional {
		fmt.Fprintln(w, "* today, so far")
	}
	if f.Owner != "" {
		fmt.Fprintln(w, "(one owner's series counts their assignments only: unhealthy, unassigned and new stay 0)")
	}
}

// reportRows prints one of the report's tables under its title.
func reportRows(w io.Writer, title, key string, rows []steward.GovernanceRow, total int) {
	fmt.Fprintln(w)
	if len(rows) == 0 {
		fmt.Fprintf(w, "%s: none with assignments.\n", title)
		return
	}
	if total > len(rows) {
		fmt.Fprintf(w, "%s, the %d most overdue of %d (--limit shows more):\n", title, len(rows), total)
	} else {
		fmt.Fprintf(w, "%s:\n", title)
	}
	row(w, key, "ASSIGNED", "ON TIME", "OVERDUE", "OVERDUE %", "COMPLETED", "MEAN DAYS", "P90 DAYS")
	for _, r := range rows {
		row(w, orDash(r.Key), r.Assigned, r.OnTime, r.Overdue, percent(r), r.Completed, daysText(r.MeanDaysToRemediate), daysText(r.P90DaysToRemediate))
	}
}

// percent is a row's overdue ratio as a percentage; "—" when nothing is
// assigned.
func percent(r steward.GovernanceRow) string {
	if r.Assigned == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100*r.OverdueRatio)
}

// daysText is a time to remediate in days with one decimal; "—" when
// nothing was completed.
func daysText(d *float64) string {
	if d == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f", *d)
}
