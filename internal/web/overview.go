package web

import (
	"net/http"
	"net/url"
	"slices"

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
}

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
