package snowemu

import "strings"

// fieldKind is the dictionary type of a field. It decides how values compare
// in queries (reference §3.2: numeric for numbers, chronological for dates,
// lexical for strings) and how they render (§2.4).
type fieldKind int

const (
	kindString fieldKind = iota
	kindInteger
	kindBoolean
	kindDateTime
	kindReference
	kindChoice
	kindJournal
)

type choice struct {
	value, label string
}

// fieldDef is one dictionary entry.
type fieldDef struct {
	name     string
	label    string
	kind     fieldKind
	refTable string   // kindReference: the referenced table ("task" means any task table)
	choices  []choice // kindChoice
	numeric  bool     // kindChoice with integer values (state, priority, ...)
	def      string   // default on insert
}

// tableDef is one table of the emulated instance.
type tableDef struct {
	name         string
	label        string
	numberPrefix string // "" when the table has no number field
	firstNumber  int    // first counter value (reference §4.1: INC0010001, ...)
	displayField string // the field whose value is the record's display value (§6)
	task         bool   // extends task: state models, webhooks, journal
	readOnly     bool   // system tables the Table API may only read
	fields       []*fieldDef
	byName       map[string]*fieldDef
}

func (t *tableDef) field(name string) *fieldDef { return t.byName[name] }

// label returns the display label of a choice value, or the value itself
// when it is not one of the field's choices.
func (f *fieldDef) choiceLabel(v string) string {
	for _, c := range f.choices {
		if c.value == v {
			return c.label
		}
	}
	return v
}

// choiceValue maps a label (or value) given as display value input to the
// stored value (§2.3 sysparm_input_display_value, name=value filters).
func (f *fieldDef) choiceValue(in string) (string, bool) {
	for _, c := range f.choices {
		if c.value == in {
			return c.value, true
		}
	}
	for _, c := range f.choices {
		if strings.EqualFold(c.label, in) {
			return c.value, true
		}
	}
	return in, false
}

// Table names the emulator serves.
const (
	TableIncident      = "incident"
	TableProblem       = "problem"
	TableChangeRequest = "change_request"
	TableUser          = "sys_user"
	TableGroup         = "sys_user_group"
	TableGroupMember   = "sys_user_grmember"
	TableJournal       = "sys_journal_field"
	TableAudit         = "sys_audit"
)

// field constructors keep the dictionary below readable.
func str(name, label string) *fieldDef { return &fieldDef{name: name, label: label, kind: kindString} }
func integer(name, label, def string) *fieldDef {
	return &fieldDef{name: name, label: label, kind: kindInteger, def: def}
}
func boolean(name, label, def string) *fieldDef {
	return &fieldDef{name: name, label: label, kind: kindBoolean, def: def}
}
func datetime(name, label string) *fieldDef {
	return &fieldDef{name: name, label: label, kind: kindDateTime}
}
func ref(name, label, table string) *fieldDef {
	return &fieldDef{name: name, label: label, kind: kindReference, refTable: table}
}
func journal(name, label string) *fieldDef {
	return &fieldDef{name: name, label: label, kind: kindJournal}
}
func choices(name, label, def string, numeric bool, cs ...string) *fieldDef {
	f := &fieldDef{name: name, label: label, kind: kindChoice, def: def, numeric: numeric}
	for i := 0; i+1 < len(cs); i += 2 {
		f.choices = append(f.choices, choice{value: cs[i], label: cs[i+1]})
	}
	return f
}
func withDefault(f *fieldDef, def string) *fieldDef { f.def = def; return f }

