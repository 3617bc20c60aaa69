package web

// Server-rendered charts: the governance report drawn as inline SVG. A
// builder turns report rows into a chart (every coordinate computed here,
// in Go), and chartTemplate writes it through html/template, so every name
// in it (an owner is whatever was typed into an assignment) is escaped.
// Each chart carries the table of exactly the numbers it draws, shown
// under it in a <details>: screen readers and tests read that, and the
// SVG is one role="img" with a title and a description.
//
// No script draws anything, so the charts work under the pages' strict
// Content-Security-Policy; colours come from classes in app.css, not from
// style attributes (which that policy refuses).

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// chart is one chart ready to render.
type chart struct {
	// ID prefixes the element IDs: the figure, its title, description and
	// data table (<ID>-data).
	ID          string
	Title, Desc string
	Width       int
	Height      int
	Legend      []legendItem
	Grid        []segment // horizontal or vertical grid lines
	Axes        []segment // axis lines and tick marks
	Texts       []svgText // tick, category and axis labels
	Lines       []polyline
	Dots        []dot
	Bars        []bar
	Table       dataTable
	// Links are the lists behind the chart, shown under it.
	Links []chartLink
}

type segment struct{ X1, Y1, X2, Y2 string }

type svgText struct {
	X, Y      string
	Anchor    string // start, middle or end
	Class     string
	Transform string
	Text      string
	// Full is the whole text when Text is shortened; it becomes the
	// label's <title> (its tooltip).
	Full string
}

type legendItem struct {
	Class string
	Name  string
	// X, Y place the swatch; the name follows it.
	X, Y, TextX, TextY string
	// Line draws the swatch as a line (a series) rather than a box (bars).
	Line bool
}

type polyline struct{ Class, Points string }

type dot struct{ Class, CX, CY, Title string }

type bar struct {
	Class      string
	X, Y, W, H string
	Title      string
	Href       string // "" for a bar that links nowhere
}

type chartLink struct{ Href, Text string }

// dataTable is the numbers a chart draws. The first column heads each row.
type dataTable struct {
	Caption string
	Columns []string
	Rows    []dataRow
}

type dataRow struct {
	Head  string
	Href  string
	Cells []string
}

// Chart geometry, in SVG user units (the SVG scales to its box).
const (
	chartWidth    = 720
	legendTop     = 14  // the legend's baseline
	plotTop       = 36  // below the legend
	fontWidth     = 6.6 // a 12-unit sans-serif character, on average
	maxXLabels    = 8   // date labels along a 720-unit axis
	ownerLabelMax = 28  // characters of an owner name before "…"
)

// num formats a coordinate with at most one decimal.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// niceTicks returns round tick values from 0 up to at least max: steps of
// 1, 2 or 5 times a power of ten, about target of them; with integral the
// step is at least 1 (counts). A max of 0 or less gives 0 and 1, so an
// all-zero chart still has an axis and nothing divides by zero.
func niceTicks(max float64, target int, integral bool) []float64 {
	if !(max > 0) || math.IsInf(max, 0) {
		max = 1
	}
	if target < 1 {
		target = 1
	}
	raw := max / float64(target)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if integral && step < 1 {
		step = 1
	}
	n := int(math.Ceil(max/step - 1e-9))
	ticks := make([]float64, n+1)
	for i := range ticks {
		// Rounded to the step's precision: 3 × 0.1 is 0.30000000000000004.
		ticks[i] = roundTo(float64(i)*step, step)
	}
	return ticks
}

// decimals is how many decimals a multiple of step needs.
func decimals(step float64) int {
	if step <= 0 || step >= 1 {
		return 0
	}
	return int(math.Ceil(-math.Log10(step) - 1e-9))
}

func roundTo(v, step float64) float64 {
	p := math.Pow(10, float64(decimals(step)))
	return math.Round(v*p) / p
}

// tickLabel writes a tick value with the decimals its step needs.
func tickLabel(v, step float64) string {
	return strconv.FormatFloat(v, 'f', decimals(step), 64)
}

