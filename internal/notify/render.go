package notify

import (
	"errors"
	"time"

	"github.com/stewardhq/steward/internal/store"
)

// Digest is what an owner's weekly digest tells of.
type Digest struct {
	Owner string
	// Items are the owner's open assignments, by due date.
	Items []store.NotificationItem
	// Now splits the items into overdue, due this week (within 7 days)
	// and later; Location is the zone dates are written in.
	Now      time.Time
	Location *time.Location
	// PublicURL is Steward's base URL for links, without a trailing slash.
	PublicURL string
	// Period is the ISO week, e.g. 2026-W48.
	Period string
}

// Escalation is what a manager is told of their reports' overdue work.
type Escalation struct {
	Manager string
	// Items are the reports' overdue assignments (Owner set), by due date.
	Items     []store.NotificationItem
	Now       time.Time
	Location  *time.Location
	PublicURL string
	Period    string
}

// RenderDigest renders an owner's digest (To, Subject, Text, HTML).
// (Placeholder: being written.)
func RenderDigest(d Digest) (Message, error) { return Message{}, errors.New("not implemented yet") }

// RenderEscalation renders a manager's escalation. (Placeholder.)
func RenderEscalation(e Escalation) (Message, error) {
	return Message{}, errors.New("not implemented yet")
}

// RenderTest renders the message `steward notify test` sends. (Placeholder.)
func RenderTest(to, publicURL string, now time.Time) Message { return Message{To: []string{to}} }
