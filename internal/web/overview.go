package web

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

type overviewData struct {
	Overview *steward.Overview
	// Severities and Clouds are the table's rows and columns; Cells[sev][cloud].
	Severities []steward.Severity
	Clouds     []steward.Cloud
	Cells      map[steward.Severity]map[steward.Cloud]int
	Totals     map[steward.Severity]int
	Total      int
	Sync       []integrationHealth
	Activity   []steward.AuditEvent
	// ActivityHidden: a scope-limited user may not read the audit log.
	ActivityHidden bool
	Governance     governanceView
	// Mine is the signed-in owner's own work; nil when they own nothing.
	Mine *ownerWork
}

// governanceView is the governance report's charts (docs/reports.md) over
// the last reportDays days, in the signed-in user's scope. An empty chart
// means there is nothing to draw; the page says so instead.
type governanceView struct {
	// Err says why the report could not be read; the rest of the overview
	// still shows.
	Err        string
	From, To   string
	Trend      template.HTML
	Owners     template.HTML
	Severities template.HTML
}

// ownerWork is "Your work": the signed-in user's own assignments, when
// the name they signed in with is an owner's.
type ownerWork struct {
	Owner                        string
	Assigned, Overdue, Completed int
	Trend                        template.HTML
	ListHref, OverdueHref        string
}

const (
	// reportDays is the period the overview's charts cover.
	reportDays = "90d"
	// ownerBars is how many owners the owner chart shows.
	ownerBars = 10
)

// trendLines are the overview trend's lines: is the unhealthy backlog
// assigned, and is the assigned work on time.
var trendLines = []trendSeries{
	{Name: "Unhealthy", Class: "line-unhealthy", Value: func(d steward.GovernanceDay) int { return d.Unhealthy }},
	{Name: "Assigned", Class: "line-assigned", Value: func(d steward.GovernanceDay) int { return d.Assigned }},
	{Name: "Overdue", Class: "line-overdue", Value: func(d steward.GovernanceDay) int { return d.Overdue }},
}

// ownerLines are an owner's trend: an owner's report counts no findings,
// only the owner's assignments.
var ownerLines = trendLines[1:]

type integrationHealth struct {
	Integration steward.Integration
	Status      *apiclient.SyncStatus
	Err         string
}

// overview is the home page: what is unhealthy, whether assignments keep
// up, whether each integration is in sync, and what happened lately.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request) error {
	c := h.apiFor(w, r)
	ctx := r.Context()
	o, err := c.Overview(ctx)
	if err != nil {
		return err
	}
	d := overviewData{Overview: o, Cells: map[steward.Severity]map[steward.Cloud]int{}, Totals: map[steward.Severity]int{}}
	seenCloud := map[steward.Cloud]bool{}
	for _, u := range o.Unhealthy {
		if d.Cells[u.Severity] == nil {
			d.Cells[u.Severity] = map[steward.Cloud]int{}
			d.Severities = append(d.Severities, u.Severity)
		}
		d.Cells[u.Severity][u.Cloud] += u.Count
		d.Totals[u.Severity] += u.Count
		d.Total += u.Count
		if !seenCloud[u.Cloud] {
			seenCloud[u.Cloud] = true
			d.Clouds = append(d.Clouds, u.Cloud)
		}
	}
	slices.Sort(d.Clouds)
	integrations, err := c.ListIntegrations(ctx)
	if err != nil {
		return err
	}
	for _, in := range integrations.Items {
		hl := integrationHealth{Integration: in}
		st, err := c.SyncStatus(ctx, in.ID)
		if err != nil {
			_, hl.Err = statusOf(err)
		} else {
			hl.Status = st
		}
		d.Sync = append(d.Sync, hl)
	}
	d.Governance = h.governance(ctx, c)
	d.Mine = h.ownerWork(ctx, c, ownerAddress(identity(r).Name))
	if identity(r).Scoped() {
		d.ActivityHidden = true
	} else {
		audit, err := c.ListAudit(ctx, url.Values{"limit": {"10"}})
		if err != nil {
			return err
		}
		d.Activity = audit.Items
	}
	return h.render(w, r, http.StatusOK, "overview.html", "Overview", d)
}