// dateTicks picks the days between from and to (both included) that get a
// label: every day or every other day for a short period, Mondays (every
// one or every other) for a few months, the first of every 1, 2, 3, 6 or
// 12 months beyond that, so that at most max labels are written. layout is
// how to write them.
func dateTicks(from, to time.Time, max int) (ticks []time.Time, layout string) {
	span := int(to.Sub(from)/(24*time.Hour)) + 1
	for _, step := range []int{1, 2} {
		if (span+step-1)/step <= max {
			for d := from; !d.After(to); d = d.AddDate(0, 0, step) {
				ticks = append(ticks, d)
			}
			return ticks, "Jan 2"
		}
	}
	monday := from.AddDate(0, 0, (8-int(from.Weekday()))%7)
	for _, step := range []int{7, 14} {
		var ts []time.Time
		for d := monday; !d.After(to); d = d.AddDate(0, 0, step) {
			ts = append(ts, d)
		}
		if len(ts) <= max {
			return ts, "Jan 2"
		}
	}
	first := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
	if first.Before(from) {
		first = first.AddDate(0, 1, 0)
	}
	for _, months := range []int{1, 2, 3, 6, 12, 24, 60} {
		var ts []time.Time
		for d := first; !d.After(to); d = d.AddDate(0, 1, 0) {
			if (int(d.Month())-1)%months == 0 && (months <= 12 || d.Year()%(months/12) == 0) {
				ts = append(ts, d)
			}
		}
		if len(ts) <= max {
			layout = "Jan 2006"
			if months >= 12 {
				layout = "2006"
			}
			return ts, layout
		}
	}
	return nil, ""
}

// shorten cuts s to at most n characters, ending in "…" when cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// legend lays items out in a row above the plot, from x.
func legend(x float64, items ...legendItem) []legendItem {
	for i := range items {
		items[i].X, items[i].Y = num(x), num(legendTop-9)
		items[i].TextX, items[i].TextY = num(x+22), num(legendTop)
		x += 22 + float64(len([]rune(items[i].Name)))*fontWidth + 18
	}
	return items
}

// trendSeries is one line of a trend chart.
type trendSeries struct {
	Name  string
	Class string
	Value func(steward.GovernanceDay) int
}

