package snowemu

import (
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// recordTemplate is the read-only form of one record, what a ticket link
// (…/nav_to.do?uri=incident.do?sys_id=…) opens on a real instance.
var recordTemplate = template.Must(template.New("record").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Number}} | {{.Table}} | ServiceNow emulator</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.5rem}
table{border-collapse:collapse;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.muted{color:#888}.text{white-space:pre-wrap}
</style>
</head>
<body>
<p><a href="/">All records</a></p>
<h1>{{.Table}} {{.Number}}: {{.ShortDescription}}</h1>
<table>
<tr><th>State</th><td>{{.State}}</td></tr>
<tr><th>Assigned to</th><td>{{or .AssignedTo "(nobody)"}}</td></tr>
<tr><th>Assignment group</th><td>{{.AssignmentGroup}}</td></tr>
<tr><th>Priority</th><td>{{.Priority}}</td></tr>
<tr><th>Correlation ID</th><td>{{.CorrelationID}}</td></tr>
<tr><th>Description</th><td class="text">{{.Description}}</td></tr>
</table>
<h2>Work notes and comments</h2>
{{if .Journal}}<table>
<thead><tr><th>When (UTC)</th><th>Who</th><th>Kind</th><th>Text</th></tr></thead>
<tbody>
{{range .Journal}}<tr><td>{{.When}}</td><td>{{.Who}}</td><td>{{.Kind}}</td><td class="text">{{.Text}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p class="muted">None.</p>{{end}}
<h2>History</h2>
{{if .History}}<table>
<thead><tr><th>When (UTC)</th><th>Who</th><th>Field</th><th>From</th><th>To</th></tr></thead>
<tbody>
{{range .History}}<tr><td>{{.When}}</td><td>{{.Who}}</td><td>{{.Field}}</td><td>{{.From}}</td><td>{{.To}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p class="muted">No changes.</p>{{end}}
<h2>All fields</h2>
<table>
{{range .Fields}}<tr><th>{{.Label}}</th><td class="text">{{.Value}}</td></tr>
{{end}}</table>
</body>
</html>
`))

var notFoundTemplate = template.Must(template.New("notfound").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Record not found | ServiceNow emulator</title></head>
<body style="font-family:system-ui,sans-serif;margin:1.5rem">
<h1>Record not found</h1>
<p>{{.}}</p>
<p><a href="/">All records</a></p>
</body>
</html>
`))

type recordPage struct {
	Table, Number, ShortDescription, Description string
	State, AssignedTo, AssignmentGroup, Priority string
	CorrelationID                                string
	Journal                                      []journalEntry
	History                                      []historyEntry
	Fields                                       []labelValue
}

type journalEntry struct{ When, Who, Kind, Text string }

type historyEntry struct{ When, Who, Field, From, To string }

type labelValue struct{ Label, Value string }

// recordURL is the path of a record's page, the form list rows link to.
func recordURL(table, sysID string) string {
	return "/" + table + ".do?sys_id=" + url.QueryEscape(sysID)
}

// handleNavTo serves /nav_to.do?uri=<table>.do?sys_id=<id>, the link
// Steward puts on tickets. Instances accept the inner URI encoded or not;
// unencoded, its own query is still part of the uri parameter because only
// '&' separates parameters.
func (e *Emulator) handleNavTo(w http.ResponseWriter, r *http.Request) {
	uri := strings.TrimPrefix(r.URL.Query().Get("uri"), "/")
	path, rawQuery, _ := strings.Cut(uri, "?")
	table, ok := strings.CutSuffix(path, ".do")
	q, err := url.ParseQuery(rawQuery)
	if !ok || err != nil {
		e.writeRecordNotFound(w, "The link does not name a record: uri="+uri)
		return
	}
	e.serveRecord(w, table, q.Get("sys_id"))
}

// handleRecord serves /<table>.do?sys_id=<id>.
func (e *Emulator) handleRecord(table string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e.serveRecord(w, table, r.URL.Query().Get("sys_id"))
	}
}

// serveRecord renders one task record, like the list page without
// authentication: it shows records, never credentials, and offers no
// actions.
func (e *Emulator) serveRecord(w http.ResponseWriter, tableName, sysID string) {
	e.mu.RLock()
	page, ok := e.recordPageLocked(tableName, sysID)
	e.mu.RUnlock()
	if !ok {
		e.writeRecordNotFound(w, "No "+tableName+" record has the sys_id "+sysID+".")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := recordTemplate.Execute(w, page); err != nil {
		e.log.Warn("render record page", slog.Any("error", err))
	}
}

func (e *Emulator) writeRecordNotFound(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	if err := notFoundTemplate.Execute(w, msg); err != nil {
		e.log.Warn("render not-found page", slog.Any("error", err))
	}
}

// recordPageLocked gathers what the page shows; false when the table is
// not a task table or holds no record with that sys_id.
func (e *Emulator) recordPageLocked(tableName, sysID string) (*recordPage, bool) {
	t := e.tables[tableName]
	if t == nil || !t.def.task || sysID == "" {
		return nil, false
	}
	r := t.byID[sysID]
	if r == nil {
		return nil, false
	}
	def, f := t.def, r.fields
	show := func(name string) string {
		fd := def.field(name)
		if fd == nil {
			return ""
		}
		return e.displayValueLocked(fd, f[name])
	}
	p := &recordPage{
		Table: def.label, Number: f["number"], ShortDescription: f["short_description"], Description: f["description"],
		State: show("state"), AssignedTo: show("assigned_to"), AssignmentGroup: show("assignment_group"),
		Priority: show("priority"), CorrelationID: f["correlation_id"],
	}
	for _, fd := range def.fields {
		if fd.kind == kindJournal || f[fd.name] == "" {
			continue
		}
		p.Fields = append(p.Fields, labelValue{Label: fd.label, Value: e.displayValueLocked(fd, f[fd.name])})
	}
	if rows, ok := e.tables[TableJournal].lookup("element_id", sysID); ok {
		for _, j := range rows {
			kind := "Additional comment"
			if j.fields["element"] == "work_notes" {
				kind = "Work note"
			}
			p.Journal = append(p.Journal, journalEntry{When: j.fields["sys_created_on"], Who: j.fields["sys_created_by"], Kind: kind, Text: j.fields["value"]})
		}
	}
	if rows, ok := e.tables[TableAudit].lookup("documentkey", sysID); ok {
		for _, a := range rows {
			fd := def.field(a.fields["fieldname"])
			// Journal entries are listed above; sys_* bookkeeping is noise.
			if fd == nil || fd.kind == kindJournal || strings.HasPrefix(fd.name, "sys_") {
				continue
			}
			p.History = append(p.History, historyEntry{When: a.fields["sys_created_on"], Who: a.fields["user"], Field: fd.label,
				From: e.displayValueLocked(fd, a.fields["oldvalue"]), To: e.displayValueLocked(fd, a.fields["newvalue"])})
		}
	}
	// Newest first, as the instance's activity stream shows them.
	slices.Reverse(p.Journal)
	slices.Reverse(p.History)
	return p, true
}

// displayValueLocked is a field's display value for a person: the choice
// label or the referenced record's display value, else the raw value
// (a reference to a table the emulator does not keep has no display value).
func (e *Emulator) displayValueLocked(fd *fieldDef, v string) string {
	if v == "" {
		return ""
	}
	if d := e.displayLocked(fd, v); d != "" {
		return d
	}
	return v
}
