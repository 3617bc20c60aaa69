package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// Settings → Governance rules: the list, one rule with its runs, and the
// form that creates or edits one, with a preview of what it would assign.
// Everything goes through the rules API (docs/rules.md).

func (h *Handler) rulePages() []page {
	return []page{
		{"GET", "/settings/rules", reader, h.rulesList},
		{"GET", "/settings/rules/new", securityAdmin, h.ruleNew},
		{"POST", "/settings/rules", securityAdmin, h.ruleCreate},
		{"POST", "/settings/rules/preview", reader, h.rulePreview},
		{"GET", "/settings/rules/{id}", reader, h.ruleDetail},
		{"GET", "/settings/rules/{id}/edit", securityAdmin, h.ruleEdit},
		{"POST", "/settings/rules/{id}", securityAdmin, h.ruleUpdate},
		{"POST", "/settings/rules/{id}/run", securityAdmin, h.ruleRun},
		{"POST", "/settings/rules/{id}/delete", securityAdmin, h.ruleDelete},
	}
}

// rulesDocURL is where the rules are explained.
const rulesDocURL = "https://github.com/stewardhq/steward/blob/main/docs/rules.md"

// ruleRow is one rule as the list and the rule page show it.
type ruleRow struct {
	Rule       steward.Rule
	Conditions []string
	Owner      string
	Assignment string
	Timeframe  string
}

func ruleRowOf(r steward.Rule) ruleRow {
	row := ruleRow{Rule: r, Owner: ownerSummary(r.Owner), Assignment: "Manual"}
	for _, c := range r.When {
		row.Conditions = append(row.Conditions, conditionSummary(c))
	}
	if t := r.Ticket; t != nil {
		row.Assignment = fmt.Sprintf("ServiceNow %s on %s", ticketTypeLabel(t.Type), t.Integration)
		if t.GroupBy == steward.GroupByRecommendation {
			row.Assignment += ", one ticket per recommendation"
		}
		if t.DailyCap > 0 {
			row.Assignment += fmt.Sprintf(", at most %d a day", t.DailyCap)
		}
	}
	row.Timeframe = fmt.Sprintf("%d days", r.DueInDays)
	if r.DueInDays == 1 {
		row.Timeframe = "1 day"
	}
	if r.GracePeriod {
		row.Timeframe += ", grace period"
	}
	return row
}

func ticketTypeLabel(t steward.TicketType) string {
	switch t {
	case steward.TicketTypeProblem:
		return "problem"
	case steward.TicketTypeChangeRequest:
		return "change request"
	}
	return "incident"
}

// conditionSummary reads one condition set, e.g. "severity High or
// Critical, cloud azure".
func conditionSummary(c steward.ConditionSet) string {
	var parts []string
	add := func(label string, vals []string) {
		if len(vals) > 0 {
			parts = append(parts, label+" "+strings.Join(vals, " or "))
		}
	}
	sev := make([]string, len(c.Severity))
	for i, s := range c.Severity {
		sev[i] = string(s)
	}
	add("severity", sev)
	add("recommendation", c.Recommendation)
	cl := make([]string, len(c.Cloud))
	for i, s := range c.Cloud {
		cl[i] = string(s)
	}
	add("cloud", cl)
	add("source", c.Source)
	keys := make([]string, 0, len(c.Tags))
	for k := range c.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add("tag "+k, c.Tags[k])
	}
	return strings.Join(parts, ", ")
}

func ownerSummary(o steward.OwnerSource) string {
	switch {
	case o.Email != "":
		return o.Email
	case o.Fallback != "":
		return fmt.Sprintf("tag %q, else %s", o.Tag, o.Fallback)
	}
	return fmt.Sprintf("tag %q", o.Tag)
}

type rulesListView struct {
	Rules   []ruleRow
	Deleted string
	DocURL  string
}

func (h *Handler) rulesList(w http.ResponseWriter, r *http.Request) error {
	p, err := h.apiFor(w, r).ListRules(r.Context())
	if err != nil {
		return err
	}
	v := rulesListView{Deleted: r.URL.Query().Get("deleted"), DocURL: rulesDocURL}
	for _, rule := range p.Items {
		v.Rules = append(v.Rules, ruleRowOf(rule))
	}
	return h.render(w, r, http.StatusOK, "rules.html", "Governance rules", v)
}