// trendChart draws series over the days from..to (both included; UTC
// midnights) from days, one polyline per series and run of consecutive
// days (a day without counts is a gap, not a zero). It returns nil when
// days is empty: the page says there is no data instead of drawing
// empty axes.
func trendChart(id, title, yLabel string, days []steward.GovernanceDay, from, to time.Time, series []trendSeries, links []chartLink) *chart {
	if len(days) == 0 || len(series) == 0 {
		return nil
	}
	type point struct {
		i   int // days since from
		day steward.GovernanceDay
	}
	var pts []point
	for _, d := range days {
		t, err := time.Parse(steward.ReportDate, d.Date)
		if err != nil {
			continue
		}
		pts = append(pts, point{i: int(t.Sub(from) / (24 * time.Hour)), day: d})
	}
	if len(pts) == 0 {
		return nil
	}
	// A period the answer does not state (or states backwards) is the
	// days it holds.
	first, _ := time.Parse(steward.ReportDate, days[0].Date)
	last, _ := time.Parse(steward.ReportDate, days[len(days)-1].Date)
	if from.IsZero() || to.IsZero() || to.Before(from) || first.Before(from) || last.After(to) {
		from, to = first, last
		for k := range pts {
			t, _ := time.Parse(steward.ReportDate, pts[k].day.Date)
			pts[k].i = int(t.Sub(from) / (24 * time.Hour))
		}
	}
	n := int(to.Sub(from)/(24*time.Hour)) + 1

	const left, right, bottom = 64.0, 16.0, 52.0
	const height = 300.0
	c := &chart{ID: id, Title: title, Width: chartWidth, Height: int(height)}
	pw, ph := float64(chartWidth)-left-right, height-plotTop-bottom
	x := func(i int) float64 {
		if n == 1 {
			return left + pw/2
		}
		return left + float64(i)*pw/float64(n-1)
	}
	maxV := 0
	for _, p := range pts {
		for _, s := range series {
			maxV = max(maxV, s.Value(p.day))
		}
	}
	ticks := niceTicks(float64(maxV), 5, true)
	top := ticks[len(ticks)-1]
	y := func(v int) float64 { return plotTop + ph - float64(v)/top*ph }
	c.valueAxis(left, pw, ph, ticks)
	xt, layout := dateTicks(from, to, maxXLabels)
	for _, t := range xt {
		tx := x(int(t.Sub(from) / (24 * time.Hour)))
		c.Axes = append(c.Axes, segment{num(tx), num(plotTop + ph), num(tx), num(plotTop + ph + 5)})
		c.Texts = append(c.Texts, svgText{X: num(tx), Y: num(plotTop + ph + 20), Anchor: "middle", Class: "tick", Text: t.Format(layout)})
	}
	c.Texts = append(c.Texts,
		svgText{X: num(left + pw/2), Y: num(height - 8), Anchor: "middle", Class: "axis-label", Text: "Day (UTC)"},
		svgText{X: "0", Y: "0", Anchor: "middle", Class: "axis-label",
			Transform: fmt.Sprintf("translate(16 %s) rotate(-90)", num(plotTop+ph/2)), Text: yLabel})

	var items []legendItem
	for _, s := range series {
		items = append(items, legendItem{Class: s.Class, Name: s.Name, Line: true})
		var run []string
		flush := func() {
			if len(run) > 1 {
				c.Lines = append(c.Lines, polyline{Class: s.Class, Points: strings.Join(run, " ")})
			}
			run = nil
		}
		for k, p := range pts {
			if k > 0 && p.i != pts[k-1].i+1 {
				flush()
			}
			px, py := num(x(p.i)), num(y(s.Value(p.day)))
			run = append(run, px+","+py)
			// A day standing alone (one day, or between gaps) is a dot:
			// a polyline of one point draws nothing.
			alone := (k == 0 || p.i != pts[k-1].i+1) && (k == len(pts)-1 || pts[k+1].i != p.i+1)
			if alone {
				c.Dots = append(c.Dots, dot{Class: s.Class, CX: px, CY: py, Title: fmt.Sprintf("%s %s: %d", p.day.Date, s.Name, s.Value(p.day))})
			}
		}
		flush()
	}
	c.Legend = legend(left, items...)

	c.Table.Caption = title
	c.Table.Columns = []string{"Day"}
	for _, s := range series {
		c.Table.Columns = append(c.Table.Columns, s.Name)
	}
	for _, p := range pts {
		row := dataRow{Head: p.day.Date}
		for _, s := range series {
			row.Cells = append(row.Cells, strconv.Itoa(s.Value(p.day)))
		}
		c.Table.Rows = append(c.Table.Rows, row)
	}
	lastDay := pts[len(pts)-1].day
	var now []string
	for _, s := range series {
		now = append(now, fmt.Sprintf("%s %d", strings.ToLower(s.Name), s.Value(lastDay)))
	}
	c.Desc = fmt.Sprintf("Lines over %d days, %s to %s; on %s: %s.", n, from.Format(steward.ReportDate), to.Format(steward.ReportDate),
		lastDay.Date, strings.Join(now, ", "))
	if len(pts) < n {
		c.Desc += fmt.Sprintf(" Counts exist for %d of the days.", len(pts))
	}
	c.Links = links
	return c
}

