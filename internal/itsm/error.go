package itsm

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// ErrorKind says what went wrong in an ITSM call. Callers branch on it; the
// set grows only when some caller needs a new branch. Kinds are stable
// strings usable as metric labels.
type ErrorKind string

// The error kinds.
const (
	// KindAuth: the credentials were refused (bad user name/password, bad
	// client ID/secret, expired refresh token). Message says which
	// credential when the ITSM tells them apart, and both otherwise.
	KindAuth ErrorKind = "auth"
	// KindForbidden: authenticated, but a role or ACL denies the operation.
	KindForbidden ErrorKind = "forbidden"
	// KindNotFound: the record (or user) does not exist or an ACL hides it.
	KindNotFound ErrorKind = "not_found"
	// KindAmbiguous: a lookup that must match one record matched several
	// (e.g. two active users share an e-mail address).
	KindAmbiguous ErrorKind = "ambiguous"
	// KindDataPolicy: the ITSM's data policy rejected the write, usually a
	// mandatory field missing (ServiceNow: 403 "Data Policy Exception").
	KindDataPolicy ErrorKind = "data_policy"
	// KindTransitionRefused: a state change was accepted with success but
	// the record kept its old state (ServiceNow problem and change state
	// models, reference §5.2/§5.3).
	KindTransitionRefused ErrorKind = "transition_refused"
	// KindInvalid: the request itself is wrong (400-class answers other
	// than the above, or a request the provider refuses to send).
	KindInvalid ErrorKind = "invalid"
	// KindInvalidTable: the table does not exist on the instance.
	KindInvalidTable ErrorKind = "invalid_table"
	// KindRateLimited: the ITSM asked to slow down (429); see RetryAfter.
	KindRateLimited ErrorKind = "rate_limited"
	// KindUnavailable: the ITSM answered with a server error (5xx) or
	// queued and dropped the request.
	KindUnavailable ErrorKind = "unavailable"
	// KindNetwork: no usable answer arrived: DNS failure, TLS failure,
	// connection refused, timeout, connection dropped. Message says which.
	KindNetwork ErrorKind = "network"
	// KindBadResponse: an answer arrived but cannot be trusted: unparsable
	// JSON, an HTML page, a body with both result and error (a transaction
	// cancelled while streaming), or too large.
	KindBadResponse ErrorKind = "bad_response"
	// KindCanceled: the caller's context was canceled.
	KindCanceled ErrorKind = "canceled"
)

// Error describes a failed ITSM call. It never holds credentials, tokens
// or URLs with query strings.
type Error struct {
	Op    string // what Steward tried: "create", "get", "update", "list", "lookup user", "token", "validate"
	Table string // "incident"; "" when not table-specific
	// Status is the HTTP status, 0 when no answer arrived.
	Status int
	// Retryable says whether the same call may succeed later unchanged.
	Retryable bool
	// RetryAfter is how long the ITSM asked to wait (429/503), 0 if it did
	// not say.
	RetryAfter time.Duration
	Kind       ErrorKind
	// Message is a complete sentence fragment safe to show users: what
	// failed and what to check.
	Message string
	// Detail and TransactionID come from the ITSM's answer (ServiceNow's
	// error.detail and X-Transaction-ID) for support cases.
	Detail        string
	TransactionID string
	// Err is the underlying cause, for logs and errors.Is.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Table != "" {
		b.WriteString(" ")
		b.WriteString(e.Table)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	if e.Detail != "" && !strings.Contains(e.Message, e.Detail) {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Status != 0 || e.TransactionID != "" {
		b.WriteString(" (")
		if e.Status != 0 {
			fmt.Fprintf(&b, "HTTP %d", e.Status)
		}
		if e.TransactionID != "" {
			if e.Status != 0 {
				b.WriteString(", ")
			}
			b.WriteString("transaction ")
			b.WriteString(e.TransactionID)
		}
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns a *steward.Error carrying Code and the user-safe message
// (first, so steward.ErrorCode and steward.ErrorMessage describe this
// error rather than a cause), then the cause.
func (e *Error) Unwrap() []error {
	se := &steward.Error{Code: e.Code(), Message: e.userMessage()}
	if e.Err == nil {
		return []error{se}
	}
	return []error{se, e.Err}
}

func (e *Error) userMessage() string {
	msg := e.Message
	if e.Detail != "" && !strings.Contains(msg, e.Detail) {
		msg += ": " + e.Detail
	}
	return msg
}

// Code maps the kind to a steward.Code. Credential and permission
// failures are CodeInvalid, not CodeUnauthorized: they mean the
// integration's configuration is wrong, not that the Steward user's own
// session is.
func (e *Error) Code() steward.Code {
	switch e.Kind {
	case KindNotFound:
		return steward.CodeNotFound
	case KindAmbiguous:
		return steward.CodeConflict
	case KindAuth, KindForbidden, KindDataPolicy, KindTransitionRefused, KindInvalid, KindInvalidTable:
		return steward.CodeInvalid
	case KindRateLimited, KindUnavailable, KindNetwork, KindBadResponse:
		return steward.CodeUnavailable
	}
	return steward.CodeInternal
}

// IsKind reports whether err's chain holds an *Error of kind k.
func IsKind(err error, k ErrorKind) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Kind == k
}

// IsRetryable reports whether err's chain holds a retryable *Error.
func IsRetryable(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Retryable
}
