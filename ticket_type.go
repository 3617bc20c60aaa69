package steward

import "strings"

// TicketType is the kind of ITSM record an assignment opens (DESIGN.md:
// incident, problem or change request). Its values are stored and appear in
// the API: never rename one.
type TicketType string

// The ticket types.
const (
	TicketTypeIncident      TicketType = "incident"
	TicketTypeProblem       TicketType = "problem"
	TicketTypeChangeRequest TicketType = "change_request"
)

// TicketTypes lists every ticket type.
var TicketTypes = []TicketType{TicketTypeIncident, TicketTypeProblem, TicketTypeChangeRequest}

// ParseTicketType accepts the three types in any letter case, with "change
// request", "change-request" and "change" as spellings of change_request.
func ParseTicketType(s string) (TicketType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "incident":
		return TicketTypeIncident, nil
	case "problem":
		return TicketTypeProblem, nil
	case "change_request", "change request", "change-request", "change":
		return TicketTypeChangeRequest, nil
	}
	return "", Errorf(CodeInvalid, "unknown ticket type %q (want incident, problem or change_request)", s)
}
