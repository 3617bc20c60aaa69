package web

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// Settings → Integrations: the ServiceNow instances Steward opens tickets
// in. Reading needs reader; adding, changing, validating, syncing and
// deleting need security-admin, as in the API.
func (h *Handler) integrationPages() []page {
	return []page{
		{"GET", "/settings/integrations", reader, h.integrations},
		{"GET", "/settings/integrations/new", securityAdmin, h.newIntegration},
		{"POST", "/settings/integrations", securityAdmin, h.createIntegration},
		{"GET", "/settings/integrations/{id}", reader, h.integration},
		{"GET", "/settings/integrations/{id}/edit", securityAdmin, h.editIntegration},
		{"POST", "/settings/integrations/{id}", securityAdmin, h.updateIntegration},
		{"POST", "/settings/integrations/{id}/sync", securityAdmin, h.syncIntegration},
		{"POST", "/settings/integrations/{id}/validate", securityAdmin, h.validateIntegration},
		{"GET", "/settings/integrations/{id}/delete", securityAdmin, h.deleteIntegrationPage},
		{"POST", "/settings/integrations/{id}/delete", securityAdmin, h.deleteIntegration},
	}
}

// integrationSyncWaitLimit bounds how long a page keeps refreshing after "Sync now"
// when the requested reconcile has not started (e.g. the poll before it
// keeps failing and is retried); the page then says so and stops.
const integrationSyncWaitLimit = 2 * time.Minute

// integrationSyncHealth is an integration's sync status, formatted for a page.
type integrationSyncHealth struct {
	LastWebhook   string
	LastPoll      string
	LastReconcile string
	Lag           string
	LastError     string
	Running       string
	Done, Total   int
	Report        apiclient.ReconcileReport
	Unavailable   string // why the status could not be read
}

func newIntegrationSyncHealth(st *apiclient.SyncStatus, err error) integrationSyncHealth {
	if err != nil {
		_, msg := statusOf(err)
		return integrationSyncHealth{Unavailable: msg}
	}
	never := func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return integrationSyncHealth{
		LastWebhook: never(st.LastWebhookAt), LastPoll: never(st.LastPollAt), LastReconcile: never(st.LastReconcileAt),
		Lag: integrationDuration(time.Duration(st.LagSeconds * float64(time.Second))), LastError: st.LastError,
		Running: st.Running, Done: st.Progress.Done, Total: st.Progress.Total, Report: st.LastReconcile,
	}
}

// integrationDuration rounds d for people: 45s, 3m20s, 5h10m, 2d4h.
func integrationDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return strings.TrimSuffix(d.Round(time.Second).String(), "0s")
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	days := int(d / (24 * time.Hour))
	return fmt.Sprintf("%dd%dh", days, int((d-time.Duration(days)*24*time.Hour)/time.Hour))
}

// ---- list -----------------------------------------------------------------

type integrationRow struct {
	In       steward.Integration
	Sync     integrationSyncHealth
	Deleting *apiclient.DeletePreview
}

type integrationsView struct {
	Rows []integrationRow
	// Deleting is set while any integration is being deleted: the table
	// refreshes itself until they are gone.
	Deleting bool
	Notice   string
}

func (h *Handler) integrations(w http.ResponseWriter, r *http.Request) error {
	c := h.apiFor(w, r)
	list, err := c.ListIntegrations(r.Context())
	if err != nil {
		return err
	}
	v := integrationsView{}
	for _, in := range list.Items {
		row := integrationRow{In: in}
		st, err := c.SyncStatus(r.Context(), in.ID)
		row.Sync = newIntegrationSyncHealth(st, err)
		if in.State == steward.IntegrationDeleting {
			v.Deleting = true
			if d, err := c.GetIntegration(r.Context(), in.ID); err == nil {
				row.Deleting = d.PendingDelete
			}
		}
		v.Rows = append(v.Rows, row)
	}
	if r.URL.Query().Get("deleted") != "" {
		v.Notice = "The integration is being deleted: its assignments are removed in the background, and it leaves this list when that is done. Its tickets stay in ServiceNow."
	}
	return h.render(w, r, http.StatusOK, "integrations.html", "Integrations", v)
}

// ---- form -----------------------------------------------------------------