// ownerChart draws the owners' active assignments as horizontal bars,
// overdue then on time, for the first max rows (the report lists the most
// overdue first). Each part links to that owner's list. It returns nil
// when no owner has an active assignment.
func ownerChart(id string, rows []steward.GovernanceRow, total, maxRows int) *chart {
	var shown []steward.GovernanceRow
	for _, r := range rows {
		if r.Assigned > 0 && len(shown) < maxRows {
			shown = append(shown, r)
		}
	}
	if len(shown) == 0 {
		return nil
	}
	// The right margin leaves room for the "overdue / active" label of
	// the longest bar.
	const left, right, bottom = 200.0, 64.0, 48.0
	const rowH, barH = 28.0, 18.0
	ph := rowH * float64(len(shown))
	height := plotTop + ph + bottom
	c := &chart{ID: id, Title: "Overdue assignments by owner", Width: chartWidth, Height: int(height)}
	pw := float64(chartWidth) - left - right
	maxV := 0
	for _, r := range shown {
		maxV = max(maxV, r.Assigned)
	}
	ticks := niceTicks(float64(maxV), 6, true)
	top := ticks[len(ticks)-1]
	step := ticks[1] - ticks[0]
	xv := func(v int) float64 { return float64(v) / top * pw }
	for _, tv := range ticks {
		tx := left + tv/top*pw
		c.Grid = append(c.Grid, segment{num(tx), num(plotTop), num(tx), num(plotTop + ph)})
		c.Texts = append(c.Texts, svgText{X: num(tx), Y: num(plotTop + ph + 18), Anchor: "middle", Class: "tick", Text: tickLabel(tv, step)})
	}
	c.frame(left, pw, ph)
	c.Texts = append(c.Texts,
		svgText{X: num(left + pw/2), Y: num(height - 8), Anchor: "middle", Class: "axis-label", Text: "Active assignments"},
		// The category axis is labelled above its names, where a rotated
		// label would run into the long ones.
		svgText{X: num(left - 8), Y: num(plotTop - 6), Anchor: "end", Class: "axis-label", Text: "Owner"})
	c.Legend = legend(left, legendItem{Class: "bar-overdue", Name: "Overdue"}, legendItem{Class: "bar-ontime", Name: "On time"})
	overdue := 0
	for i, r := range shown {
		overdue += r.Overdue
		by := plotTop + float64(i)*rowH + (rowH-barH)/2
		label := shorten(r.Key, ownerLabelMax)
		t := svgText{X: num(left - 8), Y: num(by + barH/2 + 4), Anchor: "end", Class: "category", Text: label}
		if label != r.Key {
			t.Full = r.Key
		}
		c.Texts = append(c.Texts, t)
		if r.Overdue > 0 {
			c.Bars = append(c.Bars, bar{Class: "bar-overdue", X: num(left), Y: num(by), W: num(xv(r.Overdue)), H: num(barH),
				Title: fmt.Sprintf("%s: %d overdue", r.Key, r.Overdue), Href: assignmentsHref(r.Key, true)})
		}
		if r.OnTime > 0 {
			c.Bars = append(c.Bars, bar{Class: "bar-ontime", X: num(left + xv(r.Overdue)), Y: num(by), W: num(xv(r.OnTime)), H: num(barH),
				Title: fmt.Sprintf("%s: %d on time", r.Key, r.OnTime), Href: assignmentsHref(r.Key, false)})
		}
		c.Texts = append(c.Texts, svgText{X: num(left + xv(r.Assigned) + 4), Y: num(by + barH/2 + 4), Anchor: "start", Class: "value",
			Text: strconv.Itoa(r.Overdue) + " / " + strconv.Itoa(r.Assigned)})
		c.Table.Rows = append(c.Table.Rows, dataRow{Head: r.Key, Href: assignmentsHref(r.Key, true),
			Cells: []string{strconv.Itoa(r.Overdue), strconv.Itoa(r.OnTime), strconv.Itoa(r.Assigned)}})
	}
	c.Table.Caption = c.Title
	c.Table.Columns = []string{"Owner", "Overdue", "On time", "Active"}
	who := "the one owner"
	if len(shown) > 1 {
		who = fmt.Sprintf("the %d owners with the most overdue", len(shown))
	}
	if total > len(shown) {
		who += fmt.Sprintf(" of %d", total)
	}
	c.Desc = fmt.Sprintf("Bars of the active assignments of %s, overdue first then on time; %d overdue in all. The label by each bar is overdue / active.", who, overdue)
	c.Links = []chartLink{{Href: "/assignments?overdue=true", Text: "All overdue assignments"}}
	return c
}

// assignmentsHref is the assignments list of one owner, overdue ones only
// when overdue (the list's owner filter ignores letter case).
func assignmentsHref(owner string, overdue bool) string {
	q := url.Values{"owner": {owner}}
	if overdue {
		q.Set("overdue", "true")
	}
	return "/assignments?" + q.Encode()
}

