package notify

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Digest is what an owner's weekly digest tells of.
type Digest struct {
	Owner string
	// Items are the owner's open assignments, by due date.
	Items []store.NotificationItem
	// Now splits the items into overdue, due this week (within 7 days)
	// and later; Location is the zone dates are written in.
	Now      time.Time
	Location *time.Location
	// PublicURL is Steward's base URL for links, without a trailing slash.
	PublicURL string
	// Period is the ISO week, e.g. 2026-W48.
	Period string
}

// Escalation is what a manager is told of their reports' overdue work.
type Escalation struct {
	Manager string
	// Items are the reports' overdue assignments (Owner set), by due date.
	Items     []store.NotificationItem
	Now       time.Time
	Location  *time.Location
	PublicURL string
	Period    string
}

// maxGroupRows caps the rows one group lists: an owner with thousands of
// open assignments gets a readable e-mail of bounded size, and a link to
// the rest in Steward.
const maxGroupRows = 200

// week is how far ahead "due this week" looks.
const week = 7 * 24 * time.Hour

//go:embed templates
var templateFS embed.FS

// The templates are parsed once; executing them is safe for concurrent
// use. html/template escapes every value for its context (text, attribute,
// URL); text/template writes values as they are, for the plain-text part.
var (
	htmlTemplates = htmltemplate.Must(htmltemplate.New("").ParseFS(templateFS, "templates/*.html"))
	textTemplates = template.Must(template.New("").Funcs(template.FuncMap{"wrap": wrap}).ParseFS(templateFS, "templates/*.txt"))
)

// view is what the digest and escalation templates are given.
type view struct {
	Subject string
	// Kind heads the message, e.g. "Weekly digest".
	Kind      string
	Recipient string
	Period    string
	// Summary is the top line; Preheader the short form some clients
	// show next to the subject.
	Summary   string
	Preheader string
	// ListURL is the recipient's list in Steward (the owner's
	// assignments); HomeURL is Steward itself.
	ListURL   string
	ListLabel string
	HomeURL   string
	Groups    []group
	// Footer says why the recipient gets this e-mail and how to stop it.
	Footer []string
}

// group is one heading and its rows.
type group struct {
	Title string
	Count int
	// Tone colours the heading: overdue, soon or later.
	Tone string
	Rows []row
	// More is how many rows the cap left out; MoreURL lists them all.
	More    int
	MoreURL string
}

// row is one assignment as a message lists it.
type row struct {
	// N numbers the row in its group, from 1.
	N                 int
	Name              string
	RecommendationURL string
	Severity          string
	SeverityColor     string
	Resource          string // the last segment of ResourceID
	ResourceID        string
	Due               string
	When              string // "3 days overdue", "due in 2 days"
	Tone              string
	TicketNumber      string
	TicketState       string
	TicketLink        string
	// NoTicket says why a row has no ticket number: "manual", "being
	// opened", "deferred by its rule's daily cap", "could not be opened".
	NoTicket string
	URL      string
}

// RenderDigest renders an owner's digest (To, Subject, Text, HTML). A
// digest without items is an error: there is nothing to send.
func RenderDigest(d Digest) (Message, error) {
	if len(d.Items) == 0 {
		return Message{}, errors.New("render the digest: no open assignments to tell of")
	}
	loc := locationOr(d.Location)
	l := links{base: d.PublicURL}
	var overdue, soon, later []store.NotificationItem
	for _, it := range sortedItems(d.Items) {
		switch {
		case it.DueDate.Before(d.Now):
			overdue = append(overdue, it)
		case it.DueDate.Before(d.Now.Add(week)):
			soon = append(soon, it)
		default:
			later = append(later, it)
		}
	}
	total := len(d.Items)
	v := view{
		Kind:      "Weekly digest",
		Recipient: d.Owner,
		Period:    d.Period,
		ListURL:   l.assignments(url.Values{"owner": {d.Owner}}),
		ListLabel: "Your assignments in Steward",
		HomeURL:   l.home(),
		Footer: []string{
			"You receive this e-mail because you own open security findings in Steward: it comes once a week while you do.",
			`To stop it for an assignment, ask whoever assigned it to turn off its owner e-mails ("Do not e-mail the owner"; for an assignment a governance rule made, on the rule).`,
		},
	}
	var parts []string
	if len(overdue) > 0 {
		parts = append(parts, fmt.Sprintf("%d overdue", len(overdue)))
	}
	if len(soon) > 0 {
		parts = append(parts, fmt.Sprintf("%d due this week", len(soon)))
	}
	if len(later) > 0 {
		parts = append(parts, fmt.Sprintf("%d later", len(later)))
	}
	v.Summary = fmt.Sprintf("You have %s: %s.", plural(total, "open security finding", "open security findings"), joinAnd(parts))
	switch {
	case len(overdue) > 0 && len(soon) > 0:
		v.Subject = fmt.Sprintf("Steward: %d overdue, %d due this week — your open security findings (%s)", len(overdue), len(soon), d.Period)
	case len(overdue) > 0:
		v.Subject = fmt.Sprintf("Steward: %d overdue — your open security findings (%s)", len(overdue), d.Period)
	case len(soon) > 0:
		v.Subject = fmt.Sprintf("Steward: %d due this week — your open security findings (%s)", len(soon), d.Period)
	default:
		v.Subject = fmt.Sprintf("Steward: %s, none due this week (%s)", plural(total, "open security finding", "open security findings"), d.Period)
	}
	v.Preheader = v.Summary
	add := func(title, tone string, items []store.NotificationItem, more url.Values) {
		if len(items) == 0 {
			return
		}
		more.Set("owner", d.Owner)
		v.Groups = append(v.Groups, newGroup(title, tone, items, d.Now, loc, l, l.assignments(more)))
	}
	add("Overdue", "overdue", overdue, url.Values{"overdue": {"true"}})
	add("Due this week", "soon", soon, url.Values{"due_within_days": {"7"}})
	add("Later", "later", later, url.Values{})
	return render(v, []string{d.Owner}, "digest")
}