// integrationTypeForm is one ticket type's mapping on the form.
type integrationTypeForm struct {
	Type         steward.TicketType
	Label        string
	DefaultTable string
	// Custom: the type has its own mapping; otherwise Steward's default
	// table and wording are used. Every type can always be used.
	Custom      bool
	Table       string
	Short       string
	Description string
	Fields      string // key=value lines
	CloseCode   string
}

type integrationPriorityForm struct {
	Severity steward.Severity
	Impact   string
	Urgency  string
}

// integrationForm is the add and edit form. Secrets are never part of it:
// password inputs are always empty, HasPassword and the like only say
// whether one is stored.
type integrationForm struct {
	ID               int64
	Name             string
	Scope            string
	InstanceURL      string
	Local            bool
	AuthMode         string
	Username         string
	ClientID         string
	HasPassword      bool
	HasClientSecret  bool
	HasWebhookSecret bool
	Types            []integrationTypeForm
	Priority         []integrationPriorityForm
	Error            fieldError
}

// integrationFormFields are the fields the form shows errors at; an error about any
// other field is shown above the form.
func integrationFormFields() map[string]bool {
	m := map[string]bool{}
	for _, f := range []string{"name", "scope", "instance_url", "local", "auth_mode", "username", "password",
		"client_id", "client_secret", "webhook_secret", "ticket_types", "priority"} {
		m[f] = true
	}
	for _, tt := range steward.TicketTypes {
		for _, f := range []string{"table", "short_description", "description", "fields", "close_code"} {
			m["ticket_types."+string(tt)+"."+f] = true
		}
	}
	for _, sev := range steward.Severities {
		m["priority."+string(sev)] = true
	}
	return m
}

// Err is the error message for field, if the error is about it.
func (f integrationForm) Err(field string) string {
	if f.Error.Field == field {
		return f.Error.Message
	}
	return ""
}

// InputID is the id of field's input: the field name with dots and
// underscores as dashes.
func (f integrationForm) InputID(field string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(field)
}

// integrationFieldErr is the error shown under one input.
type integrationFieldErr struct{ ID, Msg string }

// E is field's error paragraph (its id for aria-describedby, and its message).
func (f integrationForm) E(field string) integrationFieldErr {
	return integrationFieldErr{ID: f.InputID(field) + "-error", Msg: f.Err(field)}
}

// TypeOpen says whether a ticket type's mapping is shown unfolded: it is
// custom, or the error is about it.
func (f integrationForm) TypeOpen(t integrationTypeForm) bool {
	return t.Custom || strings.HasPrefix(f.Error.Field, "ticket_types."+string(t.Type)+".")
}

// FormErr is the error message not about one of the form's fields.
func (f integrationForm) FormErr() string {
	if f.Error.Message != "" && !integrationFormFields()[f.Error.Field] {
		return f.Error.Message
	}
	return ""
}

// Action is where the form posts.
func (f integrationForm) Action() string {
	if f.ID == 0 {
		return "/settings/integrations"
	}
	return "/settings/integrations/" + strconv.FormatInt(f.ID, 10)
}

var integrationTypeLabels = map[steward.TicketType]string{
	steward.TicketTypeIncident:      "Incident",
	steward.TicketTypeProblem:       "Problem",
	steward.TicketTypeChangeRequest: "Change request",
}

var integrationDefaultTables = map[steward.TicketType]string{
	steward.TicketTypeIncident:      "incident",
	steward.TicketTypeProblem:       "problem",
	steward.TicketTypeChangeRequest: "change_request",
}

// integrationSeverities lists severities as the priority table shows them.
func integrationSeverities() []steward.Severity {
	s := slices.Clone(steward.Severities)
	slices.Reverse(s)
	return s
}