// Choice lists (reference §4.3, §5). Values are what the API stores and
// returns; labels are display values.
var (
	impactChoices   = []string{"1", "1 - High", "2", "2 - Medium", "3", "3 - Low"}
	priorityChoices = []string{"1", "1 - Critical", "2", "2 - High", "3", "3 - Moderate", "4", "4 - Low", "5", "5 - Planning"}
	incidentStates  = []string{"1", "New", "2", "In Progress", "3", "On Hold", "6", "Resolved", "7", "Closed", "8", "Canceled"}
	problemStates   = []string{"101", "New", "102", "Assess", "103", "Root Cause Analysis", "104", "Fix in Progress", "106", "Resolved", "107", "Closed"}
	changeStates    = []string{"-5", "New", "-4", "Assess", "-3", "Authorize", "-2", "Scheduled", "-1", "Implement", "0", "Review", "3", "Closed", "4", "Canceled"}
	// Current close codes are their own labels (§5.1); the legacy ones are
	// accepted too so demo-data style values display sensibly.
	incidentCloseCodes = []string{
		"Duplicate", "Duplicate", "Known error", "Known error", "No resolution provided", "No resolution provided",
		"Resolved by caller", "Resolved by caller", "Resolved by change", "Resolved by change",
		"Resolved by problem", "Resolved by problem", "Resolved by request", "Resolved by request",
		"Solution provided", "Solution provided", "Workaround provided", "Workaround provided",
		"User error", "User error",
		"Solved (Work Around)", "Solved (Work Around)", "Solved (Permanently)", "Solved (Permanently)",
		"Solved Remotely (Work Around)", "Solved Remotely (Work Around)",
		"Solved Remotely (Permanently)", "Solved Remotely (Permanently)",
		"Not Solved (Not Reproducible)", "Not Solved (Not Reproducible)",
		"Not Solved (Too Costly)", "Not Solved (Too Costly)", "Closed/Resolved by Caller", "Closed/Resolved by Caller",
	}
	holdReasons      = []string{"1", "Awaiting Caller", "2", "Awaiting Evidence", "3", "Awaiting Problem", "4", "Awaiting Vendor", "5", "Awaiting Change"}
	approvalChoices  = []string{"not requested", "Not Yet Requested", "requested", "Requested", "approved", "Approved", "rejected", "Rejected", "cancelled", "Cancelled", "not_required", "No Longer Required"}
	escalationChoice = []string{"0", "Normal", "1", "Moderate", "2", "High", "3", "Overdue"}
	contactTypes     = []string{"email", "Email", "phone", "Phone", "self-service", "Self-service", "walk-in", "Walk-in", "virtual_agent", "Virtual Agent", "monitoring", "Monitoring", "integration", "Integration"}
	classNames       = []string{"incident", "Incident", "problem", "Problem", "change_request", "Change Request"}
)