// governance reads the governance report as the signed-in user (the API
// narrows it to their scope) and draws its charts.
func (h *Handler) governance(ctx context.Context, c *apiclient.Client) governanceView {
	rep, err := c.GovernanceReport(ctx, apiclient.ReportQuery{Since: reportDays, Limit: ownerBars})
	if err != nil {
		return governanceView{Err: h.reportError(ctx, err)}
	}
	g := governanceView{From: date(rep.Filter.From), To: date(rep.Filter.To)}
	charts := []struct {
		c   *chart
		out *template.HTML
	}{
		{trendChart("trend", "Unhealthy, assigned and overdue findings by day", "Findings", rep.Daily, rep.Filter.From, rep.Filter.To, trendLines,
			[]chartLink{{"/recommendations?status=Unhealthy", "Unhealthy findings"}, {"/assignments", "Active assignments"}, {"/assignments?overdue=true", "Overdue assignments"}}),
			&g.Trend},
		{ownerChart("owners", rep.Owners, rep.OwnersTotal, ownerBars), &g.Owners},
		{severityChart("severities", rep.Severities), &g.Severities},
	}
	for _, ch := range charts {
		html, err := ch.c.render()
		if err != nil {
			h.logger.ErrorContext(ctx, "overview: draw a governance chart", "err", err)
			return governanceView{Err: "The governance charts could not be drawn; it has been logged."}
		}
		*ch.out = html
	}
	return g
}

// ownerAddress is the owner address a signed-in name stands for: an
// OpenID Connect sign-in is named "oidc:<email>" (oidc.go; token names
// cannot hold a ':'), and a token may be named after its owner's address.
// Any other name is no owner's: "".
func ownerAddress(name string) string {
	addr := strings.TrimPrefix(name, "oidc:")
	if steward.ValidateEmail("owner", addr) != nil {
		return ""
	}
	return addr
}

// ownerWork is the report of the assignments owned by name, or nil when
// name is "" (no owner's address) or owns nothing: no active assignment
// and none completed in the period.
func (h *Handler) ownerWork(ctx context.Context, c *apiclient.Client, name string) *ownerWork {
	if name == "" {
		return nil
	}
	rep, err := c.GovernanceReport(ctx, apiclient.ReportQuery{Owner: name, Since: reportDays, Limit: 1})
	if err != nil {
		h.reportError(ctx, err)
		return nil
	}
	if rep.Totals.Assigned == 0 && rep.Totals.Completed == 0 {
		return nil
	}
	w := &ownerWork{Owner: name, Assigned: rep.Totals.Assigned, Overdue: rep.Totals.Overdue, Completed: rep.Totals.Completed,
		ListHref: assignmentsHref(name, false), OverdueHref: assignmentsHref(name, true)}
	trend := trendChart("my-trend", "Your assigned and overdue findings by day", "Assignments", rep.Daily, rep.Filter.From, rep.Filter.To, ownerLines,
		[]chartLink{{w.ListHref, "Your assignments"}, {w.OverdueHref, "Your overdue assignments"}})
	html, err := trend.render()
	if err != nil {
		h.logger.ErrorContext(ctx, "overview: draw the owner's trend", "err", err)
	}
	w.Trend = html
	return w
}

// reportError is the message shown for a report that could not be read,
// logged when the fault is ours.
func (h *Handler) reportError(ctx context.Context, err error) string {
	status, msg := statusOf(err)
	if status >= 500 {
		h.logger.ErrorContext(ctx, "overview: read the governance report", "err", err)
	}
	return msg
}

// date writes a report day ("" for none).
func date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(steward.ReportDate)
}
