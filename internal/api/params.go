package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/stewardhq/steward"
)

// query reads and validates list parameters, collecting the first error so
// handlers stay linear.
type query struct {
	v   url.Values
	err error
}

func newQuery(r *http.Request, allowed ...string) *query {
	q := &query{v: r.URL.Query()}
	known := map[string]bool{"cursor": true, "limit": true}
	for _, k := range allowed {
		known[k] = true
	}
	for k := range q.v {
		if !known[k] {
			q.fail(invalid("unknown query parameter %q (allowed: %s)", k, strings.Join(append(allowed, "cursor", "limit"), ", ")))
			break
		}
	}
	return q
}

func (q *query) fail(err error) {
	if q.err == nil {
		q.err = err
	}
}

func (q *query) str(name string) string { return strings.TrimSpace(q.v.Get(name)) }

func (q *query) limit() int {
	s := q.str("limit")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		q.fail(invalid("limit %q must be a positive integer", s))
		return 0
	}
	return n
}

func (q *query) intParam(name string) int {
	s := q.str(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		q.fail(invalid("%s %q must be a non-negative integer", name, s))
		return 0
	}
	return n
}

func (q *query) boolParam(name string) bool {
	s := q.str(name)
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		q.fail(invalid("%s %q must be true or false", name, s))
	}
	return b
}

func (q *query) scope() steward.Scope {
	s := steward.Scope(q.str("scope"))
	if err := s.Validate(); err != nil {
		q.fail(err)
	}
	return s
}

func (q *query) cloud() steward.Cloud {
	s := q.str("cloud")
	if s == "" {
		return ""
	}
	c, err := steward.ParseCloud(s)
	if err != nil {
		q.fail(err)
	}
	return c
}

func (q *query) severities() []steward.Severity {
	var out []steward.Severity
	for _, s := range splitList(q.v["severity"]) {
		sev, err := steward.ParseSeverity(s)
		if err != nil {
			q.fail(err)
			continue
		}
		out = append(out, sev)
	}
	return out
}

func (q *query) statuses() []steward.AssessmentStatus {
	var out []steward.AssessmentStatus
	for _, s := range splitList(q.v["status"]) {
		st, err := steward.ParseStatus(s)
		if err != nil {
			q.fail(err)
			continue
		}
		out = append(out, st)
	}
	return out
}

// splitList accepts both repeated parameters and comma lists.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func pathID(r *http.Request, name string) (int64, error) {
	s := r.PathValue(name)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, invalid("%s %q must be a positive integer", name, s)
	}
	return id, nil
}

// idList reads a comma list of positive IDs from param, at most max of them.
func (q *query) idList(param string, max int) []int64 {
	var out []int64
	for _, s := range splitList(q.v[param]) {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 1 {
			q.fail(invalid("%s %q is not an ID", param, s))
			return nil
		}
		out = append(out, id)
	}
	if len(out) > max {
		q.fail(invalid("%s names %d IDs; at most %d at once", param, len(out), max))
		return nil
	}
	return out
}

// latestRunsLimit reads the limit of a "latest runs" listing (a rule's, a
// source's): default 50, at most 200; no other parameter is accepted.
func latestRunsLimit(r *http.Request) (int, error) {
	q := newQuery(r)
	limit := q.limit()
	if q.err != nil {
		return 0, q.err
	}
	switch {
	case limit == 0:
		limit = 50
	case limit > 200:
		limit = 200
	}
	return limit, nil
}
