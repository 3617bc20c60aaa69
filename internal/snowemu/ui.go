package snowemu

import (
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
)

// uiTemplate is the read-only "watch tickets appear" page served at GET /.
var uiTemplate = template.Must(template.New("ui").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{{.Refresh}}">
<title>ServiceNow emulator</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.5rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left}
th{background:#f4f4f4}.muted{color:#888}
</style>
</head>
<body>
<h1>ServiceNow emulator</h1>
<p class="muted">Read-only view, refreshed every {{.Refresh}} s. Showing the {{.Limit}} most recently updated records per table.</p>
{{range .Tables}}
<h2>{{.Label}} <span class="muted">({{.Count}})</span></h2>
{{if .Rows}}
<table>
<thead><tr><th>Number</th><th>Short description</th><th>State</th><th>Assigned to</th><th>Correlation ID</th><th>Updated (UTC)</th><th>By</th></tr></thead>
<tbody>
{{range .Rows}}<tr><td><a href="{{.Link}}">{{.Number}}</a></td><td>{{.ShortDescription}}</td><td>{{.State}}</td><td>{{.AssignedTo}}</td><td>{{.CorrelationID}}</td><td>{{.Updated}}</td><td>{{.UpdatedBy}}</td></tr>
{{end}}
</tbody>
</table>
{{else}}<p class="muted">No records.</p>{{end}}
{{end}}
</body>
</html>
`))

type uiRow struct {
	Number, ShortDescription, State, AssignedTo, CorrelationID, Updated, UpdatedBy string
	Link                                                                           string // the record's page
}

type uiTable struct {
	Label string
	Count int
	Rows  []uiRow
}

// handleUI serves GET / without authentication: a person can watch tickets
// appear during a demo. It exposes no credentials and offers no actions.
// Each number links to the record's page (record_page.go).
func (e *Emulator) handleUI(w http.ResponseWriter, r *http.Request) {
	const limit = 50
	data := struct {
		Refresh int
		Limit   int
		Tables  []uiTable
	}{Refresh: 5, Limit: limit}
	e.mu.RLock()
	for _, name := range taskTables {
		t := e.tables[name]
		rows := t.rows()
		slices.SortStableFunc(rows, func(a, b *row) int {
			return strings.Compare(b.fields["sys_updated_on"], a.fields["sys_updated_on"])
		})
		ut := uiTable{Label: t.def.label, Count: len(rows)}
		for _, rec := range rows[:min(limit, len(rows))] {
			f := rec.fields
			ut.Rows = append(ut.Rows, uiRow{
				Number:           f["number"],
				Link:             recordURL(name, f["sys_id"]),
				ShortDescription: f["short_description"],
				State:            t.def.field("state").choiceLabel(f["state"]),
				AssignedTo:       e.displayLocked(t.def.field("assigned_to"), f["assigned_to"]),
				CorrelationID:    f["correlation_id"],
				Updated:          f["sys_updated_on"],
				UpdatedBy:        f["sys_updated_by"],
			})
		}
		data.Tables = append(data.Tables, ut)
	}
	e.mu.RUnlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := uiTemplate.Execute(w, data); err != nil {
		e.log.Warn("render ui", slog.Any("error", err))
	}
}