// severityChart draws the mean and 90th percentile days to remediate of
// each severity as pairs of columns. Severities without a completed
// assignment have no columns (the table says "none"); it returns nil when
// none has one.
func severityChart(id string, rows []steward.GovernanceRow) *chart {
	maxV := 0.0
	drawn := false
	for _, r := range rows {
		if r.MeanDaysToRemediate != nil && r.P90DaysToRemediate != nil {
			drawn = true
			maxV = max(maxV, *r.MeanDaysToRemediate, *r.P90DaysToRemediate)
		}
	}
	if !drawn {
		return nil
	}
	const left, right, bottom = 64.0, 16.0, 52.0
	const height = 280.0
	c := &chart{ID: id, Title: "Time to remediate by severity", Width: chartWidth, Height: int(height)}
	pw, ph := float64(chartWidth)-left-right, height-plotTop-bottom
	ticks := niceTicks(maxV, 5, false)
	top := ticks[len(ticks)-1]
	c.valueAxis(left, pw, ph, ticks)
	c.Texts = append(c.Texts,
		svgText{X: num(left + pw/2), Y: num(height - 8), Anchor: "middle", Class: "axis-label", Text: "Severity"},
		svgText{X: "0", Y: "0", Anchor: "middle", Class: "axis-label",
			Transform: fmt.Sprintf("translate(16 %s) rotate(-90)", num(plotTop+ph/2)), Text: "Days"})
	c.Legend = legend(left, legendItem{Class: "bar-mean", Name: "Mean"}, legendItem{Class: "bar-p90", Name: "90th percentile"})
	slot := pw / float64(len(rows))
	barW := min(48, slot/3)
	var said []string
	for i, r := range rows {
		cx := left + slot*(float64(i)+0.5)
		c.Texts = append(c.Texts, svgText{X: num(cx), Y: num(plotTop + ph + 20), Anchor: "middle", Class: "category", Text: r.Key})
		row := dataRow{Head: r.Key, Cells: []string{strconv.Itoa(r.Completed), "none", "none"}}
		if r.MeanDaysToRemediate != nil && r.P90DaysToRemediate != nil {
			for k, v := range []struct {
				class, name string
				days        float64
			}{{"bar-mean", "mean", *r.MeanDaysToRemediate}, {"bar-p90", "90th percentile", *r.P90DaysToRemediate}} {
				h := v.days / top * ph
				bx := cx - barW + float64(k)*barW
				c.Bars = append(c.Bars, bar{Class: v.class, X: num(bx), Y: num(plotTop + ph - h), W: num(barW - 2), H: num(h),
					Title: fmt.Sprintf("%s, %s: %s days", r.Key, v.name, daysText(v.days))})
				c.Texts = append(c.Texts, svgText{X: num(bx + barW/2 - 1), Y: num(plotTop + ph - h - 4), Anchor: "middle", Class: "value", Text: daysText(v.days)})
				row.Cells[k+1] = daysText(v.days)
			}
			said = append(said, fmt.Sprintf("%s: mean %s, 90th percentile %s days over %d completed", r.Key,
				daysText(*r.MeanDaysToRemediate), daysText(*r.P90DaysToRemediate), r.Completed))
		} else {
			said = append(said, r.Key+": none completed")
		}
		c.Table.Rows = append(c.Table.Rows, row)
	}
	c.Table.Caption = c.Title
	c.Table.Columns = []string{"Severity", "Completed", "Mean days", "90th percentile days"}
	c.Desc = "Days from assignment to completion of the assignments completed in the period. " + strings.Join(said, "; ") + "."
	c.Links = []chartLink{{Href: "/assignments?state=completed", Text: "Completed assignments"}}
	return c
}

// daysText writes days as the report gives them (two decimals at most).
func daysText(d float64) string {
	return strconv.FormatFloat(math.Round(d*100)/100, 'f', -1, 64)
}

