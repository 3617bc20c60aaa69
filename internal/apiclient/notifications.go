package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/stewardhq/steward"
)

// NotificationFilter selects sent-log rows (GET /api/v1/notifications).
// Zero fields do not filter.
type NotificationFilter struct {
	States    []steward.NotificationState
	Kind      steward.NotificationKind
	Period    string // an ISO week, e.g. 2026-W48
	Recipient string
	Cursor    string
	Limit     int
}

func (f NotificationFilter) query() url.Values {
	q := url.Values{}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			states[i] = string(s)
		}
		q.Set("state", strings.Join(states, ","))
	}
	if f.Kind != "" {
		q.Set("kind", string(f.Kind))
	}
	if f.Period != "" {
		q.Set("period", f.Period)
	}
	if f.Recipient != "" {
		q.Set("recipient", f.Recipient)
	}
	if f.Cursor != "" {
		q.Set("cursor", f.Cursor)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// ListNotifications lists the sent-log, newest first, a page at a time.
func (c *Client) ListNotifications(ctx context.Context, f NotificationFilter) (*Page[steward.Notification], error) {
	var out Page[steward.Notification]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/notifications", f.query(), nil, &out)
}

// Notification returns one notification of the sent-log.
func (c *Client) Notification(ctx context.Context, id int64) (*steward.Notification, error) {
	var out steward.Notification
	return &out, c.do(ctx, http.MethodGet, "/api/v1/notifications/"+strconv.FormatInt(id, 10), nil, nil, &out)
}

// ResendNotification sends a failed, unknown or retrying notification
// again.
func (c *Client) ResendNotification(ctx context.Context, id int64) (*steward.Notification, error) {
	var out steward.Notification
	return &out, c.do(ctx, http.MethodPost, "/api/v1/notifications/"+strconv.FormatInt(id, 10)+"/resend", nil, nil, &out)
}

// NotificationStatus describes the notification setup and what needs
// attention.
func (c *Client) NotificationStatus(ctx context.Context) (*steward.NotificationStatus, error) {
	var out steward.NotificationStatus
	return &out, c.do(ctx, http.MethodGet, "/api/v1/notifications/status", nil, nil, &out)
}

// PreviewNotification renders what recipient would receive now: an
// owner's digest (kind digest) or a manager's escalation (kind
// escalation).
func (c *Client) PreviewNotification(ctx context.Context, kind steward.NotificationKind, recipient string) (*steward.MailPreview, error) {
	param := "owner"
	if kind == steward.NotificationEscalation {
		param = "manager"
	}
	var out steward.MailPreview
	return &out, c.do(ctx, http.MethodGet, "/api/v1/notifications/preview", url.Values{param: {recipient}}, nil, &out)
}

// SendTestMail sends a test message to one address and returns the SMTP
// server's answer.
func (c *Client) SendTestMail(ctx context.Context, to string) (*steward.MailTestResult, error) {
	var out steward.MailTestResult
	return &out, c.do(ctx, http.MethodPost, "/api/v1/notifications/test", nil, steward.MailTestRequest{To: to}, &out)
}

// ListManagers lists the owner → manager mapping, by owner.
func (c *Client) ListManagers(ctx context.Context) (*Page[steward.ManagerMapping], error) {
	var out Page[steward.ManagerMapping]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/managers", nil, nil, &out)
}

// SetManager names owner's manager, replacing an earlier one.
func (c *Client) SetManager(ctx context.Context, owner, manager string) (*steward.ManagerMapping, error) {
	var out steward.ManagerMapping
	return &out, c.do(ctx, http.MethodPut, "/api/v1/managers/"+url.PathEscape(owner), nil, steward.ManagerRequest{Manager: manager}, &out)
}

// DeleteManager removes owner's mapping and returns it as it was.
func (c *Client) DeleteManager(ctx context.Context, owner string) (*steward.ManagerMapping, error) {
	var out steward.ManagerMapping
	return &out, c.do(ctx, http.MethodDelete, "/api/v1/managers/"+url.PathEscape(owner), nil, nil, &out)
}
