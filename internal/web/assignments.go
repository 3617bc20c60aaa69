package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// The Assignments area: the list of assignments with the filters the API
// offers, and one assignment with its ticket, its history and the forms
// that change it (reassign, ETA, due date, end, retry a failed ticket).
func (h *Handler) assignmentPages() []page {
	return []page{
		{"GET", "/assignments", reader, h.assignments},
		{"GET", "/assignments/{id}", reader, h.assignment},
		{"POST", "/assignments/{id}/owner", contributor, h.assignmentOwner},
		{"POST", "/assignments/{id}/eta", contributor, h.assignmentETA},
		{"POST", "/assignments/{id}/due", contributor, h.assignmentDue},
		{"POST", "/assignments/{id}/end", contributor, h.assignmentEnd},
		{"POST", "/assignments/{id}/retry", contributor, h.assignmentRetry},
	}
}

// assignmentFilters are the list filters GET /api/v1/assignments accepts
// (besides cursor and limit), under the API's own names so a link such as
// /assignments?overdue=true works; anything else a browser sends is dropped.
// limit (the page size) has no field but is kept across pages.
var assignmentFilters = []string{"owner", "state", "overdue", "due_within_days", "ticket_state", "ticket_status", "recommendation", "scope", "limit"}

// ticketLive is how often (ms) a ticket still being created refreshes.
const ticketLive = "1500"

type option struct{ Value, Label string }

var (
	assignmentStateOptions = []option{{"", "Active"}, {"completed", "Completed"}, {"removed", "Removed"}, {"all", "All"}}
	dueWithinOptions       = []option{{"", "Any time"}, {"7", "Within 7 days"}, {"14", "Within 14 days"}, {"30", "Within 30 days"}}
	ticketStateOptions     = []option{{"", "Any"}, {"New", "New"}, {"InProgress", "In progress"}, {"OnHold", "On hold"},
		{"Resolved", "Resolved"}, {"Closed", "Closed"}, {"Canceled", "Canceled"}}
	ticketStatusOptions = []option{{"", "Any"}, {"pending", "Pending"}, {"deferred", "Deferred"}, {"created", "Created"},
		{"retrying", "Retrying"}, {"failed", "Failed"}}
)

type assignmentsView struct {
	Filters map[string]string
	Rows    []assignmentRow
	// Next is the next page's URL (filters kept); First the first page's
	// when this is a later page.
	Next, First    string
	Error          fieldError
	States         []option
	DueWithin      []option
	TicketStates   []option
	TicketStatuses []option
}

// assignmentRow is an assignment as a list row shows it.
type assignmentRow struct {
	steward.Assignment
	Overdue  bool
	RuleName string
}

func (h *Handler) assignments(w http.ResponseWriter, r *http.Request) error {
	in := r.URL.Query()
	keep := url.Values{}
	v := assignmentsView{Filters: map[string]string{}, States: assignmentStateOptions, DueWithin: dueWithinOptions,
		TicketStates: ticketStateOptions, TicketStatuses: ticketStatusOptions}
	for _, k := range assignmentFilters {
		if s := strings.TrimSpace(in.Get(k)); s != "" {
			keep.Set(k, s)
			v.Filters[k] = s
		}
	}
	q := url.Values{}
	for k, vs := range keep {
		q[k] = slices.Clone(vs)
	}
	if cur := in.Get("cursor"); cur != "" {
		q.Set("cursor", cur)
		v.First = "/assignments" + queryString(keep)
	}
	c := h.apiFor(w, r)
	page, err := c.ListAssignments(r.Context(), q)
	if err != nil {
		if status, _ := statusOf(err); status != http.StatusBadRequest {
			return err
		}
		// A filter the API refused: say so above the form, keep the values.
		v.Error = formError(err)
		return h.render(w, r, http.StatusBadRequest, "assignments.html", "Assignments", v)
	}
	if page.NextCursor != "" {
		next := url.Values{}
		for k, vs := range keep {
			next[k] = slices.Clone(vs)
		}
		next.Set("cursor", page.NextCursor)
		v.Next = "/assignments" + queryString(next)
	}
	now := h.now()
	names := h.ruleNames(r.Context(), c, page.Items)
	for _, a := range page.Items {
		v.Rows = append(v.Rows, assignmentRow{Assignment: a, Overdue: a.Overdue(now), RuleName: names[a.RuleID]})
	}
	return h.render(w, r, http.StatusOK, "assignments.html", "Assignments", v)
}