// ruleView is the rule page: its settings, the run asked for (followed
// live until done) and its latest runs.
type ruleView struct {
	ruleRow
	Saved bool
	Run   *apiclient.RuleRun
	Runs  []apiclient.RuleRun
}

func (h *Handler) ruleDetail(w http.ResponseWriter, r *http.Request) error {
	c := h.apiFor(w, r)
	rule, err := c.GetRule(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	v := ruleView{ruleRow: ruleRowOf(*rule), Saved: r.URL.Query().Get("saved") != ""}
	if s := r.URL.Query().Get("run"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return steward.Errorf(steward.CodeNotFound, "run %q of rule %q not found", s, rule.Name)
		}
		if v.Run, err = c.GetRuleRun(r.Context(), rule.ID, id); err != nil {
			return err
		}
	}
	runs, err := c.ListRuleRuns(r.Context(), strconv.FormatInt(rule.ID, 10))
	if err != nil {
		return err
	}
	v.Runs = runs.Items
	if len(v.Runs) > 10 {
		v.Runs = v.Runs[:10]
	}
	return h.render(w, r, http.StatusOK, "rule.html", "Rule "+rule.Name, v)
}

// RunDone reports whether a run has finished, either way.
func (v ruleView) RunDone() bool {
	return v.Run != nil && (v.Run.State == "succeeded" || v.Run.State == "failed")
}

func (h *Handler) ruleRun(w http.ResponseWriter, r *http.Request) error {
	c := h.apiFor(w, r)
	rule, err := c.GetRule(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	run, err := c.RunRule(r.Context(), strconv.FormatInt(rule.ID, 10), r.PostFormValue("override") != "", false)
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/settings/rules/%d?run=%d#run-progress", rule.ID, run.ID), http.StatusSeeOther)
	return nil
}

func (h *Handler) ruleDelete(w http.ResponseWriter, r *http.Request) error {
	gone, err := h.apiFor(w, r).DeleteRule(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/settings/rules?deleted="+url.QueryEscape(gone.Name), http.StatusSeeOther)
	return nil
}

// The form.

// ruleMaxConditionSets bounds the condition sets a form may post.
const ruleMaxConditionSets = 20

// conditionForm is one condition set as the form shows it.
type conditionForm struct {
	Severity       []string
	Recommendation string // one a line
	Cloud          []string
	Source         string // one a line
	Tags           string // key=value, value… one key a line
}

func (c conditionForm) Has(list []string, v string) bool { return slices.Contains(list, v) }

// ruleForm is what the form shows: the values as entered.
type ruleForm struct {
	ID                 int64
	Name               string
	Description        string
	Priority           string
	Enabled            bool
	Scope              string
	Exclude            string // one a line
	When               []conditionForm
	OwnerKind          string // email or tag
	OwnerEmail         string
	OwnerTag           string
	OwnerFallback      string
	Type               string // manual or servicenow
	Integration        string
	TicketType         string
	GroupBy            bool
	DailyCap           string
	DueInDays          string
	GracePeriod        bool
	OwnerEmailOptOut   bool
	ManagerEmailOptOut bool
}

// rulePreviewResult is what the Preview button shows.
type rulePreviewResult struct {
	// Kind is create, change or unchanged.
	Kind    string
	Fields  []string
	Assign  int
	Tickets int
	Manual  bool
	Sample  []steward.Assessment
	// More says the sample is not every matching finding.
	More bool
}

type ruleFormView struct {
	Form         ruleForm
	Err          fieldError
	Preview      *rulePreviewResult
	Integrations []string
	Severities   []steward.Severity
	Clouds       []steward.Cloud
	TicketTypes  []steward.TicketType
	Action       string
	Cancel       string
	DocURL       string
}

// ErrAt is the error's message when it is about field (the API's name for
// it: priority, owner.email, when[0], …).
func (v ruleFormView) ErrAt(field string) string {
	if v.Err.Field == field {
		return v.Err.Message
	}
	return ""
}

// ErrAtSet is the error's message when it is about condition set i.
func (v ruleFormView) ErrAtSet(i int) string {
	return v.ErrAt(fmt.Sprintf("when[%d]", i))
}

// ruleFieldErr is an error shown at a field: its element's id and message.
type ruleFieldErr struct{ ID, Msg string }

// E is the error shown at field, in an element with id.
func (v ruleFormView) E(id, field string) ruleFieldErr {
	return ruleFieldErr{ID: id, Msg: v.ErrAt(field)}
}

// IsNew reports whether condition set i is the blank one offered to add.
func (v ruleFormView) IsNew(i int) bool { return i > 0 && i == len(v.Form.When)-1 }

// ruleInputIDs are the form's elements by the API's field names.
var ruleInputIDs = map[string]string{"name": "name", "priority": "priority", "scope": "scope",
	"exclude": "exclude", "when": "when-0-recommendation", "owner": "owner-kind-email", "owner.email": "owner-email",
	"owner.tag": "owner-tag", "owner.fallback": "owner-fallback", "due_in_days": "due-in-days",
	"ticket.integration": "integration", "ticket.type": "ticket-type", "ticket.group_by": "group-by", "ticket.daily_cap": "daily-cap"}

// ErrInput is the id of the element the error is shown at, for the
// summary above the form to link to; empty when the error is not at one.
func (v ruleFormView) ErrInput() string {
	f := v.Err.Field
	if v.Err.Message == "" || v.FormErr() != "" {
		return ""
	}
	if id, ok := ruleInputIDs[f]; ok {
		return id
	}
	if strings.HasPrefix(f, "when[") {
		return strings.NewReplacer("when[", "when-", "]", "-recommendation").Replace(f)
	}
	return ""
}

// FormErr is the error shown above the form: one about no field the form
// shows.
func (v ruleFormView) FormErr() string {
	f := v.Err.Field
	_, known := ruleInputIDs[f]
	if f == "" || !known && !strings.HasPrefix(f, "when[") {
		return v.Err.Message
	}
	if strings.HasPrefix(f, "when[") {
		i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(f, "when["), "]"))
		if err != nil || i >= len(v.Form.When) {
			return v.Err.Message
		}
	}
	return ""
}

