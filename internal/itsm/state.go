package itsm

import (
	"strconv"
	"strings"

	"github.com/stewardhq/steward"
)

// stateModel is one table's state values: raw value, label, normalized
// state. The first entry for a normalized state is what RawState writes.
type stateModel []struct {
	raw   string
	label string
	state steward.TicketState
}

// stateModels are the base-system state models of the ServiceNow
// reference §5. A table extending incident, problem or change_request uses
// its parent's model through BaseTable.
var stateModels = map[string]stateModel{
	// §5.1. There is no 4 or 5 in the current model.
	"incident": {
		{"1", "New", steward.TicketNew},
		{"2", "In Progress", steward.TicketInProgress},
		{"3", "On Hold", steward.TicketOnHold},
		{"6", "Resolved", steward.TicketResolved},
		{"7", "Closed", steward.TicketClosed},
		{"8", "Canceled", steward.TicketCanceled},
	},
	// §5.2, the Madrid-and-later model (no 105). Assess, Root Cause
	// Analysis and Fix in Progress are all work in progress. A problem has
	// no Canceled state: it is Closed with resolution_code "canceled", so
	// RawState(problem, Canceled) is 107 and providers add the resolution
	// code.
	"problem": {
		{"101", "New", steward.TicketNew},
		{"102", "Assess", steward.TicketInProgress},
		{"103", "Root Cause Analysis", steward.TicketInProgress},
		{"104", "Fix in Progress", steward.TicketInProgress},
		{"106", "Resolved", steward.TicketResolved},
		{"107", "Closed", steward.TicketClosed},
	},
	// §5.3. Assess through Implement are work in progress. Review comes
	// after implementation, when the remediation is done and only the
	// change's own review is pending, so it counts as Resolved (like a
	// resolved incident waiting to be closed).
	"change_request": {
		{"-5", "New", steward.TicketNew},
		{"-4", "Assess", steward.TicketInProgress},
		{"-3", "Authorize", steward.TicketInProgress},
		{"-2", "Scheduled", steward.TicketInProgress},
		{"-1", "Implement", steward.TicketInProgress},
		{"0", "Review", steward.TicketResolved},
		{"3", "Closed", steward.TicketClosed},
		{"4", "Canceled", steward.TicketCanceled},
	},
}

// BaseTable returns the base table whose state model table follows:
// table itself for incident, problem and change_request, else "". An
// integration that maps a ticket type to a table extending one of them
// passes the base table's name to the state functions.
func BaseTable(table string) string {
	if _, ok := stateModels[table]; ok {
		return table
	}
	return ""
}

// NormalizeState maps a table's raw state value onto a normalized state.
// Raw values may come as JSON numbers ("-5.0" is -5).
func NormalizeState(table, raw string) (steward.TicketState, error) {
	m, ok := stateModels[table]
	if !ok {
		return "", steward.Errorf(steward.CodeInvalid, "no state model for table %q (want incident, problem or change_request)", table)
	}
	raw = CanonicalNumber(raw)
	for _, s := range m {
		if s.raw == raw {
			return s.state, nil
		}
	}
	return "", steward.Errorf(steward.CodeInvalid, "unknown %s state %q", table, raw)
}

// RawState maps a normalized state onto the raw value a table stores.
func RawState(table string, state steward.TicketState) (string, error) {
	m, ok := stateModels[table]
	if !ok {
		return "", steward.Errorf(steward.CodeInvalid, "no state model for table %q (want incident, problem or change_request)", table)
	}
	if table == "problem" && state == steward.TicketCanceled {
		state = steward.TicketClosed
	}
	for _, s := range m {
		if s.state == state {
			return s.raw, nil
		}
	}
	return "", steward.Errorf(steward.CodeInvalid, "%s has no state for %q", table, state)
}

// StateLabel returns the base-system label of a raw state ("In Progress"),
// or "" when unknown.
func StateLabel(table, raw string) string {
	raw = CanonicalNumber(raw)
	for _, s := range stateModels[table] {
		if s.raw == raw {
			return s.label
		}
	}
	return ""
}

// CanonicalNumber turns a number written as a float with a zero fraction
// ("-5.0", "3.00") into its integer form ("-5", "3"): some recorded
// answers carry numeric fields as JSON numbers. Anything else is returned
// unchanged.
func CanonicalNumber(s string) string {
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || whole == "" || strings.Trim(frac, "0") != "" {
		return s
	}
	if _, err := strconv.ParseInt(whole, 10, 64); err != nil {
		return s
	}
	if whole == "-0" {
		return "0"
	}
	return whole
}