func integrationFormFrom(in *steward.Integration, hasWebhookSecret bool) integrationForm {
	f := integrationForm{ID: in.ID, Name: in.Name, Scope: string(in.Scope), InstanceURL: in.InstanceURL, Local: in.Local,
		AuthMode: string(in.AuthMode), Username: in.Username, ClientID: in.ClientID,
		HasPassword: in.HasPassword, HasClientSecret: in.HasClientSecret, HasWebhookSecret: hasWebhookSecret}
	for _, tt := range steward.TicketTypes {
		t := integrationTypeForm{Type: tt, Label: integrationTypeLabels[tt], DefaultTable: integrationDefaultTables[tt]}
		if m, ok := in.TicketTypes[tt]; ok {
			t.Custom, t.Table, t.Short, t.Description, t.CloseCode = true, m.Table, m.ShortDescription, m.Description, m.CloseCode
			t.Fields = integrationFieldLines(m.Fields)
		}
		f.Types = append(f.Types, t)
	}
	prio := in.Priority
	if len(prio) == 0 {
		prio = steward.DefaultPriority()
	}
	for _, sev := range integrationSeverities() {
		f.Priority = append(f.Priority, integrationPriorityForm{Severity: sev, Impact: prio[sev].Impact, Urgency: prio[sev].Urgency})
	}
	return f
}

func newIntegrationForm() integrationForm {
	f := integrationFormFrom(&steward.Integration{Scope: "/", AuthMode: steward.AuthOAuthPassword}, false)
	return f
}

func integrationFieldLines(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%s\n", k, m[k])
	}
	return b.String()
}

// parseIntegrationFieldLines reads key=value lines; blank lines are skipped.
func parseIntegrationFieldLines(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("line %d %q is not field=value", i+1, line)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// integrationSubmission is what the browser sent, secrets apart from the form.
type integrationSubmission struct {
	form                                  integrationForm
	password, clientSecret, webhookSecret string
	ticketTypes                           map[steward.TicketType]steward.TicketMapping
	priority                              map[steward.Severity]steward.ImpactUrgency
}

// readIntegrationForm reads the posted form into f (keeping ID and Has*). A form
// error names its field.
func readIntegrationForm(r *http.Request, f integrationForm) (integrationSubmission, error) {
	if err := r.ParseForm(); err != nil {
		return integrationSubmission{form: f}, steward.Errorf(steward.CodeInvalid, "could not read the form")
	}
	p := r.PostForm
	get := func(k string) string { return strings.TrimSpace(p.Get(k)) }
	f.Name, f.Scope, f.InstanceURL = get("name"), get("scope"), get("instance_url")
	f.Local = p.Get("local") == "on"
	f.AuthMode, f.Username, f.ClientID = get("auth_mode"), get("username"), get("client_id")
	s := integrationSubmission{password: p.Get("password"), clientSecret: p.Get("client_secret"), webhookSecret: strings.TrimSpace(p.Get("webhook_secret")),
		ticketTypes: map[steward.TicketType]steward.TicketMapping{}, priority: map[steward.Severity]steward.ImpactUrgency{}}
	var ferr error
	f.Types = nil
	for _, tt := range steward.TicketTypes {
		key := func(sub string) string { return "ticket_types." + string(tt) + "." + sub }
		t := integrationTypeForm{Type: tt, Label: integrationTypeLabels[tt], DefaultTable: integrationDefaultTables[tt],
			Custom: p.Get(key("custom")) == "on", Table: get(key("table")), Short: p.Get(key("short_description")),
			Description: p.Get(key("description")), Fields: p.Get(key("fields")), CloseCode: get(key("close_code"))}
		f.Types = append(f.Types, t)
		if !t.Custom {
			continue
		}
		fields, err := parseIntegrationFieldLines(t.Fields)
		if err != nil && ferr == nil {
			ferr = steward.AtField(key("fields"), steward.Errorf(steward.CodeInvalid, "%s fixed fields: %s", t.Label, err))
		}
		s.ticketTypes[tt] = steward.TicketMapping{Table: t.Table, ShortDescription: strings.TrimSpace(t.Short),
			Description: strings.TrimSpace(t.Description), Fields: fields, CloseCode: t.CloseCode}
	}
	f.Priority = nil
	for _, sev := range integrationSeverities() {
		pf := integrationPriorityForm{Severity: sev, Impact: get("priority." + string(sev) + ".impact"), Urgency: get("priority." + string(sev) + ".urgency")}
		f.Priority = append(f.Priority, pf)
		s.priority[sev] = steward.ImpactUrgency{Impact: pf.Impact, Urgency: pf.Urgency}
	}
	s.form = f
	return s, ferr
}

// integrationFormFailed re-renders the form with err at its field. The secrets typed
// are not put back.
func (h *Handler) integrationFormFailed(w http.ResponseWriter, r *http.Request, f integrationForm, err error) error {
	fe := formError(err)
	if se := steward.ErrorField(err); fe.Field == "" && se != "" {
		fe = fieldError{Field: se, Message: steward.ErrorMessage(err)}
	}
	f.Error = fe
	status, _ := statusOf(err)
	if status == http.StatusBadRequest {
		status = http.StatusUnprocessableEntity
	}
	title := "Add integration"
	if f.ID != 0 {
		title = "Edit " + f.Name
	}
	return h.render(w, r, status, "integration_form.html", title, f)
}

func (h *Handler) newIntegration(w http.ResponseWriter, r *http.Request) error {
	return h.render(w, r, http.StatusOK, "integration_form.html", "Add integration", newIntegrationForm())
}

func (h *Handler) createIntegration(w http.ResponseWriter, r *http.Request) error {
	s, err := readIntegrationForm(r, newIntegrationForm())
	if err != nil {
		return h.integrationFormFailed(w, r, s.form, err)
	}
	f := s.form
	req := apiclient.IntegrationRequest{Name: &f.Name, Scope: &f.Scope, InstanceURL: &f.InstanceURL, Local: &f.Local,
		AuthMode: &f.AuthMode, Username: integrationNonEmpty(f.Username), ClientID: integrationNonEmpty(f.ClientID),
		Password: integrationNonEmpty(s.password), ClientSecret: integrationNonEmpty(s.clientSecret), WebhookSecret: integrationNonEmpty(s.webhookSecret)}
	if len(s.ticketTypes) > 0 {
		req.TicketTypes = s.ticketTypes
	}
	if !maps.Equal(s.priority, steward.DefaultPriority()) {
		req.Priority = s.priority
	}
	in, err := h.apiFor(w, r).CreateIntegration(r.Context(), req)
	if err != nil {
		return h.integrationFormFailed(w, r, f, err)
	}
	http.Redirect(w, r, "/settings/integrations/"+strconv.FormatInt(in.ID, 10)+"?added=1", http.StatusSeeOther)
	return nil
}

func integrationNonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (h *Handler) editIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := integrationID(r)
	if err != nil {
		return err
	}
	c := h.apiFor(w, r)
	d, err := c.GetIntegration(r.Context(), id)
	if err != nil {
		return err
	}
	st, err := c.SyncStatus(r.Context(), id)
	hasHook := err == nil && st.HasWebhookSecret
	return h.render(w, r, http.StatusOK, "integration_form.html", "Edit "+d.Name, integrationFormFrom(&d.Integration, hasHook))
}