func formOf(r *steward.Rule) ruleForm {
	f := ruleForm{ID: r.ID, Name: r.Name, Description: r.Description, Priority: strconv.Itoa(r.Priority), Enabled: r.Enabled,
		Scope: string(r.Scope), OwnerEmail: r.Owner.Email, OwnerTag: r.Owner.Tag, OwnerFallback: r.Owner.Fallback,
		DueInDays: strconv.Itoa(r.DueInDays), GracePeriod: r.GracePeriod, OwnerEmailOptOut: r.OwnerEmailOptOut,
		ManagerEmailOptOut: r.ManagerEmailOptOut, OwnerKind: "email", Type: "manual", TicketType: string(steward.TicketTypeIncident)}
	ex := make([]string, len(r.Exclude))
	for i, s := range r.Exclude {
		ex[i] = string(s)
	}
	f.Exclude = strings.Join(ex, "\n")
	for _, c := range r.When {
		cf := conditionForm{Recommendation: strings.Join(c.Recommendation, "\n"), Source: strings.Join(c.Source, "\n")}
		for _, s := range c.Severity {
			cf.Severity = append(cf.Severity, string(s))
		}
		for _, s := range c.Cloud {
			cf.Cloud = append(cf.Cloud, string(s))
		}
		keys := make([]string, 0, len(c.Tags))
		for k := range c.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var lines []string
		for _, k := range keys {
			lines = append(lines, k+"="+strings.Join(c.Tags[k], ", "))
		}
		cf.Tags = strings.Join(lines, "\n")
		f.When = append(f.When, cf)
	}
	if r.Owner.Tag != "" {
		f.OwnerKind = "tag"
	}
	if t := r.Ticket; t != nil {
		f.Type, f.Integration, f.TicketType, f.GroupBy = "servicenow", t.Integration, string(t.Type), t.GroupBy == steward.GroupByRecommendation
		if t.DailyCap > 0 {
			f.DailyCap = strconv.Itoa(t.DailyCap)
		}
	}
	return f
}