// RenderEscalation renders a manager's escalation: their reports' overdue
// assignments, one group per owner, the owner with the most first.
func RenderEscalation(e Escalation) (Message, error) {
	if len(e.Items) == 0 {
		return Message{}, errors.New("render the escalation: no overdue assignments to tell of")
	}
	loc := locationOr(e.Location)
	l := links{base: e.PublicURL}
	// Owners are one person in any letter case, as the store matches them;
	// the heading shows the first spelling met.
	byOwner := map[string][]store.NotificationItem{}
	names := map[string]string{}
	for _, it := range sortedItems(e.Items) {
		k := strings.ToLower(strings.TrimSpace(it.Owner))
		if _, ok := names[k]; !ok {
			names[k] = strings.TrimSpace(it.Owner)
		}
		byOwner[k] = append(byOwner[k], it)
	}
	owners := slices.Sorted(maps.Keys(byOwner))
	slices.SortStableFunc(owners, func(a, b string) int { return len(byOwner[b]) - len(byOwner[a]) })
	total := len(e.Items)
	v := view{
		Kind:      "Overdue findings of your reports",
		Recipient: e.Manager,
		Period:    e.Period,
		Subject: fmt.Sprintf("Steward: %s among your reports (%s)",
			plural(total, "overdue finding", "overdue findings"), e.Period),
		Summary: fmt.Sprintf("%s owned by %s %s overdue.", plural(total, "security finding", "security findings"),
			plural(len(owners), "of your reports", "of your reports"), verb(total, "is", "are")),
		ListURL:   l.assignments(url.Values{"overdue": {"true"}}),
		ListLabel: "Overdue assignments in Steward",
		HomeURL:   l.home(),
		Footer: []string{
			"You receive this e-mail because Steward found you as the manager of these owners (in ServiceNow's user record or Steward's manager mapping) and they have overdue security findings.",
			`Assignments whose manager e-mails are turned off ("Do not e-mail the owner's manager", set by whoever assigned them or on the governance rule) are not listed.`,
		},
	}
	v.Preheader = v.Summary
	for _, k := range owners {
		more := l.assignments(url.Values{"owner": {names[k]}, "overdue": {"true"}})
		v.Groups = append(v.Groups, newGroup(names[k], "overdue", byOwner[k], e.Now, loc, l, more))
	}
	return render(v, []string{e.Manager}, "escalation")
}

// RenderTest renders the message `steward notify test` sends.
func RenderTest(to, publicURL string, now time.Time) Message {
	home := links{base: strings.TrimRight(publicURL, "/")}.home()
	data := struct{ To, At, HomeURL string }{to, now.UTC().Format("2006-01-02 15:04:05 UTC"), home}
	msg := Message{To: []string{to}, Subject: "Steward: test message"}
	var b bytes.Buffer
	// The test templates take three strings: executing them cannot fail
	// but on a bug, which the tests would show; the text part then says
	// the essentials on its own.
	if err := textTemplates.ExecuteTemplate(&b, "test.txt", data); err != nil {
		b.Reset()
		fmt.Fprintf(&b, "This is a test message sent by `steward notify test` at %s.\n\n%s\n", data.At, home)
	}
	msg.Text = b.String()
	b.Reset()
	if err := htmlTemplates.ExecuteTemplate(&b, "test.html", data); err == nil {
		msg.HTML = b.String()
	}
	return msg
}

// render executes the kind's text and HTML templates.
func render(v view, to []string, kind string) (Message, error) {
	var text, html bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&text, kind+".txt", v); err != nil {
		return Message{}, fmt.Errorf("render the %s's text: %w", kind, err)
	}
	if err := htmlTemplates.ExecuteTemplate(&html, kind+".html", v); err != nil {
		return Message{}, fmt.Errorf("render the %s's HTML: %w", kind, err)
	}
	return Message{To: to, Subject: v.Subject, Text: text.String(), HTML: html.String()}, nil
}