// updateIntegration sends only what changed; blank secret fields keep the
// stored secrets.
func (h *Handler) updateIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := integrationID(r)
	if err != nil {
		return err
	}
	c := h.apiFor(w, r)
	d, err := c.GetIntegration(r.Context(), id)
	if err != nil {
		return err
	}
	cur := d.Integration
	st, err := c.SyncStatus(r.Context(), id)
	hasHook := err == nil && st.HasWebhookSecret
	s, err := readIntegrationForm(r, integrationFormFrom(&cur, hasHook))
	if err != nil {
		return h.integrationFormFailed(w, r, s.form, err)
	}
	f := s.form
	var req apiclient.IntegrationRequest
	changed := func(now, was string) *string {
		if now == was {
			return nil
		}
		return &now
	}
	req.Name = changed(f.Name, cur.Name)
	req.Scope = changed(f.Scope, string(cur.Scope))
	req.InstanceURL = changed(f.InstanceURL, cur.InstanceURL)
	req.AuthMode = changed(f.AuthMode, string(cur.AuthMode))
	req.Username = changed(f.Username, cur.Username)
	req.ClientID = changed(f.ClientID, cur.ClientID)
	if f.Local != cur.Local {
		req.Local = &f.Local
	}
	req.Password, req.ClientSecret, req.WebhookSecret = integrationNonEmpty(s.password), integrationNonEmpty(s.clientSecret), integrationNonEmpty(s.webhookSecret)
	if !sameIntegrationTicketTypes(s.ticketTypes, cur.TicketTypes) {
		req.TicketTypes = s.ticketTypes
		if len(req.TicketTypes) == 0 {
			// Every type back to the defaults: an empty map, not left out.
			req.TicketTypes = map[steward.TicketType]steward.TicketMapping{}
		}
	}
	if !maps.Equal(s.priority, cur.Priority) {
		req.Priority = s.priority
	}
	if _, err := c.UpdateIntegration(r.Context(), id, req); err != nil {
		return h.integrationFormFailed(w, r, f, err)
	}
	http.Redirect(w, r, "/settings/integrations/"+strconv.FormatInt(id, 10)+"?saved=1", http.StatusSeeOther)
	return nil
}

