package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// The Recommendations area: the list of recommendations with their counts,
// one recommendation with its affected resources and their assignments,
// and Defender's "Assign owner" form (one or many resources at once).
func (h *Handler) recommendationPages() []page {
	return []page{
		{"GET", "/recommendations", reader, h.recommendations},
		{"GET", "/recommendations/{key}", reader, h.recommendation},
		{"GET", "/recommendations/{key}/assign", contributor, h.assignForm},
		{"POST", "/recommendations/{key}/assign", contributor, h.assign},
		{"POST", "/recommendations/{key}/retry/{assignment}", contributor, h.retryTicket},
		{"GET", "/recommendations/{key}/rows/{assessment}", reader, h.recommendationRow},
	}
}

// recommendationFilters are the list filters GET /api/v1/recommendations
// accepts (besides cursor and limit); anything else a browser sends is
// dropped rather than passed on for the API to refuse.
var recommendationFilters = []string{"severity", "scope", "cloud", "source", "status"}

// liveEvery is how often (ms) a row whose ticket is being created refreshes.
const liveEvery = "1500"

type recommendationsView struct {
	Filters map[string]string
	Items   []apiclient.RecommendationSummary
	// Next is the next page's URL (filters kept); First the first page's
	// when this is a later page.
	Next, First string
	Error       fieldError
	Severities  []steward.Severity
	Clouds      []steward.Cloud
	Statuses    []steward.AssessmentStatus
}

func (h *Handler) recommendations(w http.ResponseWriter, r *http.Request) error {
	in := r.URL.Query()
	keep := url.Values{}
	v := recommendationsView{Filters: map[string]string{}, Severities: steward.Severities,
		Clouds:   []steward.Cloud{steward.CloudAzure, steward.CloudAWS, steward.CloudGCP, steward.CloudOther},
		Statuses: []steward.AssessmentStatus{steward.StatusUnhealthy, steward.StatusHealthy, steward.StatusNotApplicable}}
	for _, k := range recommendationFilters {
		if s := strings.TrimSpace(in.Get(k)); s != "" {
			keep.Set(k, s)
			v.Filters[k] = s
		}
	}
	q := cloneValues(keep)
	if cur := in.Get("cursor"); cur != "" {
		q.Set("cursor", cur)
		v.First = "/recommendations" + encodeQuery(keep)
	}
	page, err := h.apiFor(w, r).ListRecommendations(r.Context(), q)
	if err != nil {
		if status, _ := statusOf(err); status != http.StatusBadRequest {
			return err
		}
		v.Error = fieldAt(formError(err), append([]string{"cursor"}, recommendationFilters...))
		return h.render(w, r, http.StatusBadRequest, "recommendations.html", "Recommendations", v)
	}
	v.Items = page.Items
	if page.NextCursor != "" {
		next := cloneValues(keep)
		next.Set("cursor", page.NextCursor)
		v.Next = "/recommendations" + encodeQuery(next)
	}
	return h.render(w, r, http.StatusOK, "recommendations.html", "Recommendations", v)
}

// resourceRow is one affected resource on the recommendation page.
type resourceRow struct {
	steward.Assessment
	// Assignment is the active assignment (unhealthy rows), Last the most
	// recently ended one when there is no active one.
	Assignment *steward.Assignment
	Last       *steward.Assignment
	// Highlight marks an assignment just made (?assigned=).
	Highlight bool
	// Live: the row's ticket is being created; the row refreshes itself
	// from Src.
	Live string
	Src  string
	// URL is the recommendation's page; Can says the user may assign;
	// SelectColumn that the table has the bulk-select column.
	URL          string
	Can          bool
	SelectColumn bool
}

// resourceSection is one status's resources, a page at a time.
type resourceSection struct {
	ID, Title string
	Count     int
	Rows      []resourceRow
	Next      string
	First     string
}

