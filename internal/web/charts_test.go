package web

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

// node is an element of a rendered chart, parsed back as XML: the chart
// template writes well-formed markup, so a strict XML parse also checks
// that nothing in it (an owner's name) broke out of its element.
type node struct {
	Name     string
	Attr     map[string]string
	Text     string // the text directly inside, children's excluded
	Children []*node
}

func parseChart(t *testing.T, html string) *node {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(html))
	dec.Strict = true
	root := &node{Name: "root"}
	stack := []*node{root}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "the chart is not well-formed: %s", html)
		top := stack[len(stack)-1]
		switch tk := tok.(type) {
		case xml.StartElement:
			n := &node{Name: tk.Name.Local, Attr: map[string]string{}}
			for _, a := range tk.Attr {
				n.Attr[a.Name.Local] = a.Value
			}
			top.Children = append(top.Children, n)
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			top.Text += string(tk)
		}
	}
	require.Len(t, stack, 1, "unclosed elements")
	return root
}

// all returns the elements named name under n, in document order.
func (n *node) all(name string) []*node {
	var out []*node
	for _, c := range n.Children {
		if c.Name == name {
			out = append(out, c)
		}
		out = append(out, c.all(name)...)
	}
	return out
}

// find returns the one element named name with attribute k = v.
func (n *node) find(t *testing.T, name, k, v string) *node {
	t.Helper()
	for _, c := range n.all(name) {
		if c.Attr[k] == v {
			return c
		}
	}
	t.Fatalf("no <%s %s=%q>", name, k, v)
	return nil
}

// texts is the text of every <text> in the SVG.
func texts(n *node) []string {
	var out []string
	for _, c := range n.all("text") {
		out = append(out, strings.TrimSpace(c.Text))
	}
	return out
}

// tableRows is the data table's rows, cells joined by "|".
func tableRows(n *node) []string {
	var out []string
	for _, tb := range n.all("tbody") {
		for _, tr := range tb.all("tr") {
			var cells []string
			for _, c := range tr.Children {
				s := c.Text
				for _, a := range c.all("a") {
					s += a.Text
				}
				cells = append(cells, strings.TrimSpace(s))
			}
			out = append(out, strings.Join(cells, "|"))
		}
	}
	return out
}

func render(t *testing.T, c *chart) *node {
	t.Helper()
	html, err := c.render()
	require.NoError(t, err)
	require.NotEmpty(t, html)
	require.NotContains(t, string(html), "NaN")
	require.NotContains(t, string(html), "Inf")
	return parseChart(t, string(html))
}

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		max      float64
		target   int
		integral bool
		want     []float64
	}{
		// Nothing to show: an axis from 0 to 1 rather than a division by 0.
		{0, 5, true, []float64{0, 1}},
		{-3, 5, true, []float64{0, 1}},
		// 7/5 = 1.4 → a step of 2, the top rounded up to 8.
		{7, 5, true, []float64{0, 2, 4, 6, 8}},
		// 100/5 = 20 exactly.
		{100, 5, true, []float64{0, 20, 40, 60, 80, 100}},
		// 1234/5 = 246.8 → 500 (the next of 100, 200, 500 above it).
		{1234, 5, true, []float64{0, 500, 1000, 1500}},
		// 3/5 = 0.6 → 1 for counts: no half findings.
		{3, 5, true, []float64{0, 1, 2, 3}},
		// Days may be fractions: 0.7/5 = 0.14 → 0.2.
		{0.7, 5, false, []float64{0, 0.2, 0.4, 0.6, 0.8}},
		// 0.3/3 = 0.1: three steps of 0.1 are 0.3, not 0.30000000000000004.
		{0.3, 3, false, []float64{0, 0.1, 0.2, 0.3}},
	} {
		require.Equal(t, tc.want, niceTicks(tc.max, tc.target, tc.integral), "max %v target %d", tc.max, tc.target)
	}
	require.Equal(t, "0.2", tickLabel(0.2, 0.2))
	require.Equal(t, "1500", tickLabel(1500, 500))
}

