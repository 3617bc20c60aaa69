package snowemu

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// StateChange is an agent's state change on a record, as done from the UI.
type StateChange struct {
	State string // raw value ("6") or label ("Resolved")
	// CloseCode and CloseNotes fill the fields a closing state requires;
	// sensible defaults are used when empty.
	CloseCode  string
	CloseNotes string
	// User is the agent (user_name, email or sys_id); default the admin.
	User string
}

// actorOrAdmin resolves the acting agent.
func (e *Emulator) actorOrAdmin(user string) (*actor, error) {
	if user == "" {
		user = e.opts.AdminUser
	}
	a := e.actorByName(user)
	if a == nil {
		return nil, fmt.Errorf("user %s: %w", user, ErrUnknownUser)
	}
	return a, nil
}

// SetState moves a record to a state as an agent would in the UI: the
// Table API's transition graph does not apply (agents can approve and use
// UI actions), but the result is recorded like any update (sys_updated_by,
// sys_mod_count, audit, webhook). Closing states get a close code and notes.
func (e *Emulator) SetState(tableName, ref string, c StateChange) (Record, error) {
	return e.agentUpdate(tableName, ref, c.User, func(t *table, r *row, a *actor, now string) (map[string]string, map[string]string, error) {
		return e.stateChange(tableName, t, r, a, now, c)
	})
}