// ruleNames names the governance rules that made items. The rule list is
// a convenience: when it cannot be read the rows show the rule's number.
func (h *Handler) ruleNames(ctx context.Context, c *apiclient.Client, items []steward.Assignment) map[int64]string {
	out := map[int64]string{}
	if !slices.ContainsFunc(items, func(a steward.Assignment) bool { return a.RuleID != 0 }) {
		return out
	}
	rules, err := c.ListRules(ctx)
	if err != nil {
		h.logger.WarnContext(ctx, "assignments page: list rules", "err", err)
		return out
	}
	for _, rl := range rules.Items {
		out[rl.ID] = rl.Name
	}
	return out
}

func queryString(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// assignmentView is one assignment's page. Form names the form whose
// submission failed and Errors its messages by field ("" for the form as
// a whole); Values are what the user entered, shown again.
type assignmentView struct {
	steward.AssignmentDetail
	Overdue  bool
	RuleName string
	Entries  []historyRow
	Live     string
	Form     string
	Errors   map[string]string
	Values   map[string]string
	Notice   string
	// Alert is a refused change whose form the page no longer shows.
	Alert string
}

// Err returns the message for field of form, if that form failed there.
func (v assignmentView) Err(form, field string) string {
	if v.Form != form {
		return ""
	}
	return v.Errors[field]
}

// Value returns what the user entered in field of form, else def.
func (v assignmentView) Value(form, field, def string) string {
	if v.Form == form {
		return v.Values[field]
	}
	return def
}

type historyRow struct {
	steward.AssignmentEvent
	Changes []changeRow
}

type changeRow struct{ Field, From, To string }

// assignmentNotices are the messages shown after a change, by ?done=.
var assignmentNotices = map[string]string{
	"owner": "The assignment was reassigned.",
	"eta":   "The ETA was saved.",
	"due":   "The due date was changed.",
	"end":   "The assignment was ended.",
	"retry": "The ticket will be created again.",
}

func (h *Handler) assignment(w http.ResponseWriter, r *http.Request) error {
	v := assignmentView{Notice: assignmentNotices[r.URL.Query().Get("done")]}
	return h.renderAssignment(w, r, http.StatusOK, v)
}

// renderAssignment loads the assignment and renders its page with v's
// form state.
func (h *Handler) renderAssignment(w http.ResponseWriter, r *http.Request, status int, v assignmentView) error {
	id, err := assignmentID(r)
	if err != nil {
		return err
	}
	c := h.apiFor(w, r)
	d, err := c.GetAssignment(r.Context(), id)
	if err != nil {
		return err
	}
	v.AssignmentDetail = *d
	v.Overdue = d.Overdue(h.now())
	if v.Form != "" && v.Form != "retry" && d.State != steward.AssignmentActive {
		// The assignment ended meanwhile: its forms are gone, so the
		// refusal is said at the top.
		v.Alert = v.Errors[""]
	}
	if d.RuleID != 0 {
		v.RuleName = h.ruleNames(r.Context(), c, []steward.Assignment{d.Assignment})[d.RuleID]
	}
	if t := d.Ticket; t != nil && (t.Status == steward.TicketPending || t.Status == steward.TicketRetrying) {
		v.Live = ticketLive
	}
	for i := len(d.History) - 1; i >= 0; i-- { // newest first
		e := d.History[i]
		v.Entries = append(v.Entries, historyRow{AssignmentEvent: e, Changes: changeRows(e.Changes)})
	}
	return h.render(w, r, status, "assignment.html", fmt.Sprintf("Assignment %d", id), v)
}

func assignmentID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, steward.Errorf(steward.CodeNotFound, "There is no assignment %q", r.PathValue("id"))
	}
	return id, nil
}

// changeLabels name the fields of history changes for people.
var changeLabels = map[string]string{
	"owner": "Owner", "due_date": "Due date", "grace_period": "Grace period", "eta": "ETA",
	"eta_justification": "ETA justification", "owner_email_opt_out": "Owner e-mails off",
	"manager_email_opt_out": "Manager e-mails off",
}