func sameIntegrationTicketTypes(a, b map[steward.TicketType]steward.TicketMapping) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || x.Table != y.Table || x.ShortDescription != y.ShortDescription || x.Description != y.Description ||
			x.CloseCode != y.CloseCode || !maps.Equal(x.Fields, y.Fields) {
			return false
		}
	}
	return true
}

func integrationID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, steward.Errorf(steward.CodeNotFound, "There is no integration %q", r.PathValue("id"))
	}
	return id, nil
}

// ---- detail ---------------------------------------------------------------

type integrationView struct {
	In         *apiclient.IntegrationDetail
	Types      []integrationTypeForm
	Priority   []integrationPriorityForm
	Sync       integrationSyncHealth
	WebhookURL string
	HasSecret  bool
	Notice     string
	// ValidateError is why "Validate" failed.
	ValidateError string
	// SyncSince is when "Sync now" was asked (from the URL); SyncLive
	// keeps the status refreshing until the reconcile it queued is done.
	SyncSince   string
	SyncLive    bool
	SyncWaiting bool // still not started after integrationSyncWaitLimit
	SyncDone    bool
	// Gone: the integration was deleted while the page watched it.
	Gone bool
	// PollEvery and ReconcileEvery are the sync intervals, e.g. 5m0s.
	PollEvery, ReconcileEvery string
}

// ReconcileSummary says what the last reconcile found, in words.
func (h integrationSyncHealth) ReconcileSummary() string {
	rep := h.Report
	s := fmt.Sprintf("checked %s, repaired %d", integrationPlural(rep.Checked, "ticket"), rep.Repaired)
	if rep.Missing > 0 {
		s += fmt.Sprintf(", %d missing in ServiceNow", rep.Missing)
	}
	return s
}

func integrationPlural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func (h *Handler) integration(w http.ResponseWriter, r *http.Request) error {
	v, err := h.loadIntegrationView(w, r)
	if err != nil {
		return h.integrationGone(w, r, err)
	}
	q := r.URL.Query()
	switch {
	case q.Get("added") != "":
		v.Notice = "Added: Steward signed in to the instance and can read the ticket tables."
	case q.Get("saved") != "":
		v.Notice = "Saved. A change to the connection settings was checked against the instance first."
	case q.Get("validated") != "":
		v.Notice = "The connection works: Steward signed in to the instance and can read the ticket tables."
	}
	return h.render(w, r, http.StatusOK, "integration.html", v.In.Name, v)
}

// integrationGone answers a page about an integration that is not found.
// A page refreshing itself (data-live, a script's fetch) while the
// integration was being deleted gets a last copy saying it is gone, which
// ends the refreshing; a navigation gets the 404 page.
func (h *Handler) integrationGone(w http.ResponseWriter, r *http.Request, err error) error {
	notFound := steward.ErrorCode(err) == steward.CodeNotFound || integrationIsStatus(err, http.StatusNotFound)
	if mode := r.Header.Get("Sec-Fetch-Mode"); notFound && mode != "" && mode != "navigate" {
		return h.render(w, r, http.StatusOK, "integration.html", "Integration deleted", integrationView{Gone: true})
	}
	return err
}

func integrationIsStatus(err error, status int) bool {
	s, _ := statusOf(err)
	return s == status
}

