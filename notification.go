package steward

import "time"

// NotificationKind says what an e-mail notification is.
type NotificationKind string

// Notification kinds.
const (
	// NotificationDigest is an owner's weekly digest of open assignments.
	NotificationDigest NotificationKind = "digest"
	// NotificationEscalation tells a manager which of their reports'
	// assignments are overdue.
	NotificationEscalation NotificationKind = "escalation"
)

// Valid reports whether k is a known kind.
func (k NotificationKind) Valid() bool {
	return k == NotificationDigest || k == NotificationEscalation
}

// NotificationState is where one planned e-mail is in its life.
type NotificationState string

// Valid reports whether s is a known state.
func (s NotificationState) Valid() bool {
	switch s {
	case NotificationPending, NotificationSending, NotificationSent, NotificationRetrying,
		NotificationFailed, NotificationUnknown, NotificationSkipped:
		return true
	}
	return false
}

// Notification states. pending and retrying are waiting to be sent; sent,
// failed, skipped and unknown are final until a person resends.
const (
	NotificationPending  NotificationState = "pending"
	NotificationSending  NotificationState = "sending"  // the message was handed over; the server's answer is awaited
	NotificationSent     NotificationState = "sent"     // the server accepted it
	NotificationRetrying NotificationState = "retrying" // refused for now (4xx) or not reached; tried again with backoff
	NotificationFailed   NotificationState = "failed"   // refused for good (5xx)
	// NotificationUnknown: the message was handed over but the answer was
	// lost (a crash or a dropped connection at the last step). It may or
	// may not have been delivered, so it is never sent again unless a
	// person says so.
	NotificationUnknown NotificationState = "unknown"
	// NotificationSkipped: when it was due to be sent there was nothing
	// left to tell (every assignment fixed, or opted out since).
	NotificationSkipped NotificationState = "skipped"
)

// Notification is one e-mail in the sent-log: a recipient, a kind and a
// period (an ISO week such as 2026-W48) make it unique, so it is sent once
// whatever retries, restarts or other processes do.
type Notification struct {
	ID        int64             `json:"id"`
	Recipient string            `json:"recipient"`
	Kind      NotificationKind  `json:"kind"`
	Period    string            `json:"period"`
	State     NotificationState `json:"state"`
	// Subjects are the owners an escalation is about (the manager's
	// reports); empty for a digest.
	Subjects []string `json:"subjects,omitempty"`
	Attempts int      `json:"attempts"`
	// LastError is why the last attempt did not end in sent.
	LastError string `json:"last_error,omitempty"`
	// Reply is the SMTP server's final answer to the message, e.g.
	// "250 2.0.0 Ok: queued as 4F2A1".
	Reply     string     `json:"reply,omitempty"`
	MessageID string     `json:"message_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	// NextAttemptAt is when a retrying notification is tried again.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// ManagerMapping names an owner's manager for overdue escalations when
// ServiceNow does not (the owner is no user of a linked integration, or
// has no manager there).
type ManagerMapping struct {
	Owner     string    `json:"owner"`
	Manager   string    `json:"manager"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// Where an owner's manager was found.
const (
	ManagerFromServiceNow = "servicenow"
	ManagerFromMapping    = "mapping"
	ManagerUnknown        = "none"
)

// OwnerManager is the manager Steward last found for an owner with
// overdue work, and where: ServiceNow's sys_user.manager, the mapping, or
// none (Manager empty, Detail says what was tried).
type OwnerManager struct {
	Owner      string    `json:"owner"`
	Manager    string    `json:"manager,omitempty"`
	Source     string    `json:"source"`
	Detail     string    `json:"detail,omitempty"`
	ResolvedAt time.Time `json:"resolved_at"`
}

// MailPreview is a rendered e-mail as it would be sent
// (GET /api/v1/notifications/preview).
type MailPreview struct {
	To      []string         `json:"to"`
	Kind    NotificationKind `json:"kind"`
	Subject string           `json:"subject"`
	Text    string           `json:"text"`
	HTML    string           `json:"html"`
	// Items is how many assignments the message lists; 0 means nothing
	// would be sent.
	Items int `json:"items"`
}

// MailTestResult is the SMTP server's answer to a test message
// (POST /api/v1/notifications/test).
type MailTestResult struct {
	To        string `json:"to"`
	Code      int    `json:"code"`
	Reply     string `json:"reply"`
	MessageID string `json:"message_id"`
}

// NotificationStatus is the notification setup at a glance
// (GET /api/v1/notifications/status).
type NotificationStatus struct {
	// Enabled is false when no SMTP server is configured: nothing is
	// planned or sent.
	Enabled bool `json:"enabled"`
	// SMTP describes the server without credentials, e.g.
	// "smtp.example.com:587 (starttls) as steward@example.com".
	SMTP string `json:"smtp,omitempty"`
	// Schedule is the digest's time, e.g. "Monday 08:00 Europe/Berlin".
	Schedule   string    `json:"schedule"`
	NextDigest time.Time `json:"next_digest"`
	// Counts are the sent-log's notifications by state.
	Counts map[NotificationState]int `json:"counts"`
	// Attention lists the notifications a person should look at:
	// retrying, failed and unknown, newest first (at most 50).
	Attention []Notification `json:"attention"`
	// OwnersWithoutManager are owners with overdue work whose manager
	// could not be found at the last escalation.
	OwnersWithoutManager []OwnerManager `json:"owners_without_manager"`
}

// MailTestRequest is POST /api/v1/notifications/test's body.
type MailTestRequest struct {
	To string `json:"to"`
}

// ManagerRequest is PUT /api/v1/managers/{owner}'s body.
type ManagerRequest struct {
	Manager string `json:"manager"`
}
