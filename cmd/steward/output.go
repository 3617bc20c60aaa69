package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// render prints v as JSON with -o json, else calls table to print it for people.
func (g *globals) render(v any, table func(w *tabwriter.Writer)) error {
	switch g.output {
	case "json":
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // resource IDs hold <placeholders> and & in tags
		return enc.Encode(v)
	case "table", "":
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	}
	return fmt.Errorf("output %q is not table or json", g.output)
}

func row(w io.Writer, cols ...any) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(parts, "\t"))
}

// clip keeps table columns readable; -o json has the full text.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateOnly)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func nextHint(w io.Writer, cursor string) {
	if cursor != "" {
		fmt.Fprintf(w, "\n(more: --cursor %s)\n", cursor)
	}
}

// keyValues prints a details map (audit events) as readable key=value
// pairs in key order. A nested map becomes key.sub=value, except a change
// ({"from": a, "to": b}), which reads key=a→b. Values with spaces, quotes
// or nothing at all are quoted, so the pairs can be told apart.
func keyValues(d map[string]any) string {
	if len(d) == 0 {
		return "-"
	}
	var parts []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			key := prefix + k
			switch v := m[k].(type) {
			case map[string]any:
				if from, to, ok := change(v); ok {
					parts = append(parts, key+"="+scalar(from)+"→"+scalar(to))
				} else {
					walk(key+".", v)
				}
			default:
				parts = append(parts, key+"="+scalar(v))
			}
		}
	}
	walk("", d)
	return strings.Join(parts, " ")
}

// change recognises a {"from": a, "to": b} map.
func change(m map[string]any) (from, to any, ok bool) {
	if len(m) != 2 {
		return nil, nil, false
	}
	from, okFrom := m["from"]
	to, okTo := m["to"]
	return from, to, okFrom && okTo
}

func scalar(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		s = v
	case float64:
		// JSON numbers arrive as float64; print 1000000, not 1e+06.
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		items := make([]string, len(v))
		for i, item := range v {
			items[i] = scalar(item)
		}
		return strings.Join(items, ",")
	default:
		s = fmt.Sprint(v)
	}
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return strconv.Quote(s)
	}
	return s
}

// ticketLine says in one line where a ticket stands: once created, its
// number, state, table and assignee; before that, that it is not created
// yet and why not in a word (its status).
func ticketLine(t *steward.Ticket) string {
	if t.Number == "" {
		line := fmt.Sprintf("not created yet in %s: %s", t.Table, t.Status)
		if t.Attempts > 0 {
			line += fmt.Sprintf(" after %d attempt%s", t.Attempts, plural(t.Attempts))
		}
		return line
	}
	state := t.StateLabel
	if state == "" {
		state = string(t.State)
	}
	line := fmt.Sprintf("%s (%s) %s", t.Number, t.Table, orDash(state))
	if t.AssigneeEmail != "" {
		line += ", assigned to " + t.AssigneeEmail
	}
	return line
}

// ticketProblem is what a person should know is wrong with a ticket, in
// the ITSM's words: why its creation failed (or is being retried), or the
// last write of Steward's it refused; "" when nothing is.
func ticketProblem(t *steward.Ticket) string {
	var out []string
	if t.Error != "" && t.Status != steward.TicketCreated {
		out = append(out, t.Error)
	}
	if t.SyncError != "" {
		out = append(out, t.SyncError)
	}
	return strings.Join(out, "; ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ticketReasons prints, under a ticket table, the reason of each ticket
// with a problem on its own line: reasons are too long for a column.
func ticketReasons(w io.Writer, items []apiclient.TicketView) {
	header := false
	for _, t := range items {
		p := ticketProblem(&t.Ticket)
		if p == "" {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nReasons:")
			header = true
		}
		fmt.Fprintf(w, "  assignment %d (%s): %s\n", t.AssignmentID, t.Status, p)
	}
}
