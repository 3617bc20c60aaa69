package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

func (h *Handler) auditPages() []page {
	return []page{
		{"GET", "/audit", reader, h.audit},
	}
}

// auditActions are the audit log's action families, offered as
// suggestions for the action filter (any prefix works).
var auditActions = []string{"integration.", "rule.", "scope_tags.", "secrets.", "ticket.", "token."}

type auditFilters struct {
	Integration string
	Assignment  string
	Action      string
}

type auditRow struct {
	steward.AuditEvent
	Details []auditDetail
}

type auditDetail struct{ Key, Value string }

type auditView struct {
	Filters    auditFilters
	Actions    []string
	Events     []auditRow
	Cursor     string
	NextCursor string
	Error      fieldError
}

// audit lists the audit log, newest first, through the API: it answers 403
// to a scope-limited sign-in, which the error page shows.
func (h *Handler) audit(w http.ResponseWriter, r *http.Request) error {
	in := r.URL.Query()
	f := auditFilters{
		Integration: strings.TrimSpace(in.Get("integration")),
		Assignment:  strings.TrimSpace(in.Get("assignment")),
		Action:      strings.TrimSpace(in.Get("action")),
	}
	q := url.Values{}
	for k, v := range map[string]string{"integration": f.Integration, "assignment": f.Assignment, "action": f.Action, "cursor": in.Get("cursor")} {
		if v != "" {
			q.Set(k, v)
		}
	}
	v := auditView{Filters: f, Actions: auditActions, Cursor: in.Get("cursor")}
	p, err := h.apiFor(w, r).ListAudit(r.Context(), q)
	if err != nil {
		status, _ := statusOf(err)
		if status != http.StatusBadRequest {
			return err
		}
		// A bad filter: show it at the filter it names.
		v.Error = formError(err)
		if v.Error.Field == "" {
			for _, name := range []string{"integration", "assignment", "action", "cursor"} {
				if strings.HasPrefix(v.Error.Message, name+" ") {
					v.Error.Field = name
				}
			}
		}
		return h.render(w, r, status, "audit.html", "Audit log", v)
	}
	v.Events = auditRows(p)
	v.NextCursor = p.NextCursor
	return h.render(w, r, http.StatusOK, "audit.html", "Audit log", v)
}

func auditRows(p *apiclient.Page[steward.AuditEvent]) []auditRow {
	rows := make([]auditRow, 0, len(p.Items))
	for _, e := range p.Items {
		row := auditRow{AuditEvent: e}
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			row.Details = append(row.Details, auditDetail{Key: k, Value: auditDetailValue(e.Details[k])})
		}
		rows = append(rows, row)
	}
	return rows
}

// auditDetailValue shows a detail's JSON value plainly: strings as they are,
// numbers without an exponent, lists and objects in Go's short form.
func auditDetailValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprintf("%g", x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = auditDetailValue(e)
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + auditDetailValue(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}
