package apiclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/stewardhq/steward"
)

// ReportQuery selects a governance report (GET /api/v1/reports/governance).
// Zero fields take the API's defaults (everything in the caller's scope,
// the last 90 days).
type ReportQuery struct {
	Scope    string
	Severity steward.Severity
	Cloud    steward.Cloud
	Owner    string
	// Since is the period's first day: a date (2026-09-01) or a number of
	// days back (90d); Until its last day (a date; today by default).
	Since, Until string
	Limit        int
}

func (q ReportQuery) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("scope", q.Scope)
	set("severity", string(q.Severity))
	set("cloud", string(q.Cloud))
	set("owner", q.Owner)
	set("since", q.Since)
	set("until", q.Until)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// GovernanceReport returns the governance report for q.
func (c *Client) GovernanceReport(ctx context.Context, q ReportQuery) (*steward.GovernanceReport, error) {
	var out steward.GovernanceReport
	if err := c.do(ctx, http.MethodGet, "/api/v1/reports/governance", q.values(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GovernanceReportCSV returns one table of the governance report for q as
// the API's CSV (a header row, then a row per entry): table is daily (the
// default when empty), owners, scopes or severities.
func (c *Client) GovernanceReportCSV(ctx context.Context, q ReportQuery, table string) ([]byte, error) {
	v := q.values()
	v.Set("format", "csv")
	if table != "" {
		v.Set("table", table)
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/api/v1/reports/governance", v, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/csv")
	var out bytes.Buffer
	if err := c.sendTo(req, &out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// sendTo is send for an answer that is not JSON: a success's body is
// copied to w as it is.
func (c *Client) sendTo(req *http.Request, w io.Writer) error {
	body, err := c.roundTrip(req)
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("read %s %s answer: %w", req.Method, req.URL.Path, err)
	}
	return nil
}