// chartTemplate writes a chart: the SVG, then its data table and links.
// A bar that links to its list is clicked through a second SVG laid over
// the first (app.css): transparent copies of the linked bars, hidden from
// screen readers and out of the tab order, because a role="img" may hold
// nothing interactive. Keyboards and screen readers follow the same links
// in the data table.
var chartTemplate = template.Must(template.New("chart").Parse(`<figure class="chart" id="{{.ID}}">
<div class="chart-plot">
<svg role="img" aria-labelledby="{{.ID}}-title" aria-describedby="{{.ID}}-desc" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{.Width}} {{.Height}}" width="{{.Width}}" height="{{.Height}}" class="chart-svg">
<title id="{{.ID}}-title">{{.Title}}</title>
<desc id="{{.ID}}-desc">{{.Desc}}</desc>
<g class="grid">{{range .Grid}}<line x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}"/>{{end}}</g>
<g class="axis">{{range .Axes}}<line x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}"/>{{end}}</g>
<g class="labels">{{range .Texts}}<text x="{{.X}}" y="{{.Y}}" text-anchor="{{.Anchor}}" class="{{.Class}}"{{with .Transform}} transform="{{.}}"{{end}}>{{.Text}}{{with .Full}}<title>{{.}}</title>{{end}}</text>{{end}}</g>
<g class="legend">{{range .Legend}}<g class="{{.Class}}">{{if .Line}}<line x1="{{.X}}" y1="{{.Y}}" x2="{{.TextX}}" y2="{{.Y}}" transform="translate(0 5)"/>{{else}}<rect x="{{.X}}" y="{{.Y}}" width="14" height="10"/>{{end}}<text x="{{.TextX}}" y="{{.TextY}}" dx="4">{{.Name}}</text></g>{{end}}</g>
{{range .Lines}}<polyline class="{{.Class}}" points="{{.Points}}"/>{{end}}
{{range .Dots}}<circle class="{{.Class}}" cx="{{.CX}}" cy="{{.CY}}" r="3.5"><title>{{.Title}}</title></circle>{{end}}
{{range .Bars}}<rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Title}}</title></rect>{{end}}
</svg>
{{if .Linked}}<svg class="chart-hits" aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{.Width}} {{.Height}}" width="{{.Width}}" height="{{.Height}}">
{{range .Bars}}{{if .Href}}<a href="{{.Href}}" tabindex="-1"><rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Title}}</title></rect></a>{{end}}{{end}}
</svg>{{end}}
</div>
<details class="chart-data">
<summary>The numbers behind “{{.Title}}”</summary>
<div class="table-wrap">
<table id="{{.ID}}-data">
<caption class="sr-only">{{.Table.Caption}}</caption>
<thead><tr>{{range $i, $c := .Table.Columns}}<th scope="col"{{if $i}} class="num"{{end}}>{{$c}}</th>{{end}}</tr></thead>
<tbody>
{{range .Table.Rows}}<tr><th scope="row">{{if .Href}}<a href="{{.Href}}">{{.Head}}</a>{{else}}{{.Head}}{{end}}</th>{{range .Cells}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
</div>
</details>
{{with .Links}}<p class="chart-links">{{range $i, $l := .}}{{if $i}} · {{end}}<a href="{{$l.Href}}">{{$l.Text}}</a>{{end}}</p>{{end}}
</figure>`))

// Linked reports whether any bar links to a list.
func (c *chart) Linked() bool {
	for _, b := range c.Bars {
		if b.Href != "" {
			return true
		}
	}
	return false
}

// render writes the chart as HTML; a nil chart is empty.
func (c *chart) render() (template.HTML, error) {
	if c == nil {
		return "", nil
	}
	var b bytes.Buffer
	if err := chartTemplate.Execute(&b, c); err != nil {
		return "", fmt.Errorf("render chart %s: %w", c.ID, err)
	}
	// The template escaped every value it wrote.
	return template.HTML(b.String()), nil
}

// valueAxis draws a vertical value axis of ticks (the last is the top)
// with a grid line per tick, and the plot's frame.
func (c *chart) valueAxis(left, pw, ph float64, ticks []float64) {
	top, step := ticks[len(ticks)-1], ticks[1]-ticks[0]
	for _, tv := range ticks {
		ty := plotTop + ph - tv/top*ph
		c.Grid = append(c.Grid, segment{num(left), num(ty), num(left + pw), num(ty)})
		c.Texts = append(c.Texts, svgText{X: num(left - 8), Y: num(ty + 4), Anchor: "end", Class: "tick", Text: tickLabel(tv, step)})
	}
	c.frame(left, pw, ph)
}

// frame draws the plot's left and bottom axes.
func (c *chart) frame(left, pw, ph float64) {
	c.Axes = append(c.Axes,
		segment{num(left), num(plotTop), num(left), num(plotTop + ph)},
		segment{num(left), num(plotTop + ph), num(left + pw), num(plotTop + ph)})
}
