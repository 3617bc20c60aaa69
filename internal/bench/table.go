package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Unit says how a measure is written.
type Unit string

// Units of the table's figures.
const (
	PerSecond  Unit = "/s"
	Millis     Unit = "ms"
	Seconds    Unit = "s"
	MiB        Unit = "MiB"
	Ratio      Unit = "ratio" // e.g. requests per ticket, three decimals
	Count      Unit = "count" // a whole number, e.g. requests
	noUnitText      = "—"
)

// Target is a measure's goal from the issue. The zero Target means none.
type Target struct {
	Kind  TargetKind
	Value float64
}

// TargetKind says how a figure compares with its target.
type TargetKind int

// Kinds of target.
const (
	NoTarget TargetKind = iota
	AtLeastKind
	BelowKind
	AtMostKind // compared as the table writes the figure (rounded)
)

// AtLeast is the target "≥ v".
func AtLeast(v float64) Target { return Target{Kind: AtLeastKind, Value: v} }

// Below is the target "< v".
func Below(v float64) Target { return Target{Kind: BelowKind, Value: v} }

// AtMost is the target "≤ v", met when the figure as written is at most v
// (1.0001 requests per ticket is written 1.000 and meets ≤ 1.000).
func AtMost(v float64) Target { return Target{Kind: AtMostKind, Value: v} }

// Row is one measure of the table: its samples (one per run), target and
// baseline.
type Row struct {
	Scenario string
	Measure  string
	Unit     Unit
	// Values are the run's figures; the table shows their median.
	Values []float64
	Target Target
	// Baseline is the naive baseline's samples, measured in the same runs
	// (nil when none was measured); BaselineText is a recorded figure
	// shown as is when Baseline is nil.
	Baseline     []float64
	BaselineText string
	// Err is why the measure has no figure (a run failed).
	Err string
	// Note qualifies the figure, e.g. "1 run".
	Note string
}

// Median is the row's figure.
func (r Row) Median() float64 { return Median(r.Values) }

// Verdict is "pass", "miss", or "—" when the row has no target or no figure.
func (r Row) Verdict() string {
	if r.Target.Kind == NoTarget || len(r.Values) == 0 || r.Err != "" {
		return noUnitText
	}
	m := r.Median()
	var ok bool
	switch r.Target.Kind {
	case AtLeastKind:
		ok = m >= r.Target.Value
	case BelowKind:
		ok = m < r.Target.Value
	case AtMostKind:
		written, _ := strconv.ParseFloat(strings.Fields(strings.ReplaceAll(Format(m, r.Unit), ",", ""))[0], 64)
		ok = written <= r.Target.Value
	}
	if ok {
		return "pass"
	}
	return "miss"
}

// Format writes v in unit u: thousands grouped for rates, ms with two
// decimals under 10, one under 100, none above; seconds with two.
func Format(v float64, u Unit) string {
	if math.IsNaN(v) {
		return noUnitText
	}
	switch u {
	case PerSecond:
		return group(int64(math.Round(v))) + "/s"
	case Millis:
		switch {
		case v < 10:
			return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
		case v < 100:
			return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
		}
		return group(int64(math.Round(v))) + " ms"
	case Seconds:
		return strconv.FormatFloat(v, 'f', 2, 64) + " s"
	case MiB:
		return group(int64(math.Round(v))) + " MiB"
	case Ratio:
		return strconv.FormatFloat(v, 'f', 3, 64)
	default:
		return group(int64(math.Round(v)))
	}
}

func (t Target) format(u Unit) string {
	switch t.Kind {
	case AtLeastKind:
		return "≥ " + Format(t.Value, u)
	case BelowKind:
		return "< " + Format(t.Value, u)
	case AtMostKind:
		return "≤ " + Format(t.Value, u)
	}
	return noUnitText
}

// group writes n with comma thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Render writes rows as one Markdown table: scenario, measure, the
// median with the number of runs, target, baseline and verdict.
func Render(w io.Writer, rows []Row) error {
	var b strings.Builder
	b.WriteString("| scenario | measure | median (runs) | target | baseline | result |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		figure := noUnitText
		switch {
		case r.Err != "":
			figure = "error: " + r.Err
		case len(r.Values) > 0:
			figure = fmt.Sprintf("**%s** (%d)", Format(r.Median(), r.Unit), len(r.Values))
		}
		if r.Note != "" {
			figure += ", " + r.Note
		}
		baseline := noUnitText
		switch {
		case len(r.Baseline) > 0:
			baseline = fmt.Sprintf("%s (%d)", Format(Median(r.Baseline), r.Unit), len(r.Baseline))
		case r.BaselineText != "":
			baseline = r.BaselineText
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cell(r.Scenario), cell(r.Measure), cell(figure),
			r.Target.format(r.Unit), cell(baseline), r.Verdict())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell keeps a value inside its Markdown cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