// stateChange computes the fields of an agent's state change.
func (e *Emulator) stateChange(tableName string, t *table, r *row, a *actor, now string, c StateChange) (map[string]string, map[string]string, error) {
	if !t.def.task {
		return nil, nil, fmt.Errorf("set state on %s: not a task table: %w", tableName, ErrUnknownTable)
	}
	state, ok := t.def.field("state").choiceValue(c.State)
	if !ok {
		// A caller's mistake, not an emulator failure: 400, not 500.
		return nil, nil, errBody(http.StatusBadRequest, "Invalid state", fmt.Sprintf("%q is not a state of %s", c.State, tableName))
	}
	var err error
	f := copyFields(r.fields)
	old := f["state"]
	f["state"] = state
	notes := c.CloseNotes
	if notes == "" {
		notes = "Closed by " + a.userName + " in the ServiceNow emulator"
	}
	setIfEmpty := func(k, v string) {
		if c.CloseCode != "" && (k == "close_code" || k == "resolution_code") {
			f[k] = c.CloseCode
			return
		}
		if f[k] == "" {
			f[k] = v
		}
	}
	switch tableName {
	case TableIncident:
		if state == "6" || state == "7" {
			setIfEmpty("close_code", "Solution provided")
			setIfEmpty("close_notes", notes)
		}
		if state == "3" {
			setIfEmpty("hold_reason", "4")
		}
		err = aerrOrNil(e.incidentRules(r.fields, f, a, now))
	case TableProblem:
		if state == "106" || state == "107" {
			setIfEmpty("resolution_code", "fix_applied")
			setIfEmpty("cause_notes", notes)
			setIfEmpty("fix_notes", notes)
			setIfEmpty("close_notes", notes)
		}
		f["problem_state"] = state
		e.agentClose(old, state, f, a, now, "106", "107")
	case TableChangeRequest:
		if state == "3" {
			setIfEmpty("close_code", "successful")
			setIfEmpty("close_notes", notes)
		}
		if state == "-2" || state == "-1" || state == "0" || state == "3" {
			f["approval"] = "approved"
		}
		e.agentClose(old, state, f, a, now, "", "3")
		if state == "4" {
			f["active"] = "false"
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return f, nil, nil
}

// agentUpdate applies one agent action to a record: change computes the new
// fields and journal entries from a copy (an error writes nothing), the
// write is recorded as user, and its webhooks are queued once the lock is
// released.
func (e *Emulator) agentUpdate(tableName, ref, user string,
	change func(t *table, r *row, a *actor, now string) (fields, journals map[string]string, err error)) (Record, error) {
	a, err := e.actorOrAdmin(user)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	t, r, err := e.findLocked(tableName, ref)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	now := e.nowString()
	f, journals, err := change(t, r, a, now)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	res := e.commitUpdateLocked(t, r, f, journals, a, now)
	out := copyFields(res.fields)
	e.mu.Unlock()
	e.hooks.enqueue(res.events)
	return out, nil
}

func aerrOrNil(a *apiError) error {
	if a == nil {
		return nil
	}
	return a
}

// agentClose maintains resolved_*/closed_*/active for agent state changes.
func (e *Emulator) agentClose(old, state string, f map[string]string, a *actor, now, resolved, closed string) {
	if old == state {
		return
	}
	switch state {
	case resolved:
		f["resolved_at"], f["resolved_by"] = now, a.sysID
	case closed:
		if _, ok := f["resolved_at"]; ok && f["resolved_at"] == "" {
			f["resolved_at"], f["resolved_by"] = now, a.sysID
		}
		f["closed_at"], f["closed_by"], f["active"] = now, a.sysID, "false"
	default:
		if f["active"] == "false" {
			f["closed_at"], f["closed_by"], f["active"] = "", "", "true"
			if _, ok := f["resolved_at"]; ok {
				f["resolved_at"], f["resolved_by"] = "", ""
			}
		}
	}
}

// Reassign sets assigned_to to the user given by user_name, email or sys_id
// (and, when the assignee belongs to exactly one group, nothing else
// changes), recorded as user.
func (e *Emulator) Reassign(tableName, ref, assignee, user string) (Record, error) {
	return e.agentUpdate(tableName, ref, user, func(_ *table, r *row, _ *actor, _ string) (map[string]string, map[string]string, error) {
		u := e.findUserLocked(assignee)
		if u == nil {
			return nil, nil, fmt.Errorf("reassign %s %s to %s: %w", tableName, ref, assignee, ErrUnknownUser)
		}
		f := copyFields(r.fields)
		if f["assigned_to"] != u.fields["sys_id"] {
			f["assigned_to"] = u.fields["sys_id"]
			if _, ok := f["reassignment_count"]; ok {
				f["reassignment_count"] = incr(f["reassignment_count"])
			}
		}
		return f, nil, nil
	})
}

// AddWorkNote appends a work note as user (a sys_journal_field row, §8.3).
func (e *Emulator) AddWorkNote(tableName, ref, text, user string) (Record, error) {
	return e.addJournal(tableName, ref, "work_notes", text, user)
}

// AddComment appends an additional comment (customer-visible) as user.
func (e *Emulator) AddComment(tableName, ref, text, user string) (Record, error) {
	return e.addJournal(tableName, ref, "comments", text, user)
}

func (e *Emulator) addJournal(tableName, ref, element, text, user string) (Record, error) {
	if text == "" {
		return nil, errBody(http.StatusBadRequest, "Invalid journal entry", "the text is empty")
	}
	return e.agentUpdate(tableName, ref, user, func(t *table, r *row, _ *actor, _ string) (map[string]string, map[string]string, error) {
		if t.def.field(element) == nil {
			return nil, nil, fmt.Errorf("add %s to %s: no journal field", element, tableName)
		}
		return copyFields(r.fields), map[string]string{element: text}, nil
	})
}

// DeleteRecord deletes a record as user (an audit row records who).
func (e *Emulator) DeleteRecord(tableName, ref, user string) error {
	a, err := e.actorOrAdmin(user)
	if err != nil {
		return err
	}
	e.mu.Lock()
	t, r, err := e.findLocked(tableName, ref)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	var events []event
	if t.def.task {
		events = append(events, e.eventFor("delete", t.def, r.fields))
	}
	t.remove(r)
	e.auditLocked(tableName, r.fields["sys_id"], "DELETED", "", r.fields[t.def.displayField], a, 0, e.nowString())
	e.mu.Unlock()
	e.hooks.enqueue(events)
	return nil
}

func incr(s string) string {
	n := 0
	_, _ = fmt.Sscanf(s, "%d", &n)
	return fmt.Sprint(n + 1)
}

// ---- admin HTTP API ----

// handleAdmin serves /emulator/admin/... with the admin credentials.
//
//	GET    /emulator/admin/records/{table}                       → {"result":[records]}
//	POST   /emulator/admin/records/{table}/{ref}/state           {"state","close_code","close_notes","user"}
//	POST   /emulator/admin/records/{table}/{ref}/assign          {"assigned_to","user"}
//	POST   /emulator/admin/records/{table}/{ref}/work_notes      {"text","user"}
//	POST   /emulator/admin/records/{table}/{ref}/comments        {"text","user"}
//	DELETE /emulator/admin/records/{table}/{ref}?user=...
//	GET|PUT /emulator/admin/faults                               Faults JSON
//	GET|POST|DELETE /emulator/admin/webhooks                     Webhook JSON
//	GET    /emulator/admin/webhooks/deliveries
//	GET|PUT /emulator/admin/rate_limits                          [RateLimitRule]
//	POST   /emulator/admin/users                                 {"user_name",...}
//	POST   /emulator/admin/groups                                {"name",...}
//	GET    /emulator/admin/requests                              {"METHOD path": n}
//	POST   /emulator/admin/expire_tokens
//	POST   /emulator/admin/reset
func (e *Emulator) handleAdmin(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(e.opts.AdminUser)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(e.opts.AdminPassword)) != 1 {
		e.writeError(w, r, errNoAuth())
		return
	}
	path := strings.Trim(strings.TrimPrefix(r.URL.Path, "/emulator/admin/"), "/")
	parts := strings.Split(path, "/")
	fail := func(err error, tableName string) { e.writeError(w, r, apiErrorFrom(err, tableName)) }
	ok200 := func(v any) { e.writeJSON(w, r, http.StatusOK, v) }

	switch {
	case parts[0] == "records" && len(parts) == 2 && r.Method == http.MethodGet:
		if e.schema[parts[1]] == nil {
			fail(ErrUnknownTable, parts[1])
			return
		}
		ok200(map[string]any{"result": e.Records(parts[1])})
	case parts[0] == "records" && len(parts) == 3 && r.Method == http.MethodDelete:
		if err := e.DeleteRecord(parts[1], parts[2], r.URL.Query().Get("user")); err != nil {
			fail(err, parts[1])
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case parts[0] == "records" && len(parts) == 4 && r.Method == http.MethodPost:
		var in struct {
			State      string `json:"state"`
			CloseCode  string `json:"close_code"`
			CloseNotes string `json:"close_notes"`
			AssignedTo string `json:"assigned_to"`
			Text       string `json:"text"`
			User       string `json:"user"`
		}
		if err := decodeJSON(r.Body, &in); err != nil {
			fail(errBody(http.StatusBadRequest, "Exception while reading request", err.Error()), "")
			return
		}
		var rec Record
		var err error
		switch parts[3] {
		case "state":
			rec, err = e.SetState(parts[1], parts[2], StateChange{State: in.State, CloseCode: in.CloseCode, CloseNotes: in.CloseNotes, User: in.User})
		case "assign":
			rec, err = e.Reassign(parts[1], parts[2], in.AssignedTo, in.User)
		case "work_notes":
			rec, err = e.AddWorkNote(parts[1], parts[2], in.Text, in.User)
		case "comments":
			rec, err = e.AddComment(parts[1], parts[2], in.Text, in.User)
		default:
			e.writeError(w, r, errNullDetail(http.StatusNotFound, "Unknown action "+parts[3]))
			return
		}
		if err != nil {
			fail(err, parts[1])
			return
		}
		ok200(map[string]any{"result": rec})
	case path == "faults" && r.Method == http.MethodGet:
		ok200(e.CurrentFaults())
	case path == "faults" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		var f Faults
		if err := decodeJSON(r.Body, &f); err != nil {
			fail(errBody(http.StatusBadRequest, "Exception while reading request", err.Error()), "")
			return
		}
		e.SetFaults(f)
		ok200(f)
	case path == "webhooks" && r.Method == http.MethodGet:
		ok200(e.Webhooks())
	case path == "webhooks" && r.Method == http.MethodPost:
		var h Webhook
		if err := decodeJSON(r.Body, &h); err != nil || h.URL == "" {
			fail(errBody(http.StatusBadRequest, "Exception while reading request", "a webhook needs a url"), "")
			return
		}
		if err := e.AddWebhook(h); err != nil {
			fail(errBody(http.StatusBadRequest, "Invalid webhook", err.Error()), "")
			return
		}
		e.writeJSON(w, r, http.StatusCreated, h)
	case path == "webhooks" && r.Method == http.MethodDelete:
		e.ClearWebhooks()
		w.WriteHeader(http.StatusNoContent)
	case path == "webhooks/deliveries" && r.Method == http.MethodGet:
		ok200(e.WebhookDeliveries())
	case path == "rate_limits" && r.Method == http.MethodGet:
		ok200(e.RateLimits())
	case path == "rate_limits" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		var rules []RateLimitRule
		if err := decodeJSON(r.Body, &rules); err != nil {
			fail(errBody(http.StatusBadRequest, "Exception while reading request", err.Error()), "")
			return
		}
		e.SetRateLimits(rules)
		ok200(e.RateLimits())
	case path == "users" && r.Method == http.MethodPost:
		var in struct {
			UserName   string   `json:"user_name"`
			FirstName  string   `json:"first_name"`
			LastName   string   `json:"last_name"`
			Email      string   `json:"email"`
			Password   string   `json:"password"`
			Manager    string   `json:"manager"`
			Title      string   `json:"title"`
			Department string   `json:"department"`
			Roles      []string `json:"roles"`
			TimeZone   string   `json:"time_zone"`
		}
		if err := decodeJSON(r.Body, &in); err != nil {
			fail(errBody(http.StatusBadRequest, "Exception while reading request", err.Error()), "")
			return
		}
		id, err := e.AddUser(UserSpec{UserName: in.UserName, FirstName: in.FirstName, LastName: in.LastName, Email: in.Email,
			Password: in.Password, Manager: in.Manager, Title: in.Title, Department: in.Department, Roles: in.Roles, TimeZone: in.TimeZone})
		if err != nil {
			fail(errBody(http.StatusBadRequest, "Invalid user", err.Error()), "")
			return
		}
		e.writeJSON(w, r, http.StatusCreated, map[string]string{"sys_id": id})
	case path == "groups" && r.Method == http.MethodPost:
		var in struct {
			Name        string   `json:"name"`
			Description string   `json:"description"`
			Email       string   `json:"email"`
			Manager     string   `json:"manager"`
			Members     []string `json:"members"`
		}
		if err := decodeJSON(r.Body, &in); err != nil {
			fail(errBody(http.StatusBadRequest, "Exception while reading request", err.Error()), "")
			return
		}
		id, err := e.AddGroup(GroupSpec{Name: in.Name, Description: in.Description, Email: in.Email, Manager: in.Manager, Members: in.Members})
		if err != nil {
			fail(errBody(http.StatusBadRequest, "Invalid group", err.Error()), "")
			return
		}
		e.writeJSON(w, r, http.StatusCreated, map[string]string{"sys_id": id})
	case path == "requests" && r.Method == http.MethodGet:
		ok200(e.Requests())
	case path == "expire_tokens" && r.Method == http.MethodPost:
		e.ExpireTokens()
		w.WriteHeader(http.StatusNoContent)
	case path == "reset" && r.Method == http.MethodPost:
		e.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		e.writeError(w, r, errNullDetail(http.StatusNotFound, "Requested URI does not represent any resource"))
	}
}

func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("decode request body: %w", err)
	}
	return nil
}

