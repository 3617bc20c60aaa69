package api

import (
	"encoding/csv"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// The governance report (docs/reports.md): GET /api/v1/reports/governance
// answers steward.GovernanceReport as JSON, or one of its tables as CSV
// (format=csv or Accept: text/csv) for a spreadsheet. A scope-limited
// caller's report covers only its scope.

// defaultReportDays is the period a report covers when since is not given:
// the 90 days ending today, today included.
const defaultReportDays = 90

// The tables a CSV answer can hold (table=).
const (
	reportTableDaily      = "daily"
	reportTableOwners     = "owners"
	reportTableScopes     = "scopes"
	reportTableSeverities = "severities"
)

var reportTables = []string{reportTableDaily, reportTableOwners, reportTableScopes, reportTableSeverities}

// reportParams are the report's query parameters; anything else is refused.
var reportParams = []string{"scope", "severity", "cloud", "owner", "since", "until", "limit", "format", "table"}

// reportRequest is a parsed report query.
type reportRequest struct {
	filter steward.GovernanceFilter
	csv    bool
	table  string
}

func (a *API) governanceReport(w http.ResponseWriter, r *http.Request) error {
	now := a.now().UTC()
	req, err := parseReportQuery(r, now)
	if err != nil {
		return err
	}
	rep, err := a.db.GovernanceReport(r.Context(), req.filter, now)
	if err != nil {
		return err
	}
	// The document promises arrays, never null.
	rep.Owners = nonNil(rep.Owners)
	rep.Scopes = nonNil(rep.Scopes)
	rep.Severities = nonNil(rep.Severities)
	rep.Daily = nonNil(rep.Daily)
	if !req.csv {
		writeJSON(w, http.StatusOK, rep)
		return nil
	}
	return writeReportCSV(w, rep, req.table)
}

// parseReportQuery reads and checks the query; every refusal names its
// parameter. today is now's UTC day: since and until are days, and a
// report cannot reach into the future.
func parseReportQuery(r *http.Request, now time.Time) (*reportRequest, error) {
	v := r.URL.Query()
	for k, vals := range v {
		if !slices.Contains(reportParams, k) {
			return nil, steward.InvalidAt(k, "unknown query parameter %q (allowed: %s)", k, strings.Join(reportParams, ", "))
		}
		if len(vals) > 1 {
			return nil, steward.InvalidAt(k, "%s is given %d times; give it once", k, len(vals))
		}
	}
	get := func(name string) string { return strings.TrimSpace(v.Get(name)) }
	y, m, d := now.UTC().Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	req := &reportRequest{}
	f := &req.filter

	scope, err := reportScope(r, get("scope"))
	if err != nil {
		return nil, err
	}
	f.Scope = scope
	if s := get("severity"); s != "" {
		sev, err := steward.ParseSeverity(s)
		if err != nil {
			return nil, atField("severity", err)
		}
		f.Severity = sev
	}
	if s := get("cloud"); s != "" {
		c, err := steward.ParseCloud(s)
		if err != nil {
			return nil, atField("cloud", err)
		}
		f.Cloud = c
	}
	f.Owner = get("owner")
	if len(f.Owner) > 320 || strings.ContainsAny(f.Owner, "\x00\r\n\t") {
		return nil, steward.InvalidAt("owner", "owner must be an owner's e-mail address (at most 320 characters, no control characters)")
	}
	if f.From, f.To, err = reportPeriod(get("since"), get("until"), today); err != nil {
		return nil, err
	}
	f.Limit = steward.DefaultReportLimit
	if s := get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > steward.MaxReportLimit {
			return nil, steward.InvalidAt("limit", "limit %q must be a whole number from 1 to %d", s, steward.MaxReportLimit)
		}
		f.Limit = n
	}

	switch format := strings.ToLower(get("format")); format {
	case "":
		req.csv = acceptsCSV(r.Header.Values("Accept"))
	case "json":
	case "csv":
		req.csv = true
	default:
		return nil, steward.InvalidAt("format", "format %q is not json or csv", get("format"))
	}
	req.table = strings.ToLower(get("table"))
	switch {
	case req.table == "":
		req.table = reportTableDaily
	case !req.csv:
		return nil, steward.InvalidAt("table", "table chooses what a CSV answer holds: give it with format=csv (the JSON answer holds every table)")
	case !slices.Contains(reportTables, req.table):
		return nil, steward.InvalidAt("table", "table %q is not one of %s", get("table"), strings.Join(reportTables, ", "))
	}
	return req, nil
}

// reportScope is the scope a report covers: the requested one, which for a
// scope-limited caller must lie inside its scope (403 otherwise), or, when
// none is requested, the caller's. The answer is normalized, "" for all.
func reportScope(r *http.Request, requested string) (steward.Scope, error) {
	s := steward.Scope(requested)
	if err := s.Validate(); err != nil {
		return "", atField("scope", err)
	}
	mine := callerScope(r)
	switch {
	case s == "":
		s = mine
	case !scopeWithin(r, s):
		return "", steward.AtField("scope", steward.Errorf(steward.CodeForbidden, "scope %s is not inside this token's scope %s", requested, mine))
	}
	if s == "" || s.Normalize() == "/" {
		return "", nil
	}
	return s.Normalize(), nil
}

