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

// Overview is the state of things at a glance, within the caller's scope
// (GET /api/v1/overview): what is unhealthy, and whether assignments are
// keeping up.
type Overview struct {
	// Unhealthy counts unhealthy findings by severity and cloud, most
	// severe first; only non-zero pairs are listed.
	Unhealthy   []UnhealthyCount `json:"unhealthy"`
	Assignments AssignmentCounts `json:"assignments"`
}

// UnhealthyCount is how many findings of one severity in one cloud are
// unhealthy.
type UnhealthyCount struct {
	Severity Severity `json:"severity"`
	Cloud    Cloud    `json:"cloud"`
	Count    int      `json:"count"`
}

// AssignmentCounts splits the active assignments by due date.
type AssignmentCounts struct {
	Active int `json:"active"`
	// Overdue are past their due date.
	Overdue int `json:"overdue"`
	// DueSoon are due within the next 7 days, not yet overdue.
	DueSoon int `json:"due_soon"`
	// OnTime are neither.
	OnTime int `json:"on_time"`
}