func changeRows(m map[string]steward.Change) []changeRow {
	var out []changeRow
	for field, c := range m {
		label := changeLabels[field]
		if label == "" {
			label = field
		}
		out = append(out, changeRow{Field: label, From: changeValue(c.From), To: changeValue(c.To)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// changeValue shows one side of a change: times as dates (a due date or
// ETA is the end of its UTC day), nothing as "none".
func changeValue(x any) string {
	switch v := x.(type) {
	case nil:
		return "none"
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case string:
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			t = t.UTC()
			if t.Hour() == 23 && t.Minute() == 59 {
				return t.Format("2006-01-02")
			}
			return t.Format("2006-01-02 15:04 UTC")
		}
		if v == "" {
			return "none"
		}
		return v
	}
	return fmt.Sprint(x)
}

// formValues reads a posted form's fields, trimmed.
func formValues(r *http.Request, fields ...string) (map[string]string, error) {
	if err := r.ParseForm(); err != nil {
		return nil, steward.Errorf(steward.CodeInvalid, "could not read the form")
	}
	out := map[string]string{}
	for _, f := range fields {
		out[f] = strings.TrimSpace(r.PostForm.Get(f))
	}
	return out, nil
}

// changed finishes a form post: on success back to the assignment's page
// (Post/Redirect/Get); on an error the API answers for the request (bad
// value, the assignment ended meanwhile) the page again with the message
// at its field, or above the form when the API names no field of it.
func (h *Handler) changed(w http.ResponseWriter, r *http.Request, form string, fields []string, values map[string]string, err error) error {
	if err == nil {
		id, _ := assignmentID(r)
		http.Redirect(w, r, fmt.Sprintf("/assignments/%d?done=%s", id, form), http.StatusSeeOther)
		return nil
	}
	status, _ := statusOf(err)
	if status != http.StatusBadRequest && status != http.StatusConflict && status != http.StatusUnprocessableEntity {
		return err
	}
	fe := formError(err)
	if fe.Field == "" {
		fe.Field = steward.ErrorField(err) // the UI's own checks
	}
	if !slices.Contains(fields, fe.Field) {
		fe.Field = ""
	}
	v := assignmentView{Form: form, Errors: map[string]string{fe.Field: fe.Message}, Values: values}
	return h.renderAssignment(w, r, status, v)
}

// formDate checks a date field: the browser's date input sends
// YYYY-MM-DD, which is what the API takes.
func formDate(field, label, s string) error {
	if s == "" {
		return steward.InvalidAt(field, "%s is required", label)
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return steward.InvalidAt(field, "%s %q is not a date such as 2026-12-31", label, s)
	}
	return nil
}

func (h *Handler) assignmentOwner(w http.ResponseWriter, r *http.Request) error {
	fields := []string{"owner", "reason"}
	v, err := formValues(r, fields...)
	if err != nil {
		return err
	}
	id, err := assignmentID(r)
	if err != nil {
		return err
	}
	if v["owner"] == "" {
		err = steward.InvalidAt("owner", "the new owner's e-mail address is required")
	} else {
		_, err = h.apiFor(w, r).UpdateAssignment(r.Context(), id, apiclient.AssignmentRequest{Owner: v["owner"], Reason: v["reason"]})
	}
	return h.changed(w, r, "owner", fields, v, err)
}

func (h *Handler) assignmentETA(w http.ResponseWriter, r *http.Request) error {
	fields := []string{"eta", "eta_justification"}
	v, err := formValues(r, fields...)
	if err != nil {
		return err
	}
	id, err := assignmentID(r)
	if err != nil {
		return err
	}
	if err = formDate("eta", "ETA", v["eta"]); err == nil {
		_, err = h.apiFor(w, r).UpdateAssignment(r.Context(), id, apiclient.AssignmentRequest{
			ETA: v["eta"], ETAJustification: v["eta_justification"]})
	}
	return h.changed(w, r, "eta", fields, v, err)
}

func (h *Handler) assignmentDue(w http.ResponseWriter, r *http.Request) error {
	fields := []string{"due_date", "reason"}
	v, err := formValues(r, fields...)
	if err != nil {
		return err
	}
	id, err := assignmentID(r)
	if err != nil {
		return err
	}
	if err = formDate("due_date", "The due date", v["due_date"]); err == nil {
		_, err = h.apiFor(w, r).UpdateAssignment(r.Context(), id, apiclient.AssignmentRequest{DueDate: v["due_date"], Reason: v["reason"]})
	}
	return h.changed(w, r, "due", fields, v, err)
}

func (h *Handler) assignmentEnd(w http.ResponseWriter, r *http.Request) error {
	fields := []string{"reason"}
	v, err := formValues(r, fields...)
	if err != nil {
		return err
	}
	id, err := assignmentID(r)
	if err != nil {
		return err
	}
	if v["reason"] == "" {
		err = steward.InvalidAt("reason", "say why the assignment ends; the reason stays in its history")
	} else {
		_, err = h.apiFor(w, r).DeleteAssignment(r.Context(), id, v["reason"])
	}
	return h.changed(w, r, "end", fields, v, err)
}

func (h *Handler) assignmentRetry(w http.ResponseWriter, r *http.Request) error {
	id, err := assignmentID(r)
	if err != nil {
		return err
	}
	_, err = h.apiFor(w, r).RetryTicket(r.Context(), id)
	return h.changed(w, r, "retry", nil, nil, err)
}