// reportPeriod reads since (a date, or N days back: "90d" is the 90 days
// ending today) and until (a date, today by default) into the period's
// first and last day.
func reportPeriod(since, until string, today time.Time) (from, to time.Time, err error) {
	to = today
	if until != "" {
		to, err = time.Parse(steward.ReportDate, until)
		if err != nil {
			return from, to, steward.InvalidAt("until", "until %q is not a date such as %s", until, today.Format(steward.ReportDate))
		}
		if to.After(today) {
			return from, to, steward.InvalidAt("until", "until %s is in the future; today is %s (UTC)", until, today.Format(steward.ReportDate))
		}
	}
	switch {
	case since == "":
		from = today.AddDate(0, 0, 1-defaultReportDays)
	case strings.HasSuffix(since, "d") || strings.HasSuffix(since, "D"):
		n, convErr := strconv.Atoi(since[:len(since)-1])
		if convErr != nil || n < 1 || n > steward.MaxReportDays {
			return from, to, steward.InvalidAt("since", "since %q must be a number of days from 1 to %d (such as 90d) or a date such as %s",
				since, steward.MaxReportDays, today.AddDate(0, 0, -30).Format(steward.ReportDate))
		}
		from = today.AddDate(0, 0, 1-n)
	default:
		from, err = time.Parse(steward.ReportDate, since)
		if err != nil {
			return from, to, steward.InvalidAt("since", "since %q is neither a number of days (such as 90d) nor a date such as %s",
				since, today.AddDate(0, 0, -30).Format(steward.ReportDate))
		}
	}
	if from.After(to) {
		return from, to, steward.InvalidAt("since", "since %s is after until %s", from.Format(steward.ReportDate), to.Format(steward.ReportDate))
	}
	if days := int(to.Sub(from)/(24*time.Hour)) + 1; days > steward.MaxReportDays {
		return from, to, steward.InvalidAt("since", "the period from %s to %s is %d days; a report covers at most %d",
			from.Format(steward.ReportDate), to.Format(steward.ReportDate), days, steward.MaxReportDays)
	}
	return from, to, nil
}

// acceptsCSV reports whether the Accept header prefers text/csv to JSON:
// of the two, the one with the higher quality, the first listed on a tie.
// Wildcards choose neither; JSON is the default.
func acceptsCSV(accept []string) bool {
	best, bestQ := "", 0.0
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != "text/csv" && mt != "application/json" {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(s, 64); err != nil {
					continue
				}
			}
			if q > bestQ {
				best, bestQ = mt, q
			}
		}
	}
	return best == "text/csv"
}

// writeReportCSV answers one of the report's tables as CSV for a
// spreadsheet: a header row, then a row per entry; CRLF line ends and no
// byte order mark; numbers plain, ratios and days with at most 4
// decimals, a null time to remediate an empty cell.
func writeReportCSV(w http.ResponseWriter, rep *steward.GovernanceReport, table string) error {
	var records [][]string
	switch table {
	case reportTableDaily:
		records = append(records, []string{"date", "unhealthy", "assigned", "unassigned", "on_time", "overdue", "completed", "new", "provisional"})
		for _, d := range rep.Daily {
			records = append(records, []string{csvText(d.Date), itoa(int64(d.Unhealthy)), itoa(int64(d.Assigned)), itoa(int64(d.Unassigned)),
				itoa(int64(d.OnTime)), itoa(int64(d.Overdue)), itoa(int64(d.Completed)), itoa(int64(d.New)), strconv.FormatBool(d.Provisional)})
		}
	case reportTableOwners:
		records = reportRowsCSV("owner", rep.Owners)
	case reportTableScopes:
		records = reportRowsCSV("scope", rep.Scopes)
	case reportTableSeverities:
		records = reportRowsCSV("severity", rep.Severities)
	}
	filename := fmt.Sprintf("governance-%s-%s.csv", table, rep.Filter.To.Format(steward.ReportDate))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	// The status is sent: a failed write means the client went away.
	_ = cw.WriteAll(records)
	return nil
}

func reportRowsCSV(key string, rows []steward.GovernanceRow) [][]string {
	out := [][]string{{key, "assigned", "on_time", "overdue", "completed", "overdue_ratio", "mean_days_to_remediate", "p90_days_to_remediate"}}
	for _, r := range rows {
		out = append(out, []string{csvText(r.Key), itoa(int64(r.Assigned)), itoa(int64(r.OnTime)), itoa(int64(r.Overdue)), itoa(int64(r.Completed)),
			csvDecimal(r.OverdueRatio), csvOptional(r.MeanDaysToRemediate), csvOptional(r.P90DaysToRemediate)})
	}
	return out
}

// csvText keeps a text cell from being read as a formula: owner names and
// scopes come from outside, and a spreadsheet evaluates a cell starting
// with =, +, -, @, a tab or a carriage return. The quote makes it text.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// csvDecimal writes x with at most 4 decimals and no exponent or
// thousands separator.
func csvDecimal(x float64) string {
	s := strconv.FormatFloat(x, 'f', 4, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		return "0"
	}
	return s
}

func csvOptional(x *float64) string {
	if x == nil {
		return ""
	}
	return csvDecimal(*x)
}