func day(s string) time.Time {
	t, err := time.Parse(steward.ReportDate, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDateTicks(t *testing.T) {
	format := func(ts []time.Time, layout string) []string {
		var out []string
		for _, d := range ts {
			out = append(out, d.Format(layout))
		}
		return out
	}
	// A week: every day fits.
	ts, layout := dateTicks(day("2026-11-23"), day("2026-11-29"), 8)
	require.Equal(t, []string{"Nov 23", "Nov 24", "Nov 25", "Nov 26", "Nov 27", "Nov 28", "Nov 29"}, format(ts, layout))
	// 90 days from Tuesday 2026-09-01: the first Monday is 09-07; weekly
	// labels would be 12, every other Monday is 6.
	ts, layout = dateTicks(day("2026-09-01"), day("2026-11-29"), 8)
	require.Equal(t, []string{"Sep 7", "Sep 21", "Oct 5", "Oct 19", "Nov 2", "Nov 16"}, format(ts, layout))
	// Two years: monthly (24) and two-monthly (12) labels are too many;
	// quarterly ones are 8, each the first of January, April, July or
	// October.
	ts, layout = dateTicks(day("2024-12-01"), day("2026-11-30"), 8)
	require.Equal(t, []string{"Jan 2025", "Apr 2025", "Jul 2025", "Oct 2025", "Jan 2026", "Apr 2026", "Jul 2026", "Oct 2026"}, format(ts, layout))
	// Five years: yearly.
	ts, layout = dateTicks(day("2021-12-01"), day("2026-11-30"), 8)
	require.Equal(t, []string{"2022", "2023", "2024", "2025", "2026"}, format(ts, layout))
}

func govDay(date string, unhealthy, assigned, overdue int) steward.GovernanceDay {
	return steward.GovernanceDay{Date: date, Unhealthy: unhealthy, Assigned: assigned, Unassigned: unhealthy - assigned,
		Overdue: overdue, OnTime: assigned - overdue}
}

var testLines = []trendSeries{
	{Name: "Unhealthy", Class: "line-unhealthy", Value: func(d steward.GovernanceDay) int { return d.Unhealthy }},
	{Name: "Overdue", Class: "line-overdue", Value: func(d steward.GovernanceDay) int { return d.Overdue }},
}

// TestTrendChartScales: the plot is x 64..704 and y 36..248 (720 × 300
// less the margins); three days put the points at 64, 384 and 704, and
// with a top value of 10 (ticks 0, 2, …, 10) a count of 5 is halfway up.
func TestTrendChartScales(t *testing.T) {
	days := []steward.GovernanceDay{govDay("2026-01-01", 10, 4, 1), govDay("2026-01-02", 5, 4, 2), govDay("2026-01-03", 0, 0, 0)}
	c := trendChart("trend", "Trend", "Findings", days, day("2026-01-01"), day("2026-01-03"), testLines,
		[]chartLink{{"/assignments?overdue=true", "Overdue assignments"}})
	n := render(t, c)

	svg := n.find(t, "svg", "role", "img")
	require.Equal(t, "trend-title", svg.Attr["aria-labelledby"])
	require.Equal(t, "Trend", n.find(t, "title", "id", "trend-title").Text)
	require.Contains(t, n.find(t, "desc", "id", "trend-desc").Text, "3 days, 2026-01-01 to 2026-01-03")

	lines := n.all("polyline")
	require.Len(t, lines, 2)
	require.Equal(t, "line-unhealthy", lines[0].Attr["class"])
	require.Equal(t, "64,36 384,142 704,248", lines[0].Attr["points"])
	// Overdue 1, 2, 0 against the same axis: 248 - 21.2, 248 - 42.4.
	require.Equal(t, "64,226.8 384,205.6 704,248", lines[1].Attr["points"])
	require.Empty(t, n.all("circle"))

	got := texts(svg)
	for _, want := range []string{"0", "2", "4", "6", "8", "10", "Jan 1", "Jan 2", "Jan 3", "Findings", "Day (UTC)", "Unhealthy", "Overdue"} {
		require.Contains(t, got, want)
	}
	require.Equal(t, []string{"2026-01-01|10|1", "2026-01-02|5|2", "2026-01-03|0|0"}, tableRows(n))
	require.Equal(t, "/assignments?overdue=true", n.find(t, "a", "href", "/assignments?overdue=true").Attr["href"])
}

// TestTrendChartEdges: no days is no chart; one day is one dot per series
// in the middle; a missing day breaks the line; all zeros draw on the
// axis with ticks 0 and 1; two years of days thin the labels to 8.
func TestTrendChartEdges(t *testing.T) {
	require.Nil(t, trendChart("trend", "Trend", "Findings", nil, day("2026-01-01"), day("2026-01-03"), testLines, nil))
	html, err := (*chart)(nil).render()
	require.NoError(t, err)
	require.Empty(t, html)

	n := render(t, trendChart("trend", "Trend", "Findings", []steward.GovernanceDay{govDay("2026-01-01", 3, 1, 1)},
		day("2026-01-01"), day("2026-01-01"), testLines, nil))
	require.Empty(t, n.all("polyline"))
	dots := n.all("circle")
	require.Len(t, dots, 2)
	require.Equal(t, "384", dots[0].Attr["cx"], "one day is in the middle of 64..704")

	// Days 1, 2 and 4 of 5: a line over days 1-2, a dot on day 4.
	days := []steward.GovernanceDay{govDay("2026-01-01", 2, 0, 0), govDay("2026-01-02", 2, 0, 0), govDay("2026-01-04", 2, 0, 0)}
	n = render(t, trendChart("trend", "Trend", "Findings", days, day("2026-01-01"), day("2026-01-05"), testLines[:1], nil))
	lines := n.all("polyline")
	require.Len(t, lines, 1)
	require.Equal(t, "64,36 224,36", lines[0].Attr["points"], "x step 640/4 = 160; 2 is the top tick")
	require.Len(t, n.all("circle"), 1)
	require.Equal(t, "544", n.all("circle")[0].Attr["cx"])
	require.Contains(t, n.find(t, "desc", "id", "trend-desc").Text, "Counts exist for 3 of the days.")

	zeros := []steward.GovernanceDay{govDay("2026-01-01", 0, 0, 0), govDay("2026-01-02", 0, 0, 0)}
	n = render(t, trendChart("trend", "Trend", "Findings", zeros, day("2026-01-01"), day("2026-01-02"), testLines, nil))
	require.Equal(t, "64,248 704,248", n.all("polyline")[0].Attr["points"])
	got := texts(n)
	require.Contains(t, got, "0")
	require.Contains(t, got, "1")

	var long []steward.GovernanceDay
	for d := day("2024-12-01"); !d.After(day("2026-11-30")); d = d.AddDate(0, 0, 1) {
		long = append(long, govDay(d.Format(steward.ReportDate), 100, 50, 5))
	}
	n = render(t, trendChart("trend", "Trend", "Findings", long, day("2024-12-01"), day("2026-11-30"), testLines, nil))
	var dateLabels []string
	for _, s := range texts(n) {
		if strings.HasSuffix(s, " 2025") || strings.HasSuffix(s, " 2026") {
			dateLabels = append(dateLabels, s)
		}
	}
	require.Len(t, dateLabels, 8)
	require.Len(t, tableRows(n), 730, "the table holds every day drawn")
	require.Len(t, strings.Fields(n.all("polyline")[0].Attr["points"]), 730)
}

// TestOwnerChart: bars scale to the top tick (4 → ticks 0..4 over the 456
// units from x 200 to 656), overdue first, and each part links to its list.
func TestOwnerChart(t *testing.T) {
	rows := []steward.GovernanceRow{
		{Key: "a@example.com", Assigned: 4, Overdue: 3, OnTime: 1},
		{Key: "b@example.com", Assigned: 2, OnTime: 2},
		{Key: "done@example.com", Completed: 5}, // nothing active: no bar
	}
	n := render(t, ownerChart("owners", rows, 3, 10))
	rects := n.all("rect")
	var bars []string
	for _, r := range rects {
		if c := r.Attr["class"]; c == "bar-overdue" || c == "bar-ontime" {
			bars = append(bars, c+" "+r.Attr["x"]+" "+r.Attr["width"])
		}
	}
	require.Equal(t, []string{"bar-overdue 200 342", "bar-ontime 542 114", "bar-ontime 200 228"}, bars)
	require.Equal(t, []string{"a@example.com|3|1|4", "b@example.com|0|2|2"}, tableRows(n))
	n.find(t, "a", "href", "/assignments?overdue=true&owner=a%40example.com")
	n.find(t, "a", "href", "/assignments?owner=b%40example.com")
	require.Contains(t, texts(n), "3 / 4")
	for _, want := range []string{"Owner", "Active assignments", "Overdue", "On time", "0", "1", "2", "3", "4"} {
		require.Contains(t, texts(n), want)
	}
	require.Contains(t, n.find(t, "desc", "id", "owners-desc").Text, "the 2 owners with the most overdue of 3, overdue first then on time; 3 overdue in all")

	require.Nil(t, ownerChart("owners", nil, 0, 10))
	require.Nil(t, ownerChart("owners", rows[2:], 1, 10), "no active assignment, no chart")
}

// TestChartEscapesNames: an owner is whatever was typed; a name of markup
// stays text everywhere it is written (label, tooltip, table, link), and a
// long one is cut with the whole name in its <title>.
func TestChartEscapesNames(t *testing.T) {
	hostile := `<script>alert("x")</script>&"quoted"'@example.com`
	long := strings.Repeat("very-long-owner-name.", 4) + "@example.com"
	rows := []steward.GovernanceRow{{Key: hostile, Assigned: 1, Overdue: 1}, {Key: long, Assigned: 1, OnTime: 1}}
	c := ownerChart("owners", rows, 2, 10)
	html, err := c.render()
	require.NoError(t, err)
	require.NotContains(t, string(html), "<script")
	require.Contains(t, string(html), "&lt;script&gt;")
	n := parseChart(t, string(html))

	// The parse turns the escapes back into the name: it is there as text.
	require.Equal(t, []string{hostile + "|1|0|1", long + "|0|1|1"}, tableRows(n))
	var labels []*node
	for _, tx := range n.all("text") {
		if tx.Attr["class"] == "category" {
			labels = append(labels, tx)
		}
	}
	require.Len(t, labels, 2)
	require.Equal(t, shorten(hostile, ownerLabelMax), labels[0].Text)
	require.Equal(t, hostile, labels[0].all("title")[0].Text)
	require.Equal(t, "very-long-owner-name.very-l…", labels[1].Text)
	require.Len(t, []rune(labels[1].Text), ownerLabelMax)
	require.Equal(t, long, labels[1].all("title")[0].Text)
	for _, a := range n.all("a") {
		require.True(t, strings.HasPrefix(a.Attr["href"], "/assignments?"), a.Attr["href"])
		require.NotContains(t, a.Attr["href"], "<")
	}
	n.find(t, "a", "href", assignmentsHref(hostile, true))
}

// TestSeverityChart: mean and p90 columns per severity over ticks 0..4
// (max 4 days; the plot is y 36..228), a severity without completions in
// the table only.
func TestSeverityChart(t *testing.T) {
	mean, p90 := 2.5, 4.0
	rows := []steward.GovernanceRow{
		{Key: "High", Assigned: 1, Completed: 3, MeanDaysToRemediate: &mean, P90DaysToRemediate: &p90},
		{Key: "Low", Assigned: 2},
	}
	n := render(t, severityChart("severities", rows))
	var bars []string
	for _, r := range n.all("rect") {
		if c := r.Attr["class"]; c == "bar-mean" || c == "bar-p90" {
			bars = append(bars, strings.Join([]string{c, r.Attr["x"], r.Attr["y"], r.Attr["height"]}, " "))
		}
	}
	// Two slots of 320 from x 64; High's centre is 224, the bars 48 wide.
	// 2.5 of 4 days is 120 of 192 units high.
	require.Equal(t, []string{"bar-mean 176 108 120", "bar-p90 224 36 192"}, bars)
	require.Equal(t, []string{"High|3|2.5|4", "Low|0|none|none"}, tableRows(n))
	got := texts(n)
	for _, want := range []string{"High", "Low", "Days", "Mean", "90th percentile", "2.5", "4"} {
		require.Contains(t, got, want)
	}
	require.Nil(t, severityChart("severities", rows[1:]), "nothing completed, nothing to draw")
}

// TestOwnerAddress: the names a sign-in can have, and the owner each is.
func TestOwnerAddress(t *testing.T) {
	for name, want := range map[string]string{
		"oidc:alice@example.com": "alice@example.com", // OpenID Connect (oidc.go)
		"alice@example.com":      "alice@example.com", // a token named after its owner
		"ci-pipeline":            "",
		"oidc:":                  "",
		"":                       "",
		"Alice <a@example.com>":  "",
	} {
		require.Equal(t, want, ownerAddress(name), "name %q", name)
	}
}
