package snowemu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// actor is the authenticated user a write is recorded as.
type actor struct {
	sysID    string
	userName string
	admin    bool
	roles    []string
	loc      *time.Location
}

// apiError is an error answered with the Table API error envelope (§2.2).
type apiError struct {
	status  int
	message string
	detail  *string // nil renders as JSON null
}

func (e *apiError) Error() string {
	if e.detail != nil {
		return fmt.Sprintf("%d %s: %s", e.status, e.message, *e.detail)
	}
	return fmt.Sprintf("%d %s", e.status, e.message)
}

func errBody(status int, message, detail string) *apiError {
	return &apiError{status: status, message: message, detail: &detail}
}

func errNullDetail(status int, message string) *apiError {
	return &apiError{status: status, message: message}
}

// Error bodies of §2.2.
func errNotFound() *apiError {
	return errBody(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
}
func errInvalidTable(name string) *apiError { return errNullDetail(400, "Invalid table "+name) }
func errACL(op string) *apiError {
	return errBody(403, "Operation Failed", "ACL Exception "+op+" Failed due to security constraints")
}
func errDataPolicy(labels []string) *apiError {
	return errBody(403, "Operation Failed", "Data Policy Exception: \n\tThe following fields are mandatory: "+strings.Join(labels, ", "))
}
func errAborted(op, table, display string) *apiError {
	return errBody(403, "Operation Failed", fmt.Sprintf("Error during %s of %s (%s)", op, table, display))
}

// autoFields are maintained by the platform; values in request bodies are
// ignored (§4.3).
var autoFields = map[string]bool{
	"sys_created_on": true, "sys_created_by": true, "sys_updated_on": true, "sys_updated_by": true,
	"sys_mod_count": true, "sys_class_name": true, "task_effective_number": true,
	"comments_and_work_notes": true, "approval_history": true,
}

// event is a committed write, handed to the webhook dispatcher after the
// store lock is released.
type event struct {
	op     string // "insert" or "update"
	table  string
	fields map[string]string
	label  string // display value of state
}

// writeResult is what a write returns to its caller.
type writeResult struct {
	fields map[string]string
	events []event
}

// applyInput copies input values onto f, converting display values when
// inputDisplay is set (§2.3 sysparm_input_display_value), and collects
// journal entries. Unknown fields are ignored (§2.6).
func (e *Emulator) applyInputLocked(def *tableDef, f map[string]string, input map[string]string, inputDisplay bool, a *actor) (journals map[string]string) {
	for name, v := range input {
		fd := def.field(name)
		if fd == nil || autoFields[name] || name == "sys_id" {
			continue
		}
		switch fd.kind {
		case kindJournal:
			if v != "" {
				if journals == nil {
					journals = make(map[string]string)
				}
				journals[name] = v
			}
			continue
		case kindReference:
			if inputDisplay && v != "" {
				v = e.referenceFromDisplayLocked(fd, v)
			}
		case kindChoice:
			if inputDisplay {
				v, _ = fd.choiceValue(v)
			}
		case kindBoolean:
			if strings.EqualFold(v, "true") || strings.EqualFold(v, "false") {
				v = strings.ToLower(v)
			}
		case kindDateTime:
			if inputDisplay && v != "" && a.loc != nil && a.loc != time.UTC {
				if t, err := time.ParseInLocation(timeLayout, v, a.loc); err == nil {
					v = t.UTC().Format(timeLayout)
				}
			}
		}
		f[name] = v
	}
	return journals
}

// referenceFromDisplayLocked resolves a display value to a sys_id; a value
// that already is a sys_id, or that matches nothing, is stored as given
// ([uncertain] §6).
func (e *Emulator) referenceFromDisplayLocked(fd *fieldDef, v string) string {
	for _, tn := range refTables(fd.refTable) {
		t := e.tables[tn]
		if t == nil {
			continue
		}
		if t.byID[v] != nil {
			return v
		}
		df := t.def.displayField
		if rs, ok := t.lookup(df, v); ok {
			if len(rs) > 0 {
				return rs[0].fields["sys_id"]
			}
			continue
		}
		for _, r := range t.order {
			if r != nil && strings.EqualFold(r.fields[df], v) {
				return r.fields["sys_id"]
			}
		}
	}
	return v
}

func refTables(name string) []string {
	if name == "task" {
		return taskTables
	}
	return []string{name}
}

// insertLocked creates a record. sysID may be supplied by the client (§4.1).
func (e *Emulator) insertLocked(t *table, input map[string]string, inputDisplay bool, a *actor) (*writeResult, *apiError) {
	def := t.def
	if def.readOnly {
		return nil, errACL("Insert")
	}
	now := e.nowString()
	f := e.blankFields(def)
	id := input["sys_id"]
	if id == "" {
		id = newSysID()
	} else if t.byID[id] != nil {
		return nil, errAborted("insert", def.name, id)
	}
	journals := e.applyInputLocked(def, f, input, inputDisplay, a)
	f["sys_id"] = id
	f["sys_created_on"], f["sys_created_by"] = now, a.userName
	f["sys_updated_on"], f["sys_updated_by"] = now, a.userName
	f["sys_mod_count"] = "0"
	if def.task {
		if f["number"] == "" {
			f["number"] = t.nextNumber()
		}
		f["task_effective_number"] = f["number"]
		f["sys_class_name"] = def.name
		if f["opened_by"] == "" {
			f["opened_by"] = a.sysID
		}
		if f["opened_at"] == "" {
			f["opened_at"] = now
		}
		if def.name == TableChangeRequest && f["requested_by"] == "" {
			f["requested_by"] = a.sysID
		}
		if aerr := e.taskRulesLocked(t, nil, f, a, now); aerr != nil {
			return nil, aerr
		}
	}
	t.add(&row{fields: f})
	e.journalLocked(def.name, id, journals, a, now)
	res := &writeResult{fields: f}
	if def.task {
		res.events = append(res.events, e.eventFor("insert", def, f))
	}
	return res, nil
}

// updateLocked applies a partial update (PUT and PATCH alike, §2.1).
func (e *Emulator) updateLocked(t *table, r *row, input map[string]string, inputDisplay bool, a *actor) (*writeResult, *apiError) {
	def := t.def
	if def.readOnly {
		return nil, errACL("Update")
	}
	prev := r.fields
	if def.name == TableIncident && e.opts.StrictClosedIncidents && prev["state"] == "7" && !a.admin {
		return nil, errACL("Update") // §5.1 rule 5
	}
	now := e.nowString()
	f := copyFields(prev)
	journals := e.applyInputLocked(def, f, input, inputDisplay, a)
	if def.task {
		if aerr := e.taskRulesLocked(t, prev, f, a, now); aerr != nil {
			return nil, aerr
		}
	}
	return e.commitUpdateLocked(t, r, f, journals, a, now), nil
}

// commitUpdateLocked stores f as the new version of r with audit and journal
// rows. A write that changes nothing is not an update: no sys_mod_count
// bump, no audit, no webhook (as GlideRecord.update on an unchanged record).
func (e *Emulator) commitUpdateLocked(t *table, r *row, f map[string]string, journals map[string]string, a *actor, now string) *writeResult {
	def := t.def
	prev := r.fields
	var changed []string
	for _, fd := range def.fields {
		if fd.kind != kindJournal && prev[fd.name] != f[fd.name] {
			changed = append(changed, fd.name)
		}
	}
	if len(changed) == 0 && len(journals) == 0 {
		return &writeResult{fields: prev}
	}
	mod, _ := strconv.Atoi(prev["sys_mod_count"])
	mod++
	f["sys_mod_count"] = strconv.Itoa(mod)
	f["sys_updated_on"], f["sys_updated_by"] = now, a.userName
	t.replace(r, f)
	id := f["sys_id"]
	for _, name := range changed {
		e.auditLocked(def.name, id, name, prev[name], f[name], a, mod, now)
	}
	for _, fd := range def.fields {
		if v, ok := journals[fd.name]; ok {
			e.auditLocked(def.name, id, fd.name, "", v, a, mod, now)
		}
	}
	e.journalLocked(def.name, id, journals, a, now)
	res := &writeResult{fields: f}
	if def.task {
		res.events = append(res.events, e.eventFor("update", def, f))
	}
	return res
}

func (e *Emulator) deleteLocked(t *table, r *row) *apiError {
	if t.def.readOnly {
		return errACL("Delete")
	}
	t.remove(r)
	if t.def.name == TableUser {
		delete(e.passwords, r.fields["sys_id"])
	}
	return nil
}

// journalLocked appends one sys_journal_field row per entry (§8.3), in
// dictionary order so work_notes and comments of one write keep a stable
// order.
func (e *Emulator) journalLocked(tableName, id string, journals map[string]string, a *actor, now string) {
	if len(journals) == 0 {
		return
	}
	jt := e.tables[TableJournal]
	for _, name := range []string{"comments", "work_notes"} {
		v, ok := journals[name]
		if !ok {
			continue
		}
		jt.add(&row{fields: map[string]string{
			"sys_id": newSysID(), "element_id": id, "name": tableName, "element": name, "value": v,
			"sys_created_on": now, "sys_created_by": a.userName,
		}})
	}
}

// auditLocked appends one sys_audit row (§8.2).
func (e *Emulator) auditLocked(tableName, id, field, oldv, newv string, a *actor, checkpoint int, now string) {
	at := e.tables[TableAudit]
	cp := strconv.Itoa(checkpoint)
	at.add(&row{fields: map[string]string{
		"sys_id": newSysID(), "tablename": tableName, "documentkey": id, "fieldname": field,
		"oldvalue": oldv, "newvalue": newv, "user": a.userName, "reason": "",
		"record_checkpoint": cp, "internal_checkpoint": cp,
		"sys_created_on": now, "sys_created_by": a.userName,
	}})
}

func (e *Emulator) eventFor(op string, def *tableDef, f map[string]string) event {
	return event{op: op, table: def.name, fields: f, label: def.field("state").choiceLabel(f["state"])}
}

// priorityLookup is the impact × urgency table of §5.1.
var priorityLookup = [3][3]string{
	{"1", "2", "3"},
	{"2", "3", "4"},
	{"3", "4", "5"},
}

func computePriority(impact, urgency string) (string, bool) {
	i, err1 := strconv.Atoi(impact)
	u, err2 := strconv.Atoi(urgency)
	if err1 != nil || err2 != nil || i < 1 || i > 3 || u < 1 || u > 3 {
		return "", false
	}
	return priorityLookup[i-1][u-1], true
}

// taskRulesLocked runs the business rules and data policies of §5 on the
// new version f of a record (prev is nil on insert). It may modify f.
func (e *Emulator) taskRulesLocked(t *table, prev, f map[string]string, a *actor, now string) *apiError {
	switch t.def.name {
	case TableIncident:
		return e.incidentRules(prev, f, a, now)
	case TableProblem:
		return e.problemRules(prev, f, a, now)
	case TableChangeRequest:
		return e.changeRules(prev, f, a, now)
	}
	return nil
}

func (e *Emulator) incidentRules(prev, f map[string]string, a *actor, now string) *apiError {
	if p, ok := computePriority(f["impact"], f["urgency"]); ok {
		f["priority"] = p // §5.1 rule 4: recomputed on every write
	}
	state := f["state"]
	if state == "6" || state == "7" {
		// §5.1 rule 1, §2.2: the data policy names the missing labels.
		var missing []string
		if f["close_code"] == "" {
			missing = append(missing, "Resolution code")
		}
		if f["close_notes"] == "" {
			missing = append(missing, "Close notes")
		}
		if len(missing) > 0 {
			return errDataPolicy(missing)
		}
	}
	if state == "3" && f["hold_reason"] == "" && e.opts.StrictOnHold {
		return errDataPolicy([]string{"On hold reason"}) // §5.1 rule 3, behind a switch
	}
	if state != "3" {
		f["hold_reason"] = ""
	}
	f["incident_state"] = state
	old := ""
	if prev != nil {
		old = prev["state"]
	}
	if state == old {
		return nil
	}
	switch state {
	case "6":
		f["resolved_at"], f["resolved_by"] = now, a.sysID
	case "7":
		if f["resolved_at"] == "" {
			f["resolved_at"], f["resolved_by"] = now, a.sysID
		}
		f["closed_at"], f["closed_by"], f["active"] = now, a.sysID, "false"
	case "8":
		f["active"] = "false"
	default:
		if old == "6" || old == "7" || old == "8" {
			e.reopen(f, a, now)
		}
		f["active"] = "true"
	}
	return nil
}

// reopen clears the resolution of a record moved back to an open state.
func (e *Emulator) reopen(f map[string]string, a *actor, now string) {
	n, _ := strconv.Atoi(f["reopen_count"])
	f["reopen_count"] = strconv.Itoa(n + 1)
	if _, ok := f["reopened_by"]; ok {
		f["reopened_by"], f["reopened_time"] = a.sysID, now
	}
	f["resolved_at"], f["resolved_by"] = "", ""
	f["closed_at"], f["closed_by"] = "", ""
	f["active"] = "true"
}

// problemTransitions is the Madrid-and-later problem state model the
// emulator enforces (§5.2). Cancel/duplicate may close from any open state.
var problemTransitions = map[string][]string{
	"101": {"102", "107"},
	"102": {"101", "103", "107"},
	"103": {"104", "106", "107"},
	"104": {"103", "106", "107"},
	"106": {"103", "107"},
	"107": {"103"},
}

// problemAllowed reports whether from → to is allowed for the record f.
func problemAllowed(from, to string, f map[string]string) bool {
	if !slices.Contains(problemTransitions[from], to) {
		return false
	}
	rc := f["resolution_code"]
	switch to {
	case "102":
		return f["assigned_to"] != "" // assignment before leaving New
	case "104":
		return f["cause_notes"] != ""
	case "106", "107":
		if from == "107" {
			return false
		}
		if (from == "101" || from == "102") && rc != "canceled" && rc != "duplicate" {
			return false
		}
		switch rc {
		case "fix_applied":
			return f["cause_notes"] != "" && f["fix_notes"] != ""
		case "risk_accepted":
			return f["cause_notes"] != ""
		case "duplicate":
			return f["duplicate_of"] != ""
		case "canceled":
			return f["close_notes"] != ""
		default:
			return false
		}
	}
	return true
}

func (e *Emulator) problemRules(prev, f map[string]string, a *actor, now string) *apiError {
	if p, ok := computePriority(f["impact"], f["urgency"]); ok {
		f["priority"] = p
	}
	old := "101"
	if prev != nil {
		old = prev["state"]
	}
	to := f["state"]
	if to != old && !problemAllowed(old, to, f) {
		if aerr := e.blocked(prev, f, TableProblem, old); aerr != nil {
			return aerr
		}
		to = old
	}
	f["problem_state"] = to
	if to == old {
		return nil
	}
	switch to {
	case "106":
		f["resolved_at"], f["resolved_by"] = now, a.sysID
	case "107":
		if f["resolved_at"] == "" {
			f["resolved_at"], f["resolved_by"] = now, a.sysID
		}
		f["closed_at"], f["closed_by"], f["active"] = now, a.sysID, "false"
	case "103":
		if old == "106" || old == "107" { // "Re-analyze" (§5.2)
			e.reopen(f, a, now)
		}
	}
	return nil
}

// changePaths are the forward paths per change type (§5.3).
var changePaths = map[string][]string{
	"normal":    {"-5", "-4", "-3", "-2", "-1", "0", "3"},
	"standard":  {"-5", "-2", "-1", "0", "3"},
	"emergency": {"-5", "-3", "-2", "-1", "0", "3"},
}

func changeAllowed(from, to string, f map[string]string) bool {
	switch {
	case to == "4": // Canceled: from anything but Review and Closed
		return from != "0" && from != "3" && from != "4"
	case to == "-5" && (from == "-4" || from == "-3"): // revert to New / rejection
		return true
	}
	path := changePaths[f["type"]]
	if path == nil {
		path = changePaths["normal"]
	}
	i := slices.Index(path, from)
	if i < 0 || i+1 >= len(path) || path[i+1] != to {
		return false
	}
	// Approvals gate Assess and Authorize: the Table API cannot skip them.
	if (from == "-4" || from == "-3") && f["approval"] != "approved" {
		return false
	}
	if to == "3" && (f["close_code"] == "" || f["close_notes"] == "") {
		return false
	}
	return true
}

func (e *Emulator) changeRules(prev, f map[string]string, a *actor, now string) *apiError {
	if prev == nil && f["type"] == "standard" && f["approval"] == "not requested" {
		f["approval"] = "approved" // standard changes are pre-approved
	}
	old := "-5"
	if prev != nil {
		old = prev["state"]
	}
	to := f["state"]
	if to != old && !changeAllowed(old, to, f) {
		if aerr := e.blocked(prev, f, TableChangeRequest, old); aerr != nil {
			return aerr
		}
		to = old
	}
	if to == old {
		return nil
	}
	switch to {
	case "-4", "-3":
		if f["approval"] == "not requested" {
			f["approval"] = "requested"
		}
	case "3", "4":
		f["closed_at"], f["closed_by"], f["active"] = now, a.sysID, "false"
	}
	return nil
}

// blocked handles a refused transition per Options.BlockedTransitions:
// either restore the old state (the write otherwise applies) or refuse the
// whole write.
func (e *Emulator) blocked(prev, f map[string]string, tableName, old string) *apiError {
	if e.opts.BlockedTransitions == TransitionForbidden {
		op := "update"
		if prev == nil {
			op = "insert"
		}
		return errAborted(op, tableName, f["number"])
	}
	f["state"] = old
	return nil
}