// newGroup lists items (at most maxGroupRows) under title; moreURL lists
// them all in Steward.
func newGroup(title, tone string, items []store.NotificationItem, now time.Time, loc *time.Location, l links, moreURL string) group {
	g := group{Title: title, Count: len(items), Tone: tone}
	shown := items
	if len(shown) > maxGroupRows {
		shown = shown[:maxGroupRows]
		g.More, g.MoreURL = len(items)-maxGroupRows, moreURL
	}
	for i, it := range shown {
		r := newRow(it, now, loc, l)
		r.N = i + 1
		g.Rows = append(g.Rows, r)
	}
	return g
}

func newRow(it store.NotificationItem, now time.Time, loc *time.Location, l links) row {
	name := oneLine(it.RecommendationName)
	if name == "" {
		name = oneLine(it.RecommendationKey)
	}
	id := oneLine(it.ResourceID)
	r := row{
		Name:              name,
		RecommendationURL: l.path("/recommendations/" + url.PathEscape(it.RecommendationKey)),
		Severity:          string(it.Severity),
		SeverityColor:     severityColor(it.Severity),
		Resource:          lastSegment(id),
		ResourceID:        id,
		Due:               it.DueDate.In(loc).Format("Mon 2006-01-02"),
		TicketNumber:      oneLine(it.TicketNumber),
		TicketState:       oneLine(it.TicketState),
		TicketLink:        strings.TrimSpace(it.TicketLink),
		URL:               l.path("/assignments/" + strconv.FormatInt(it.AssignmentID, 10)),
		NoTicket:          noTicket(it),
	}
	if r.Severity == "" {
		r.Severity = "Unknown"
	}
	// Days are counted between calendar dates in the reader's zone, so a
	// date due yesterday is "1 day overdue" at any hour today.
	days := dayNumber(it.DueDate, loc) - dayNumber(now, loc)
	switch {
	case it.DueDate.Before(now):
		r.Tone = "overdue"
		switch {
		case days >= 0:
			r.When = "overdue since today"
		default:
			r.When = plural(-days, "day", "days") + " overdue"
		}
	case days == 0:
		r.Tone, r.When = "soon", "due today"
	case days == 1:
		r.Tone, r.When = "soon", "due tomorrow"
	default:
		r.Tone, r.When = "later", "due in "+plural(days, "day", "days")
		if it.DueDate.Before(now.Add(week)) {
			r.Tone = "soon"
		}
	}
	return r
}

// links builds absolute links into Steward's web UI (internal/web's page
// table: /assignments, /assignments/{id}, /recommendations/{key}).
type links struct{ base string }

func (l links) path(p string) string { return l.base + p }

func (l links) home() string { return l.base + "/" }

func (l links) assignments(q url.Values) string {
	if len(q) == 0 {
		return l.path("/assignments")
	}
	return l.path("/assignments?" + q.Encode())
}

// severityColor is the label's background: white text on it reads in
// light and dark clients alike, and the label always carries the word.
func severityColor(s steward.Severity) string {
	switch s {
	case steward.SeverityCritical:
		return "#6a040f"
	case steward.SeverityHigh:
		return "#a4161a"
	case steward.SeverityMedium:
		return "#8a4b00"
	case steward.SeverityLow:
		return "#1a6b32"
	}
	return "#4f5963"
}

// sortedItems copies items in due date order (assignment ID breaking
// ties), so the same input always renders the same message.
func sortedItems(items []store.NotificationItem) []store.NotificationItem {
	out := slices.Clone(items)
	slices.SortStableFunc(out, func(a, b store.NotificationItem) int {
		if c := a.DueDate.Compare(b.DueDate); c != 0 {
			return c
		}
		return int(a.AssignmentID - b.AssignmentID)
	})
	return out
}

func locationOr(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// dayNumber numbers t's calendar date in loc (days since 1970-01-01).
func dayNumber(t time.Time, loc *time.Location) int {
	y, m, d := t.In(loc).Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// lastSegment is what names a resource best: the last segment of its ID.
func lastSegment(id string) string {
	trimmed := strings.TrimRight(id, "/")
	if i := strings.LastIndex(trimmed, "/"); i >= 0 && i < len(trimmed)-1 {
		return trimmed[i+1:]
	}
	return id
}

// oneLine folds runs of white space (a scanner's name may hold line
// breaks) into single spaces, which keeps the text layout intact.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// joinAnd writes "a", "a and b", "a, b and c".
func joinAnd(parts []string) string {
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// wrap breaks s into lines of at most width columns (words longer than
// that stay whole). The first line starts at column indent (after a
// prefix the template wrote) and every later line is indented to it: the
// plain text reads in an 80-column terminal.
func wrap(indent, width int, s string) string {
	var b strings.Builder
	col := indent
	for i, w := range strings.Fields(s) {
		n := len([]rune(w))
		switch {
		case i == 0:
		case col+1+n > width:
			b.WriteString("\n" + strings.Repeat(" ", indent))
			col = indent
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += n
	}
	return b.String()
}

// noTicket words why an item has no ticket number yet.
func noTicket(it store.NotificationItem) string {
	if it.Type != steward.AssignmentServiceNow {
		return "manual (no ticket)"
	}
	switch it.TicketStatus {
	case steward.TicketDeferred:
		return "deferred by its rule's daily cap"
	case steward.TicketFailed:
		return "could not be opened"
	}
	return "being opened"
}