type recommendationView struct {
	Rec       apiclient.RecommendationSummary
	URL       string
	Unhealthy resourceSection
	Healthy   resourceSection
	NA        resourceSection
	// Assigned counts the highlighted new assignments; Assignable the
	// unhealthy rows on this page without an active assignment.
	Assigned   int
	Assignable int
	// Retried: a failed ticket was just queued again (?retried=).
	Retried bool
	// NoneSelected: Assign owner to selected was pressed with nothing
	// ticked (?none=1).
	NoneSelected bool
	// RowOnly, when set, draws just this unhealthy row (recommendationRow).
	RowOnly *resourceRow
}

// sectionCursors name each section's cursor parameter.
var sectionCursors = []string{"unhealthy_cursor", "healthy_cursor", "na_cursor"}

func (h *Handler) recommendation(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("key")
	c := h.apiFor(w, r)
	ctx := r.Context()
	in := r.URL.Query()
	base := "/recommendations/" + url.PathEscape(key)

	detail, err := c.GetRecommendation(ctx, key, cursorQuery(url.Values{"status": {string(steward.StatusUnhealthy)}}, in.Get("unhealthy_cursor")))
	if err != nil {
		return err
	}
	highlight := map[int64]bool{}
	for _, s := range strings.Split(in.Get("assigned"), ",") {
		if id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && id > 0 {
			highlight[id] = true
		}
	}
	v := recommendationView{Rec: detail.RecommendationSummary, URL: base}
	v.NoneSelected = in.Get("none") != ""
	if id, err := strconv.ParseInt(in.Get("retried"), 10, 64); err == nil && id > 0 {
		highlight[id] = true
		v.Retried = true
	}
	v.Unhealthy = resourceSection{ID: "unhealthy", Title: "Unhealthy resources", Count: detail.Unhealthy}
	rows, err := unhealthyRows(ctx, c, detail.Affected.Items, highlight)
	if err != nil {
		return err
	}
	for _, row := range rows {
		switch {
		case row.Assignment == nil:
			v.Assignable++
		case row.Highlight && !v.Retried:
			v.Assigned++
		}
		v.Unhealthy.Rows = append(v.Unhealthy.Rows, row)
	}
	can := identity(r).Role.Allows(steward.RoleContributor)
	for i := range v.Unhealthy.Rows {
		row := &v.Unhealthy.Rows[i]
		row.URL, row.Can, row.SelectColumn = base, can, can && v.Assignable > 0
		row.Src = rowSource(row)
	}
	v.Unhealthy.Next, v.Unhealthy.First = sectionLinks(base, in, "unhealthy_cursor", detail.Affected.NextCursor)

	for _, s := range []struct {
		sec    *resourceSection
		id     string
		title  string
		status steward.AssessmentStatus
		count  int
		param  string
	}{
		{&v.Healthy, "healthy", "Healthy resources", steward.StatusHealthy, detail.Healthy, "healthy_cursor"},
		{&v.NA, "not-applicable", "Not applicable resources", steward.StatusNotApplicable, detail.NotApplicable, "na_cursor"},
	} {
		*s.sec = resourceSection{ID: s.id, Title: s.title, Count: s.count}
		if s.count == 0 && in.Get(s.param) == "" {
			continue
		}
		page, err := c.ListAssessments(ctx, cursorQuery(url.Values{"recommendation": {key}, "status": {string(s.status)}}, in.Get(s.param)))
		if err != nil {
			return err
		}
		for _, a := range page.Items {
			s.sec.Rows = append(s.sec.Rows, resourceRow{Assessment: a})
		}
		s.sec.Next, s.sec.First = sectionLinks(base, in, s.param, page.NextCursor)
	}
	return h.render(w, r, http.StatusOK, "recommendation.html", detail.DisplayName, v)
}