// taskFields are the fields every task-derived record carries (§4.3, plus
// every field of the captured task records in testdata/servicenow).
func taskFields(stateField *fieldDef, closeCode *fieldDef) []*fieldDef {
	return []*fieldDef{
		str("sys_id", "Sys ID"),
		str("number", "Number"),
		str("task_effective_number", "Effective number"),
		str("short_description", "Short description"),
		str("description", "Description"),
		stateField,
		boolean("active", "Active", "true"),
		choices("priority", "Priority", "4", true, priorityChoices...),
		choices("impact", "Impact", "3", true, impactChoices...),
		choices("urgency", "Urgency", "3", true, impactChoices...),
		ref("assigned_to", "Assigned to", TableUser),
		ref("assignment_group", "Assignment group", TableGroup),
		ref("opened_by", "Opened by", TableUser),
		datetime("opened_at", "Opened"),
		datetime("closed_at", "Closed"),
		ref("closed_by", "Closed by", TableUser),
		str("correlation_id", "Correlation ID"),
		str("correlation_display", "Correlation display"),
		journal("work_notes", "Work notes"),
		journal("comments", "Additional comments"),
		journal("comments_and_work_notes", "Comments and Work notes"),
		str("close_notes", "Close notes"),
		closeCode,
		ref("parent", "Parent", "task"),
		ref("company", "Company", "core_company"),
		ref("location", "Location", "cmn_location"),
		ref("cmdb_ci", "Configuration item", "cmdb_ci"),
		ref("business_service", "Service", "cmdb_ci_service"),
		ref("service_offering", "Service offering", "service_offering"),
		str("watch_list", "Watch list"),
		str("work_notes_list", "Work notes list"),
		str("additional_assignee_list", "Additional assignee list"),
		str("group_list", "Group list"),
		choices("approval", "Approval", "not requested", false, approvalChoices...),
		journal("approval_history", "Approval history"),
		datetime("approval_set", "Approval set"),
		choices("contact_type", "Channel", "", false, contactTypes...),
		choices("escalation", "Escalation", "0", true, escalationChoice...),
		integer("reassignment_count", "Reassignment count", "0"),
		choices("sys_class_name", "Task type", "", false, classNames...),
		withDefault(ref("sys_domain", "Domain", TableGroup), "global"),
		withDefault(str("sys_domain_path", "Domain path"), "/"),
		datetime("due_date", "Due date"),
		datetime("sla_due", "SLA due"),
		boolean("made_sla", "Made SLA", "true"),
		choices("upon_approval", "Upon approval", "proceed", false, "proceed", "Proceed to Next Task", "do_nothing", "Wait for a User to Close this task"),
		choices("upon_reject", "Upon reject", "cancel", false, "cancel", "Cancel all future Tasks", "goto", "Go to a previous Task"),
		boolean("knowledge", "Knowledge", "false"),
		integer("order", "Order", ""),
		str("time_worked", "Time worked"),
		datetime("expected_start", "Expected start"),
		datetime("business_duration", "Business duration"),
		datetime("calendar_duration", "Duration"),
		datetime("work_start", "Actual start"),
		datetime("work_end", "Actual end"),
		datetime("follow_up", "Follow up"),
		datetime("activity_due", "Activity due"),
		str("user_input", "User input"),
		ref("universal_request", "Universal Request", "task"),
		integer("route_reason", "Route reason", ""),
		str("sys_tags", "Tags"),
		datetime("sys_created_on", "Created"),
		str("sys_created_by", "Created by"),
		datetime("sys_updated_on", "Updated"),
		str("sys_updated_by", "Updated by"),
		integer("sys_mod_count", "Updates", "0"),
	}
}

// sysFields are the automatic fields of non-task tables.
func sysFields() []*fieldDef {
	return []*fieldDef{
		datetime("sys_created_on", "Created"),
		str("sys_created_by", "Created by"),
		datetime("sys_updated_on", "Updated"),
		str("sys_updated_by", "Updated by"),
		integer("sys_mod_count", "Updates", "0"),
	}
}