// ruleLines splits a textarea or comma-separated field into its trimmed,
// non-empty values.
func ruleLines(s string) []string {
	var out []string
	for _, v := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' }) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseRuleForm reads the posted form into what it shows and what the API
// takes. Numbers that are not numbers are refused here, at their field.
func parseRuleForm(r *http.Request) (ruleForm, apiclient.RuleInput, fieldError) {
	_ = r.ParseForm() // a malformed body leaves the form empty: the API names what is missing
	pf := r.PostForm
	get := func(k string) string { return strings.TrimSpace(pf.Get(k)) }
	f := ruleForm{Name: get("name"), Description: get("description"), Priority: get("priority"), Enabled: pf.Get("enabled") != "",
		Scope: get("scope"), Exclude: pf.Get("exclude"), OwnerKind: get("owner_kind"), OwnerEmail: get("owner_email"),
		OwnerTag: get("owner_tag"), OwnerFallback: get("owner_fallback"), Type: get("type"), Integration: get("integration"),
		TicketType: get("ticket_type"), GroupBy: pf.Get("group_by") != "", DailyCap: get("daily_cap"), DueInDays: get("due_in_days"),
		GracePeriod: pf.Get("grace_period") != "", OwnerEmailOptOut: pf.Get("owner_email_opt_out") != "",
		ManagerEmailOptOut: pf.Get("manager_email_opt_out") != ""}
	f.ID, _ = strconv.ParseInt(get("id"), 10, 64)
	if f.OwnerKind != "tag" {
		f.OwnerKind = "email"
	}
	if f.Type != "servicenow" {
		f.Type = "manual"
	}
	n, _ := strconv.Atoi(get("sets"))
	n = min(max(n, 1), ruleMaxConditionSets)
	for i := range n {
		p := fmt.Sprintf("when-%d-", i)
		f.When = append(f.When, conditionForm{Severity: pf[p+"severity"], Recommendation: pf.Get(p + "recommendation"),
			Cloud: pf[p+"cloud"], Source: pf.Get(p + "source"), Tags: pf.Get(p + "tags")})
	}

	enabled := f.Enabled
	in := apiclient.RuleInput{Name: f.Name, Description: f.Description, Enabled: &enabled, Scope: steward.Scope(f.Scope),
		GracePeriod: f.GracePeriod, OwnerEmailOptOut: f.OwnerEmailOptOut, ManagerEmailOptOut: f.ManagerEmailOptOut,
		When: []steward.ConditionSet{}}
	var fe fieldError
	number := func(field, label, s string, blank int) int {
		if s == "" && blank >= 0 {
			return blank
		}
		v, err := strconv.Atoi(s)
		if err != nil && fe.Message == "" {
			fe = fieldError{Field: field, Message: fmt.Sprintf("%s %q is not a whole number", label, s)}
		}
		return v
	}
	in.Priority = number("priority", "priority", f.Priority, -1)
	in.DueInDays = number("due_in_days", "remediation timeframe", f.DueInDays, -1)
	for _, ex := range ruleLines(f.Exclude) {
		in.Exclude = append(in.Exclude, steward.Scope(ex))
	}
	// Blank condition sets (the form always offers one more) are left out;
	// the remaining ones keep their numbers only if none before is blank,
	// so the form's sets are renumbered the way the API will name them.
	var kept []conditionForm
	for _, cf := range f.When {
		c := steward.ConditionSet{Recommendation: ruleLines(cf.Recommendation), Source: ruleLines(cf.Source)}
		for _, s := range cf.Severity {
			c.Severity = append(c.Severity, steward.Severity(s))
		}
		for _, s := range cf.Cloud {
			c.Cloud = append(c.Cloud, steward.Cloud(s))
		}
		for _, line := range strings.Split(cf.Tags, "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			k, vals, ok := strings.Cut(line, "=")
			if !ok || strings.TrimSpace(k) == "" {
				if fe.Message == "" {
					fe = fieldError{Field: fmt.Sprintf("when[%d]", len(kept)), Message: fmt.Sprintf("when[%d].tags: write each tag as key=value, value…, one key a line (got %q)", len(kept), line)}
				}
				continue
			}
			if c.Tags == nil {
				c.Tags = map[string][]string{}
			}
			c.Tags[strings.TrimSpace(k)] = append(c.Tags[strings.TrimSpace(k)], ruleLines(vals)...)
		}
		if c.Empty() && cf.Tags == "" {
			continue
		}
		kept = append(kept, cf)
		in.When = append(in.When, c)
	}
	f.When = kept
	if f.OwnerKind == "tag" {
		in.Owner = steward.OwnerSource{Tag: f.OwnerTag, Fallback: f.OwnerFallback}
	} else {
		in.Owner = steward.OwnerSource{Email: f.OwnerEmail}
	}
	if f.Type == "servicenow" {
		t := &steward.RuleTicket{Integration: f.Integration, Type: steward.TicketType(f.TicketType)}
		if f.GroupBy {
			t.GroupBy = steward.GroupByRecommendation
		}
		t.DailyCap = number("ticket.daily_cap", "daily cap", f.DailyCap, 0)
		in.Ticket = t
	}
	return f, in, fe
}

func (h *Handler) ruleNew(w http.ResponseWriter, r *http.Request) error {
	f := ruleForm{Enabled: true, Scope: "/", OwnerKind: "email", Type: "manual", DueInDays: "30",
		TicketType: string(steward.TicketTypeIncident)}
	return h.renderRuleForm(w, r, http.StatusOK, f, fieldError{}, nil)
}

func (h *Handler) ruleEdit(w http.ResponseWriter, r *http.Request) error {
	rule, err := h.apiFor(w, r).GetRule(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return h.renderRuleForm(w, r, http.StatusOK, formOf(rule), fieldError{}, nil)
}

func (h *Handler) renderRuleForm(w http.ResponseWriter, r *http.Request, status int, f ruleForm, fe fieldError, pv *rulePreviewResult) error {
	c := h.apiFor(w, r)
	ints, err := c.ListIntegrations(r.Context())
	if err != nil {
		return err
	}
	v := ruleFormView{Form: f, Err: fe, Preview: pv, Severities: steward.Severities, TicketTypes: steward.TicketTypes,
		Clouds: []steward.Cloud{steward.CloudAzure, steward.CloudAWS, steward.CloudGCP, steward.CloudOther},
		Action: "/settings/rules", Cancel: "/settings/rules", DocURL: rulesDocURL}
	for _, in := range ints.Items {
		v.Integrations = append(v.Integrations, in.Name)
	}
	if f.Integration != "" && !slices.Contains(v.Integrations, f.Integration) {
		v.Integrations = append(v.Integrations, f.Integration)
	}
	// One blank condition set more, so a set can be added without script.
	v.Form.When = append(slices.Clone(f.When), conditionForm{})
	title := "New rule"
	if f.ID != 0 {
		v.Action = fmt.Sprintf("/settings/rules/%d", f.ID)
		v.Cancel = v.Action
		title = "Edit rule " + f.Name
	}
	return h.render(w, r, status, "rule_form.html", title, v)
}

// ruleFormFailed re-renders the form with the API's refusal at its field; an
// error that is not about the request (a 5xx, a 403) is the error page.
func (h *Handler) ruleFormFailed(w http.ResponseWriter, r *http.Request, f ruleForm, err error) error {
	status, _ := statusOf(err)
	switch status {
	case http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity:
		return h.renderRuleForm(w, r, http.StatusUnprocessableEntity, f, formError(err), nil)
	}
	return err
}

func (h *Handler) ruleCreate(w http.ResponseWriter, r *http.Request) error {
	f, in, fe := parseRuleForm(r)
	f.ID = 0
	if fe.Message != "" {
		return h.renderRuleForm(w, r, http.StatusUnprocessableEntity, f, fe, nil)
	}
	rule, err := h.apiFor(w, r).CreateRule(r.Context(), in)
	if err != nil {
		return h.ruleFormFailed(w, r, f, err)
	}
	http.Redirect(w, r, fmt.Sprintf("/settings/rules/%d?saved=1", rule.ID), http.StatusSeeOther)
	return nil
}

func (h *Handler) ruleUpdate(w http.ResponseWriter, r *http.Request) error {
	c := h.apiFor(w, r)
	cur, err := c.GetRule(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	f, in, fe := parseRuleForm(r)
	f.ID = cur.ID
	if fe.Message != "" {
		return h.renderRuleForm(w, r, http.StatusUnprocessableEntity, f, fe, nil)
	}
	rule, err := c.PutRule(r.Context(), strconv.FormatInt(cur.ID, 10), in)
	if err != nil {
		return h.ruleFormFailed(w, r, f, err)
	}
	http.Redirect(w, r, fmt.Sprintf("/settings/rules/%d?saved=1", rule.ID), http.StatusSeeOther)
	return nil
}

// rulePreview plans the rule set with this rule added (or, editing,
// replacing its saved self) and shows what it would assign today, with a
// sample of the findings.
func (h *Handler) rulePreview(w http.ResponseWriter, r *http.Request) error {
	c := h.apiFor(w, r)
	f, in, fe := parseRuleForm(r)
	if fe.Message != "" {
		return h.renderRuleForm(w, r, http.StatusUnprocessableEntity, f, fe, nil)
	}
	// A plan does not look integrations up (saving does): check here, so a
	// preview never counts for a rule that cannot be saved.
	if in.Ticket != nil && in.Ticket.Integration != "" {
		ints, err := c.ListIntegrations(r.Context())
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(ints.Items, func(i steward.Integration) bool { return strings.EqualFold(i.Name, in.Ticket.Integration) }) {
			return h.renderRuleForm(w, r, http.StatusUnprocessableEntity, f, fieldError{Field: "ticket.integration",
				Message: fmt.Sprintf("ticket.integration %q: no integration has that name", in.Ticket.Integration)}, nil)
		}
	}
	cur, err := c.ListRules(r.Context())
	if err != nil {
		return err
	}
	set := []apiclient.RuleInput{}
	partial := true
	for _, rule := range cur.Items {
		if f.ID != 0 && rule.ID == f.ID {
			// A renamed rule replaces its old name: plan the whole set,
			// so the old one is not kept beside it.
			partial = strings.EqualFold(rule.Name, in.Name)
			continue
		}
		set = append(set, apiclient.RuleInputOf(&rule))
	}
	set = append(set, in)
	plan, err := c.PlanRules(r.Context(), map[string]any{"rules": set}, partial, false)
	if err != nil {
		return h.ruleFormFailed(w, r, f, err)
	}
	pv := &rulePreviewResult{Kind: "unchanged", Manual: in.Ticket == nil}
	for _, ch := range plan.Create {
		if strings.EqualFold(ch.Name, in.Name) {
			pv.Kind, pv.Assign, pv.Tickets = "create", ch.Assign, ch.Tickets
		}
	}
	for _, ch := range plan.Change {
		if strings.EqualFold(ch.Name, in.Name) {
			pv.Kind, pv.Assign, pv.Tickets, pv.Fields = "change", ch.Assign, ch.Tickets, ch.Fields
		}
	}
	if pv.Assign > 0 {
		pv.Sample, pv.More, err = ruleSample(r, c, in, pv.Assign)
		if err != nil {
			return err
		}
	}
	return h.renderRuleForm(w, r, http.StatusOK, f, fieldError{}, pv)
}

// ruleSampleSize is how many findings a preview lists.
const ruleSampleSize = 10

// ruleSample lists some unassigned Unhealthy findings in the rule's scope
// that its conditions on severity, recommendation and cloud match (the
// assessments list does not carry sources or tags, and a higher-priority
// rule may win some: the plan's count is the exact figure).
func ruleSample(r *http.Request, c *apiclient.Client, in apiclient.RuleInput, want int) ([]steward.Assessment, bool, error) {
	q := url.Values{"status": {string(steward.StatusUnhealthy)}, "scope": {string(in.Scope)}, "limit": {"500"}}
	var sevs []string
	for _, cs := range in.When {
		if len(cs.Severity) == 0 {
			sevs = nil
			break
		}
		for _, s := range cs.Severity {
			sevs = append(sevs, string(s))
		}
	}
	if len(sevs) > 0 {
		q.Set("severity", strings.Join(sevs, ","))
	}
	p, err := c.ListAssessments(r.Context(), q)
	if err != nil {
		return nil, false, err
	}
	var out []steward.Assessment
	for _, a := range p.Items {
		if a.AssignmentID != 0 || ruleExcluded(in.Exclude, a.ResourceID) || !ruleMatchesSome(in.When, a) {
			continue
		}
		if len(out) == ruleSampleSize {
			return out, true, nil
		}
		out = append(out, a)
	}
	return out, len(out) < want, nil
}

func ruleExcluded(ex []steward.Scope, resource string) bool {
	for _, s := range ex {
		if s.Contains(resource) {
			return true
		}
	}
	return false
}

func ruleMatchesSome(sets []steward.ConditionSet, a steward.Assessment) bool {
	for _, c := range sets {
		if (len(c.Severity) == 0 || slices.Contains(c.Severity, a.Severity)) &&
			(len(c.Cloud) == 0 || slices.Contains(c.Cloud, a.Cloud)) &&
			(len(c.Recommendation) == 0 || slices.ContainsFunc(c.Recommendation, func(k string) bool { return strings.EqualFold(k, a.RecommendationKey) })) {
			return true
		}
	}
	return false
}