// unhealthyRows are unhealthy resources, each with its active assignment
// (and ticket), or with its last ended one when it has none. The
// assignments of the whole page come in two calls (active, ended), not one
// per row.
func unhealthyRows(ctx context.Context, c *apiclient.Client, assessments []steward.Assessment, highlight map[int64]bool) ([]resourceRow, error) {
	var withActive, without []string
	for _, a := range assessments {
		if a.AssignmentID != 0 {
			withActive = append(withActive, strconv.FormatInt(a.ID, 10))
		} else {
			without = append(without, strconv.FormatInt(a.ID, 10))
		}
	}
	active, err := assignmentsOf(ctx, c, withActive, "active")
	if err != nil {
		return nil, err
	}
	ended, err := assignmentsOf(ctx, c, without, "completed,removed")
	if err != nil {
		return nil, err
	}
	rows := make([]resourceRow, 0, len(assessments))
	for _, a := range assessments {
		row := resourceRow{Assessment: a}
		if a.AssignmentID == 0 {
			row.Last = latestEnded(ended[a.ID])
			row.Highlight = row.Last != nil && highlight[row.Last.ID]
			rows = append(rows, row)
			continue
		}
		for i := range active[a.ID] {
			if g := &active[a.ID][i]; g.ID == a.AssignmentID {
				row.Assignment = g
			}
		}
		if row.Assignment != nil {
			row.Highlight = highlight[row.Assignment.ID]
			if t := row.Assignment.Ticket; t != nil && (t.Status == steward.TicketPending || t.Status == steward.TicketRetrying) {
				row.Live = liveEvery
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// assignmentsOf lists the assignments in states of the given assessments,
// by assessment.
func assignmentsOf(ctx context.Context, c *apiclient.Client, assessmentIDs []string, states string) (map[int64][]steward.Assignment, error) {
	out := map[int64][]steward.Assignment{}
	if len(assessmentIDs) == 0 {
		return out, nil
	}
	q := url.Values{"assessment": {strings.Join(assessmentIDs, ",")}, "state": {states}, "limit": {"500"}}
	for range 20 { // a page of resources rarely has more than a page of past assignments
		page, err := c.ListAssignments(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, g := range page.Items {
			out[g.AssessmentID] = append(out[g.AssessmentID], g)
		}
		if page.NextCursor == "" {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	return out, nil
}

// latestEnded is the most recently ended of a resource's past assignments.
func latestEnded(past []steward.Assignment) *steward.Assignment {
	var last *steward.Assignment
	for i := range past {
		a := &past[i]
		if last == nil || a.EndedAt != nil && (last.EndedAt == nil || a.EndedAt.After(*last.EndedAt)) {
			last = a
		}
	}
	return last
}

// rowSource is the URL a live row refreshes from: that row alone, drawn
// with the same columns, so a page of many pending tickets does not fetch
// the whole page once per row.
func rowSource(row *resourceRow) string {
	q := url.Values{}
	if row.SelectColumn {
		q.Set("select", "1")
	}
	if row.Highlight {
		q.Set("highlight", "1")
	}
	return row.URL + "/rows/" + strconv.FormatInt(row.ID, 10) + encodeQuery(q)
}

// recommendationRow serves one unhealthy row, for a live row to refresh
// from (rowSource).
func (h *Handler) recommendationRow(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("key")
	id, err := strconv.ParseInt(r.PathValue("assessment"), 10, 64)
	if err != nil || id < 1 {
		return steward.Errorf(steward.CodeNotFound, "there is no assessment %q", r.PathValue("assessment"))
	}
	a, err := h.apiFor(w, r).GetAssessment(r.Context(), id)
	if err != nil {
		return err
	}
	if a.RecommendationKey != key {
		return steward.Errorf(steward.CodeNotFound, "assessment %d is not about recommendation %s", id, key)
	}
	q := r.URL.Query()
	highlight := map[int64]bool{}
	rows, err := unhealthyRows(r.Context(), h.apiFor(w, r), []steward.Assessment{*a}, highlight)
	if err != nil {
		return err
	}
	row := rows[0]
	row.Highlight = q.Get("highlight") != ""
	row.URL = "/recommendations/" + url.PathEscape(key)
	row.Can = identity(r).Role.Allows(steward.RoleContributor)
	row.SelectColumn = row.Can && q.Get("select") != ""
	row.Src = rowSource(&row)
	name := a.ResourceName
	if name == "" {
		name = a.ResourceID
	}
	return h.render(w, r, http.StatusOK, "recommendation.html", name, recommendationView{RowOnly: &row})
}

// sectionLinks returns a section's next-page and first-page URLs, keeping
// the other sections' cursors.
func sectionLinks(base string, in url.Values, param, nextCursor string) (next, first string) {
	keep := url.Values{}
	for _, p := range sectionCursors {
		if p != param && in.Get(p) != "" {
			keep.Set(p, in.Get(p))
		}
	}
	if nextCursor != "" {
		n := cloneValues(keep)
		n.Set(param, nextCursor)
		next = base + encodeQuery(n) + "#" + strings.TrimSuffix(param, "_cursor")
	}
	if in.Get(param) != "" {
		first = base + encodeQuery(keep) + "#" + strings.TrimSuffix(param, "_cursor")
	}
	return next, first
}

// assignFormValues are the Assign owner form's fields as entered.
type assignFormValues struct {
	Type             string
	Integration      string
	TicketType       string
	Owner            string
	Caller           string
	ShortDescription string
	Description      string
	// Timeframe is 7, 14, 30, 90 (days) or "date" (DueDate).
	Timeframe          string
	DueDate            string
	GracePeriod        bool
	OwnerEmailOptOut   bool
	ManagerEmailOptOut bool
}

// assignTarget is one selected resource, with what became of it on a
// bulk assign that partly failed.
type assignTarget struct {
	steward.Assessment
	Error string
}

type assignView struct {
	Key          string
	Name         string
	URL          string
	Targets      []assignTarget
	Form         assignFormValues
	Integrations []steward.Integration
	TicketTypes  []ticketTypeOption
	Timeframes   []string
	Error        fieldError
	// Created lists the assignments made before some rows failed.
	Created []*steward.Assignment
}

type ticketTypeOption struct {
	Value steward.TicketType
	Label string
}

var ticketTypeOptions = []ticketTypeOption{
	{steward.TicketTypeIncident, "Incident"},
	{steward.TicketTypeProblem, "Problem"},
	{steward.TicketTypeChangeRequest, "Change request"},
}

func (h *Handler) assignForm(w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.Query()["assessment"]) == 0 {
		// "Assign owner to selected" with nothing ticked: back, saying so.
		http.Redirect(w, r, "/recommendations/"+url.PathEscape(r.PathValue("key"))+"?none=1#unhealthy", http.StatusSeeOther)
		return nil
	}
	v, err := h.assignPage(w, r, r.URL.Query()["assessment"])
	if err != nil {
		return err
	}
	v.Form = assignFormValues{Type: string(steward.AssignmentManual), TicketType: string(steward.TicketTypeIncident), Timeframe: "30"}
	if len(v.Integrations) > 0 {
		v.Form.Type = string(steward.AssignmentServiceNow)
	}
	if u := identity(r).Name; steward.ValidateEmail("caller", u) == nil {
		v.Form.Caller = u
	}
	return h.render(w, r, http.StatusOK, "assign.html", "Assign owner", v)
}

// assignPage loads what the form shows: the recommendation, the selected
// assessments (each must be one of this recommendation's) and the
// integrations to choose from.
func (h *Handler) assignPage(w http.ResponseWriter, r *http.Request, ids []string) (*assignView, error) {
	key := r.PathValue("key")
	c := h.apiFor(w, r)
	ctx := r.Context()
	rec, err := c.GetRecommendation(ctx, key, url.Values{"limit": {"1"}})
	if err != nil {
		return nil, err
	}
	v := &assignView{Key: key, Name: rec.DisplayName, URL: "/recommendations/" + url.PathEscape(key),
		TicketTypes: ticketTypeOptions, Timeframes: []string{"7", "14", "30", "90"}}
	if len(ids) == 0 {
		return nil, steward.Errorf(steward.CodeInvalid, "select at least one unhealthy resource to assign (the checkboxes on the recommendation's page)")
	}
	seen := map[int64]bool{}
	for _, s := range ids {
		id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || id < 1 {
			return nil, steward.Errorf(steward.CodeInvalid, "assessment %q is not an assessment ID", s)
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		a, err := h.apiFor(w, r).GetAssessment(r.Context(), id)
		if err != nil {
			return nil, err
		}
		if a.RecommendationKey != key {
			return nil, steward.Errorf(steward.CodeNotFound, "assessment %d is not about recommendation %s", id, key)
		}
		v.Targets = append(v.Targets, assignTarget{Assessment: *a})
	}
	ins, err := c.ListIntegrations(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range ins.Items {
		if in.State == steward.IntegrationActive {
			v.Integrations = append(v.Integrations, in)
		}
	}
	return v, nil
}

// assignFields are the form's fields, for placing the API's messages.
var assignFields = []string{"type", "integration", "ticket_type", "owner", "caller", "short_description", "description", "timeframe", "due_date"}

// apiFieldNames maps the API's field names onto the form's.
var apiFieldNames = map[string]string{
	"assigned_to": "owner", "integration_id": "integration", "remediation_timeframe_days": "timeframe",
}

func (h *Handler) assign(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return steward.Errorf(steward.CodeInvalid, "the form could not be read: %v", err)
	}
	f := r.PostForm
	v, err := h.assignPage(w, r, f["assessment"])
	if err != nil {
		return err
	}
	v.Form = assignFormValues{
		Type: f.Get("type"), Integration: f.Get("integration"), TicketType: f.Get("ticket_type"),
		Owner: strings.TrimSpace(f.Get("owner")), Caller: strings.TrimSpace(f.Get("caller")),
		ShortDescription: f.Get("short_description"), Description: f.Get("description"),
		Timeframe: f.Get("timeframe"), DueDate: strings.TrimSpace(f.Get("due_date")),
		GracePeriod: f.Get("grace_period") != "", OwnerEmailOptOut: f.Get("owner_email_opt_out") != "",
		ManagerEmailOptOut: f.Get("manager_email_opt_out") != "",
	}
	req, fe := assignRequest(v.Form)
	if fe != nil {
		v.Error = *fe
		return h.render(w, r, http.StatusUnprocessableEntity, "assign.html", "Assign owner", v)
	}
	c := h.apiFor(w, r)
	var created []string
	var failed []assignTarget
	for i, t := range v.Targets {
		req.AssessmentID = t.ID
		a, err := c.CreateAssignment(r.Context(), req)
		if err == nil {
			created = append(created, strconv.FormatInt(a.ID, 10))
			v.Created = append(v.Created, a)
			continue
		}
		status, _ := statusOf(err)
		if (status >= 500 || status == http.StatusUnauthorized || status == http.StatusForbidden) && len(created) == 0 {
			return err
		}
		fe := fieldAt(formError(err), assignFields)
		if status == http.StatusBadRequest && fe.Field != "" && i == 0 {
			// A problem with what was entered, not with this resource: it
			// would fail every row the same way.
			v.Error = fe
			return h.render(w, r, http.StatusUnprocessableEntity, "assign.html", "Assign owner", v)
		}
		t.Error = fe.Message
		failed = append(failed, t)
	}
	if len(failed) == 0 {
		http.Redirect(w, r, v.URL+"?assigned="+strings.Join(created, ","), http.StatusSeeOther)
		return nil
	}
	// Some rows failed: show what was made and keep the failed rows on the
	// form, each with its reason, to try again.
	v.Targets = failed
	v.Error = fieldError{Message: fmt.Sprintf("%d of %d resources could not be assigned; their reasons are listed with them.", len(failed), len(failed)+len(created))}
	return h.render(w, r, http.StatusUnprocessableEntity, "assign.html", "Assign owner", v)
}

// assignRequest checks the form and builds the API request; the API checks
// everything again.
func assignRequest(f assignFormValues) (apiclient.AssignmentRequest, *fieldError) {
	var req apiclient.AssignmentRequest
	bad := func(field, format string, args ...any) (apiclient.AssignmentRequest, *fieldError) {
		return req, &fieldError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	switch steward.AssignmentType(f.Type) {
	case steward.AssignmentManual, steward.AssignmentServiceNow:
		req.Type = f.Type
	default:
		return bad("type", "Choose Manual or ServiceNow.")
	}
	if f.Owner == "" {
		return bad("owner", "Enter the owner's e-mail address.")
	}
	if err := steward.ValidateEmail("owner", f.Owner); err != nil {
		return bad("owner", "%q is not a plain e-mail address such as name@example.com.", f.Owner)
	}
	switch f.Timeframe {
	case "date":
		if f.DueDate == "" {
			return bad("due_date", "Enter the due date, or choose a timeframe in days.")
		}
		if _, err := time.Parse(time.DateOnly, f.DueDate); err != nil {
			return bad("due_date", "%q is not a date like 2026-12-31.", f.DueDate)
		}
		req.DueDate = f.DueDate
	case "7", "14", "30", "90":
		req.RemediationTimeframeDays, _ = strconv.Atoi(f.Timeframe)
	default:
		return bad("timeframe", "Choose a remediation timeframe.")
	}
	yes := true
	if f.GracePeriod {
		req.GracePeriod = &yes
	}
	if f.OwnerEmailOptOut {
		req.OwnerEmailOptOut = &yes
	}
	if f.ManagerEmailOptOut {
		req.ManagerEmailOptOut = &yes
	}
	if req.Type == string(steward.AssignmentManual) {
		req.Owner = f.Owner
		return req, nil
	}
	req.AssignedTo = f.Owner
	if f.Integration != "" {
		id, err := strconv.ParseInt(f.Integration, 10, 64)
		if err != nil || id < 1 {
			return bad("integration", "Choose an integration.")
		}
		req.IntegrationID = id
	}
	tt, err := steward.ParseTicketType(f.TicketType)
	if err != nil {
		return bad("ticket_type", "Choose the ticket type: incident, problem or change request.")
	}
	req.TicketType = string(tt)
	if f.Caller != "" {
		if err := steward.ValidateEmail("caller", f.Caller); err != nil {
			return bad("caller", "%q is not a plain e-mail address such as name@example.com.", f.Caller)
		}
		req.Caller = f.Caller
	}
	req.ShortDescription = strings.TrimSpace(f.ShortDescription)
	req.Description = strings.TrimSpace(f.Description)
	return req, nil
}

func (h *Handler) retryTicket(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("key")
	id, err := strconv.ParseInt(r.PathValue("assignment"), 10, 64)
	if err != nil || id < 1 {
		return steward.Errorf(steward.CodeNotFound, "there is no assignment %q", r.PathValue("assignment"))
	}
	if _, err := h.apiFor(w, r).RetryTicket(r.Context(), id); err != nil {
		return err
	}
	http.Redirect(w, r, "/recommendations/"+url.PathEscape(key)+"?retried="+strconv.FormatInt(id, 10), http.StatusSeeOther)
	return nil
}

// fieldAt places an API message at the form field it is about: the field
// the API named, else the first of fields the message names as a word
// (the API's messages start with the field, e.g. "caller ... is not a
// plain e-mail address").
func fieldAt(fe fieldError, fields []string) fieldError {
	if fe.Field != "" {
		if f, ok := apiFieldNames[fe.Field]; ok {
			fe.Field = f
		}
		if slices.Contains(fields, fe.Field) {
			return fe
		}
		fe.Field = ""
	}
	names := append([]string{}, fields...)
	for api := range apiFieldNames {
		names = append(names, api)
	}
	// Longer names first, so remediation_timeframe_days wins over a
	// shorter name inside it.
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	for _, n := range names {
		if regexp.MustCompile(`\b` + regexp.QuoteMeta(n) + `\b`).MatchString(fe.Message) {
			if f, ok := apiFieldNames[n]; ok {
				n = f
			}
			if slices.Contains(fields, n) {
				fe.Field = n
				return fe
			}
		}
	}
	return fe
}

func cursorQuery(q url.Values, cursor string) url.Values {
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return q
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func encodeQuery(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}
