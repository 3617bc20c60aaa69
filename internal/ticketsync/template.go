package ticketsync

import (
	"bytes"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward"
)

// TemplateData is what ticket templates see.
type TemplateData struct {
	Recommendation steward.Recommendation
	Resource       steward.Resource
	Assessment     steward.Assessment
	Assignment     steward.Assignment
	// Link opens the assignment in Steward.
	Link string
}

// The default wording is written for the ServiceNow agent who receives the
// ticket: what is wrong, where, how to fix it, by when, and where it is
// tracked.
const (
	defaultShortDescription = `[Security] {{.Recommendation.DisplayName}} on {{if .Resource.Name}}{{.Resource.Name}}{{else}}{{.Resource.ID}}{{end}}`
	defaultDescription      = `Security recommendation: {{.Recommendation.DisplayName}}
Severity: {{.Recommendation.Severity}}{{if .Recommendation.Source}} (source: {{.Recommendation.Source}}){{end}}

Affected resource: {{.Resource.ID}}
{{- if .Resource.Type}}
Type: {{.Resource.Type}}{{end}}
Cloud: {{.Resource.Cloud}}{{if .Resource.Region}}, region {{.Resource.Region}}{{end}}
Unhealthy since: {{date .Assessment.StatusChangedAt}}
Remediation due: {{date .Assignment.DueDate}}
{{- if .Recommendation.Description}}

What is wrong:
{{.Recommendation.Description}}{{end}}
{{- if .Recommendation.Remediation}}

How to fix:
{{.Recommendation.Remediation}}{{end}}

Tracked by Steward as assignment {{.Assignment.ID}}{{if .Link}}: {{.Link}}{{end}}
This ticket stays in sync with Steward: resolving, canceling or closing it ends the assignment, reassigning it changes the owner, and when a later scan shows the resource fixed, Steward resolves it.`
)

// maxShortDescription is the short_description column size on task
// tables (servicenow-api.md §4.3).
const maxShortDescription = 160

var templateFuncs = template.FuncMap{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "unknown"
		}
		return t.UTC().Format("2006-01-02")
	},
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
}

// ParseTemplate checks a user-supplied template; the error names the field.
func ParseTemplate(field, text string) (*template.Template, error) {
	t, err := template.New(field).Funcs(templateFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, steward.Errorf(steward.CodeInvalid, "%s template: %s", field, err.Error())
	}
	return t, nil
}

// Render fills the mapping's templates (or the defaults) with data.
func Render(m steward.TicketMapping, data TemplateData) (short, description string, err error) {
	shortText, descText := m.ShortDescription, m.Description
	if shortText == "" {
		shortText = defaultShortDescription
	}
	if descText == "" {
		descText = defaultDescription
	}
	if short, err = execute("short_description", shortText, data); err != nil {
		return "", "", err
	}
	if description, err = execute("description", descText, data); err != nil {
		return "", "", err
	}
	short = strings.Join(strings.Fields(short), " ")
	if utf8.RuneCountInString(short) > maxShortDescription {
		short = string([]rune(short)[:maxShortDescription-1]) + "…"
	}
	return short, description, nil
}

func execute(field, text string, data TemplateData) (string, error) {
	t, err := ParseTemplate(field, text)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", steward.Errorf(steward.CodeInvalid, "%s template: %s", field, err.Error())
	}
	return buf.String(), nil
}

// SampleData is a realistic record set for checking templates when an
// integration is saved.
func SampleData() TemplateData {
	now := time.Now().UTC()
	return TemplateData{
		Recommendation: steward.Recommendation{Key: "sample", DisplayName: "Storage account should restrict network access", Severity: steward.SeverityHigh, Description: "…", Remediation: "…", Source: "defender"},
		Resource:       steward.Resource{ID: "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa", Name: "sa", Type: "Microsoft.Storage/storageAccounts", Cloud: steward.CloudAzure},
		Assessment:     steward.Assessment{ID: 1, Status: steward.StatusUnhealthy, StatusChangedAt: now},
		Assignment:     steward.Assignment{ID: 1, Owner: "owner@example.com", DueDate: now.AddDate(0, 0, 30)},
		Link:           "http://steward.example/api/v1/assignments/1",
	}
}
