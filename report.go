package steward

import "time"

// The governance report (GET /api/v1/reports/governance, `steward report`,
// the overview's charts): is remediation keeping up, who is behind, and how
// long fixes take. docs/reports.md defines every number.

// GovernanceFilter selects what a governance report covers. Every field is
// optional except the period.
type GovernanceFilter struct {
	// Scope limits the report to resources inside it ("" for all).
	Scope Scope `json:"scope,omitempty"`
	// Severity limits it to findings of one severity ("" for all).
	Severity Severity `json:"severity,omitempty"`
	// Cloud limits it to resources of one cloud ("" for all).
	Cloud Cloud `json:"cloud,omitempty"`
	// Owner limits it to one owner's assignments (any letter case). The
	// daily series then counts only that owner's assignments: its
	// unhealthy, unassigned and new columns are zero.
	Owner string `json:"owner,omitempty"`
	// From and To are the first and last UTC day of the period, both
	// included (midnight UTC). Completed assignments and times to
	// remediate count assignments completed within the period; the daily
	// series covers its days.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Limit is the most rows the owner and scope tables list (the ones
	// with the most overdue first); 0 means the default.
	Limit int `json:"limit,omitempty"`
}

// Report table limits.
const (
	DefaultReportLimit = 100
	MaxReportLimit     = 10000
	// MaxReportDays is the longest period a report covers (five years).
	MaxReportDays = 5*366 + 1
)

// GovernanceReport answers "are we keeping up": totals, the tables by
// owner, scope and severity, and the daily series.
type GovernanceReport struct {
	Filter      GovernanceFilter `json:"filter"`
	GeneratedAt time.Time        `json:"generated_at"`
	// Totals is the whole selection as one row (its Key is empty).
	Totals GovernanceRow `json:"totals"`
	// Owners and Scopes list at most Filter.Limit rows, most overdue
	// first, then most assigned, then by key; OwnersTotal and ScopesTotal
	// say how many there are in all.
	Owners      []GovernanceRow `json:"owners"`
	OwnersTotal int             `json:"owners_total"`
	// Scopes are the subscriptions, AWS accounts and GCP projects or
	// organizations (the report's scope levels) holding the assignments;
	// resources under none of them are one row keyed "(other)".
	Scopes      []GovernanceRow `json:"scopes"`
	ScopesTotal int             `json:"scopes_total"`
	// Severities has one row per severity with any assignment, most
	// severe first: time to remediate by severity.
	Severities []GovernanceRow `json:"severities"`
	// Daily is one entry per day of the period for which a snapshot (or,
	// for a selection snapshots do not cover, the history) gives counts,
	// oldest first.
	Daily []GovernanceDay `json:"daily"`
	// DailySource says where Daily came from: "snapshots" (the daily
	// snapshots, for a scope level, cloud and severity selection) or
	// "history" (computed from status and assignment history for this
	// request: a scope below the snapshot levels, or an owner).
	DailySource string `json:"daily_source"`
}

// GovernanceRow is one row of a report table: the assignments of one
// owner, scope or severity (Key), as they are now, and those completed in
// the period with their times to remediate.
type GovernanceRow struct {
	Key string `json:"key"`
	// Assigned are the active assignments now; OnTime and Overdue split
	// them by due date (overdue: the due date has passed).
	Assigned int `json:"assigned"`
	OnTime   int `json:"on_time"`
	Overdue  int `json:"overdue"`
	// Completed are the assignments completed within the period (the
	// finding was fixed, or its ticket was resolved or closed).
	Completed int `json:"completed"`
	// OverdueRatio is Overdue / Assigned (0 when nothing is assigned).
	OverdueRatio float64 `json:"overdue_ratio"`
	// MeanDaysToRemediate and P90DaysToRemediate are over the completed
	// assignments' time from assignment to completion, in days; null
	// when none was completed.
	MeanDaysToRemediate *float64 `json:"mean_days_to_remediate"`
	P90DaysToRemediate  *float64 `json:"p90_days_to_remediate"`
}

// GovernanceDay is the counts of one UTC day, as they stood at its end
// (for today: when the snapshot was last refreshed).
type GovernanceDay struct {
	Date string `json:"date"` // 2006-01-02
	// Unhealthy findings; Assigned of them have an active assignment,
	// Unassigned have none. OnTime and Overdue split Assigned by the
	// assignment's due date as it was then.
	Unhealthy  int `json:"unhealthy"`
	Assigned   int `json:"assigned"`
	Unassigned int `json:"unassigned"`
	OnTime     int `json:"on_time"`
	Overdue    int `json:"overdue"`
	// Completed assignments and New unhealthy findings during the day.
	Completed int `json:"completed"`
	New       int `json:"new"`
	// Provisional marks today's counts: refreshed during the day, final
	// once it has ended.
	Provisional bool `json:"provisional,omitempty"`
}

// Daily series sources (GovernanceReport.DailySource).
const (
	DailyFromSnapshots = "snapshots"
	DailyFromHistory   = "history"
)

// ReportDate is the layout of report days.
const ReportDate = time.DateOnly
