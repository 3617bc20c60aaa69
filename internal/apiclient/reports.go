package apiclient

import (
	"context"
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