// newSchema builds the dictionary of every table the emulator serves.
func newSchema() map[string]*tableDef {
	incident := &tableDef{
		name: TableIncident, label: "Incident", numberPrefix: "INC", firstNumber: 10001, displayField: "number", task: true,
		fields: append(taskFields(
			choices("state", "State", "1", true, incidentStates...),
			choices("close_code", "Resolution code", "", false, incidentCloseCodes...),
		),
			choices("incident_state", "Incident state", "1", true, incidentStates...),
			ref("caller_id", "Caller", TableUser),
			choices("category", "Category", "inquiry", false, "inquiry", "Inquiry / Help", "software", "Software", "hardware", "Hardware", "network", "Network", "database", "Database", "security", "Security"),
			str("subcategory", "Subcategory"),
			choices("hold_reason", "On hold reason", "", true, holdReasons...),
			datetime("resolved_at", "Resolved"),
			ref("resolved_by", "Resolved by", TableUser),
			ref("problem_id", "Problem", TableProblem),
			ref("rfc", "Change Request", TableChangeRequest),
			ref("caused_by", "Caused by Change", TableChangeRequest),
			ref("parent_incident", "Parent Incident", TableIncident),
			integer("child_incidents", "Child Incidents", "0"),
			integer("reopen_count", "Reopen count", "0"),
			ref("reopened_by", "Last reopened by", TableUser),
			datetime("reopened_time", "Last reopened at"),
			choices("severity", "Severity", "3", true, impactChoices...),
			choices("notify", "Notify", "1", true, "1", "Do Not Notify", "2", "Send Email", "3", "Send SMS"),
			integer("business_stc", "Business resolve time", ""),
			integer("calendar_stc", "Resolve time", ""),
			ref("origin_id", "Origin", "task"),
			str("origin_table", "Origin table"),
		),
	}
	problem := &tableDef{
		name: TableProblem, label: "Problem", numberPrefix: "PRB", firstNumber: 40001, displayField: "number", task: true,
		fields: append(taskFields(
			choices("state", "State", "101", true, problemStates...),
			choices("close_code", "Close code", "", false),
		),
			choices("problem_state", "Problem state", "101", true, problemStates...),
			boolean("known_error", "Known error", "false"),
			str("cause_notes", "Cause notes"),
			str("fix_notes", "Fix notes"),
			str("workaround", "Workaround"),
			choices("resolution_code", "Resolution code", "", false, "fix_applied", "Fix Applied", "risk_accepted", "Risk Accepted", "duplicate", "Duplicate", "canceled", "Canceled"),
			ref("duplicate_of", "Duplicate of", TableProblem),
			ref("first_reported_by_task", "First reported by", "task"),
			datetime("resolved_at", "Resolved"),
			ref("resolved_by", "Resolved by", TableUser),
			integer("related_incidents", "Related Incidents", "0"),
			integer("reopen_count", "Reopen count", "0"),
			choices("category", "Category", "", false, "software", "Software", "hardware", "Hardware", "network", "Network", "database", "Database"),
			str("subcategory", "Subcategory"),
		),
	}
	change := &tableDef{
		name: TableChangeRequest, label: "Change Request", numberPrefix: "CHG", firstNumber: 30001, displayField: "number", task: true,
		fields: append(taskFields(
			choices("state", "State", "-5", true, changeStates...),
			choices("close_code", "Close code", "", false, "successful", "Successful", "successful_issues", "Successful with issues", "unsuccessful", "Unsuccessful"),
		),
			choices("type", "Type", "normal", false, "normal", "Normal", "standard", "Standard", "emergency", "Emergency"),
			ref("chg_model", "Model", "chg_model"),
			choices("risk", "Risk", "3", true, "1", "Very High", "2", "High", "3", "Moderate", "4", "Low"),
			choices("scope", "Scope", "3", true, "1", "Very Large", "2", "Large", "3", "Medium", "4", "Small", "5", "Very Small"),
			withDefault(str("category", "Category"), "Other"),
			datetime("start_date", "Planned start date"),
			datetime("end_date", "Planned end date"),
			ref("requested_by", "Requested by", TableUser),
			datetime("requested_by_date", "Requested by date"),
			str("implementation_plan", "Implementation plan"),
			str("backout_plan", "Backout plan"),
			str("test_plan", "Test plan"),
			str("change_plan", "Change plan"),
			str("justification", "Justification"),
			str("risk_impact_analysis", "Risk and impact analysis"),
			str("reason", "Reason"),
			boolean("on_hold", "On hold", "false"),
			str("on_hold_reason", "On hold reason"),
			ref("on_hold_task", "On hold task", "task"),
			ref("std_change_producer_version", "Standard change template version", "std_change_producer_version"),
			withDefault(str("conflict_status", "Conflict status"), "Not Run"),
			datetime("conflict_last_run", "Conflict last run"),
			boolean("cab_required", "CAB required", "false"),
			datetime("cab_date", "CAB date"),
			ref("cab_delegate", "CAB delegate", TableUser),
			str("cab_recommendation", "CAB recommendation"),
			choices("phase", "Phase", "requested", false, "requested", "Requested", "approval", "Approval", "accepted", "Accepted", "work", "Work", "complete", "Complete"),
			choices("phase_state", "Phase state", "open", false, "open", "Open", "on_hold", "On Hold", "closed", "Closed"),
			datetime("review_date", "Review date"),
			str("review_status", "Review status"),
			str("review_comments", "Review comments"),
			boolean("production_system", "Production system", "false"),
			boolean("outside_maintenance_schedule", "Outside maintenance schedule", "false"),
			boolean("unauthorized", "Unauthorized", "false"),
			ref("rejection_goto", "Rejection goto", "task"),
			ref("wf_activity", "Workflow activity", "wf_activity"),
			ref("delivery_plan", "Delivery plan", "sc_cat_item_delivery_plan"),
			ref("delivery_task", "Delivery task", "sc_cat_item_delivery_task"),
			ref("contract", "Contract", "ast_contract"),
			str("skills", "Skills"),
			withDefault(str("variables", "Variables"), "variable_pool"),
		),
	}
	user := &tableDef{
		name: TableUser, label: "User", displayField: "name",
		fields: append([]*fieldDef{
			str("sys_id", "Sys ID"),
			str("user_name", "User ID"),
			str("first_name", "First name"),
			str("last_name", "Last name"),
			str("name", "Name"),
			str("email", "Email"),
			ref("manager", "Manager", TableUser),
			boolean("active", "Active", "true"),
			boolean("locked_out", "Locked out", "false"),
			str("title", "Title"),
			str("department", "Department"),
			ref("company", "Company", "core_company"),
			ref("location", "Location", "cmn_location"),
			str("phone", "Business phone"),
			str("mobile_phone", "Mobile phone"),
			withDefault(str("time_zone", "Time zone"), "UTC"),
			str("date_format", "Date format"),
			str("roles", "Roles"),
			boolean("vip", "VIP", "false"),
			withDefault(ref("sys_domain", "Domain", TableGroup), "global"),
		}, sysFields()...),
	}
	group := &tableDef{
		name: TableGroup, label: "Group", displayField: "name",
		fields: append([]*fieldDef{
			str("sys_id", "Sys ID"),
			str("name", "Name"),
			str("description", "Description"),
			ref("manager", "Manager", TableUser),
			str("email", "Group email"),
			boolean("active", "Active", "true"),
			ref("parent", "Parent", TableGroup),
			str("type", "Type"),
		}, sysFields()...),
	}
	member := &tableDef{
		name: TableGroupMember, label: "Group Member", displayField: "sys_id",
		fields: append([]*fieldDef{
			str("sys_id", "Sys ID"),
			ref("user", "User", TableUser),
			ref("group", "Group", TableGroup),
		}, sysFields()...),
	}
	journalTable := &tableDef{
		name: TableJournal, label: "Journal Entry", displayField: "sys_id", readOnly: true,
		fields: []*fieldDef{
			str("sys_id", "Sys ID"),
			str("element_id", "Element ID"),
			str("name", "Name"),
			str("element", "Element"),
			str("value", "Value"),
			datetime("sys_created_on", "Created"),
			str("sys_created_by", "Created by"),
		},
	}
	audit := &tableDef{
		name: TableAudit, label: "Audit", displayField: "sys_id", readOnly: true,
		fields: []*fieldDef{
			str("sys_id", "Sys ID"),
			str("tablename", "Table name"),
			str("documentkey", "Document key"),
			str("fieldname", "Field name"),
			str("oldvalue", "Old value"),
			str("newvalue", "New value"),
			str("user", "User"),
			str("reason", "Reason"),
			integer("record_checkpoint", "Record checkpoint", "0"),
			integer("internal_checkpoint", "Internal checkpoint", "0"),
			datetime("sys_created_on", "Created"),
			str("sys_created_by", "Created by"),
		},
	}
	out := map[string]*tableDef{}
	for _, t := range []*tableDef{incident, problem, change, user, group, member, journalTable, audit} {
		t.byName = make(map[string]*fieldDef, len(t.fields))
		for _, f := range t.fields {
			t.byName[f.name] = f
		}
		out[t.name] = t
	}
	// Priority is computed from impact × urgency (§5.1); a 3×3 record is
	// Planning.
	incident.byName["priority"].def = "5"
	problem.byName["priority"].def = "5"
	return out
}

// taskTables are the tables a reference to "task" may point into.
var taskTables = []string{TableIncident, TableProblem, TableChangeRequest}