func (h *Handler) loadIntegrationView(w http.ResponseWriter, r *http.Request) (integrationView, error) {
	id, err := integrationID(r)
	if err != nil {
		return integrationView{}, err
	}
	c := h.apiFor(w, r)
	d, err := c.GetIntegration(r.Context(), id)
	if err != nil {
		return integrationView{}, err
	}
	f := integrationFormFrom(&d.Integration, false)
	v := integrationView{In: d, Types: f.Types, Priority: f.Priority,
		PollEvery: time.Duration(d.Sync.PollInterval).String(), ReconcileEvery: time.Duration(d.Sync.ReconcileInterval).String()}
	st, err := c.SyncStatus(r.Context(), id)
	v.Sync = newIntegrationSyncHealth(st, err)
	if err == nil {
		v.WebhookURL = h.integrationPublicURL(r, st.WebhookURL)
		v.HasSecret = st.HasWebhookSecret
	}
	if since, err := strconv.ParseInt(r.URL.Query().Get("sync"), 10, 64); err == nil && st != nil {
		asked := time.Unix(since, 0)
		v.SyncSince = asked.UTC().Format("15:04:05 UTC")
		started := st.LastReconcileAt != nil && !st.LastReconcileAt.Before(asked)
		switch {
		case st.Running != "":
			v.SyncLive = true
		case started:
			v.SyncDone = true
		case h.now().Sub(asked) > integrationSyncWaitLimit:
			v.SyncWaiting = true
		default:
			v.SyncLive = true
		}
	}
	return v, nil
}

// integrationPublicURL turns a URL the in-process API built (its host is the
// placeholder inProcessBase) into one at the address the browser reached
// Steward at. A configured public URL (STEWARD_PUBLIC_URL) is kept.
func (h *Handler) integrationPublicURL(r *http.Request, u string) string {
	rest, ok := strings.CutPrefix(u, inProcessBase)
	if !ok {
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host + rest
}

func (h *Handler) syncIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := integrationID(r)
	if err != nil {
		return err
	}
	asked := h.now().Unix()
	if _, err := h.apiFor(w, r).SyncNow(r.Context(), id); err != nil {
		return err
	}
	http.Redirect(w, r, "/settings/integrations/"+strconv.FormatInt(id, 10)+"?sync="+strconv.FormatInt(asked, 10)+"#sync", http.StatusSeeOther)
	return nil
}

func (h *Handler) validateIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := integrationID(r)
	if err != nil {
		return err
	}
	verr := h.apiFor(w, r).ValidateIntegration(r.Context(), id)
	if verr == nil {
		http.Redirect(w, r, "/settings/integrations/"+strconv.FormatInt(id, 10)+"?validated=1", http.StatusSeeOther)
		return nil
	}
	// A failed check is about the instance (refused, unreachable, down):
	// shown on the integration's page. Steward's own failures are not.
	status, msg := statusOf(verr)
	if status == http.StatusInternalServerError || status == http.StatusForbidden || status == http.StatusNotFound {
		return verr
	}
	v, err := h.loadIntegrationView(w, r)
	if err != nil {
		return err
	}
	v.ValidateError = msg
	return h.render(w, r, http.StatusUnprocessableEntity, "integration.html", v.In.Name, v)
}

// ---- delete ---------------------------------------------------------------

type integrationDeleteView struct {
	In      *apiclient.IntegrationDetail
	Preview *apiclient.DeletePreview
}

func (h *Handler) deleteIntegrationPage(w http.ResponseWriter, r *http.Request) error {
	id, err := integrationID(r)
	if err != nil {
		return err
	}
	c := h.apiFor(w, r)
	d, err := c.GetIntegration(r.Context(), id)
	if err != nil {
		return h.integrationGone(w, r, err)
	}
	v := integrationDeleteView{In: d, Preview: d.PendingDelete}
	if v.Preview == nil {
		if v.Preview, err = c.IntegrationDeletePreview(r.Context(), id); err != nil {
			return err
		}
	}
	return h.render(w, r, http.StatusOK, "integration_delete.html", "Delete "+d.Name, v)
}

func (h *Handler) deleteIntegration(w http.ResponseWriter, r *http.Request) error {
	id, err := integrationID(r)
	if err != nil {
		return err
	}
	if _, err := h.apiFor(w, r).DeleteIntegration(r.Context(), id); err != nil {
		return err
	}
	http.Redirect(w, r, "/settings/integrations?"+url.Values{"deleted": {strconv.FormatInt(id, 10)}}.Encode(), http.StatusSeeOther)
	return nil
}