func (e *Emulator) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		e.writeError(w, r, errBody(http.StatusInternalServerError, "Internal error", err.Error()))
		return
	}
	e.writeRaw(w, r, status, b)
}

// Create inserts a record as user, through the same defaults, business
// rules and data policies as a Table API POST. Fields hold raw values.
func (e *Emulator) Create(tableName string, fields Record, user string) (Record, error) {
	a, err := e.actorOrAdmin(user)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	t := e.tables[tableName]
	if t == nil {
		e.mu.Unlock()
		return nil, fmt.Errorf("create in %s: %w", tableName, ErrUnknownTable)
	}
	res, aerr := e.insertLocked(t, fields, false, a)
	if aerr != nil {
		e.mu.Unlock()
		return nil, fmt.Errorf("create in %s: %w", tableName, aerr)
	}
	out := copyFields(res.fields)
	e.mu.Unlock()
	e.hooks.enqueue(res.events)
	return out, nil
}

// Update applies a partial update as user, exactly as a Table API PATCH
// would (transition graphs and data policies included).
func (e *Emulator) Update(tableName, ref string, fields Record, user string) (Record, error) {
	a, err := e.actorOrAdmin(user)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	t, r, err := e.findLocked(tableName, ref)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	res, aerr := e.updateLocked(t, r, fields, false, a)
	if aerr != nil {
		e.mu.Unlock()
		return nil, fmt.Errorf("update %s %s: %w", tableName, ref, aerr)
	}
	out := copyFields(res.fields)
	e.mu.Unlock()
	e.hooks.enqueue(res.events)
	return out, nil
}
