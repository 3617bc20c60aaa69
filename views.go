package steward

// Views are the shapes the API answers with that are more than one record:
// the API writes them and apiclient reads them, so both share this one
// definition instead of keeping copies that could drift.

// TicketView is a ticket with what a ticket listing shows of its
// assignment (GET /api/v1/tickets and /api/v1/tickets/{id}).
type TicketView struct {
	Ticket
	Owner             string          `json:"owner"`
	ResourceID        string          `json:"resource_id"`
	RecommendationKey string          `json:"recommendation_key"`
	Severity          Severity        `json:"severity"`
	AssignmentState   AssignmentState `json:"assignment_state"`
}

// AssignmentDetail is an assignment with its history
// (GET /api/v1/assignments/{id}).
type AssignmentDetail struct {
	Assignment
	History []AssignmentEvent `json:"history"`
}
