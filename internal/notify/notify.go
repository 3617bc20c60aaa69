// Package notify sends Steward's e-mail: each owner's weekly digest of open
// assignments and the overdue escalation to their managers, exactly once
// per recipient, kind and week (docs/notifications.md). The sent-log in the
// store decides what may be sent; River's jobs only carry the work.
package notify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/stewardhq/steward/internal/secret"
)

// TLSMode is how the connection to the SMTP server is secured.
type TLSMode string

// TLS modes.
const (
	// TLSStartTLS connects in clear text and upgrades with STARTTLS before
	// anything else is said; a server that does not offer it is refused.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit TLSMode = "tls"
	// TLSNone sends in clear text (a relay on the same host).
	TLSNone TLSMode = "none"
)

// SMTPConfig is the SMTP server e-mail is sent through.
type SMTPConfig struct {
	Host string
	Port int
	TLS  TLSMode
	// Username and Password authenticate (AUTH PLAIN) when Username is
	// set; never without TLS.
	Username string
	Password secret.String
	// From is the sender address, e.g. "Steward <steward@example.com>".
	From string
	// RootCAs verifies the server's certificate; nil uses the system's.
	RootCAs *x509.CertPool
	// Timeout bounds connecting and each command; 0 means 30 s.
	Timeout time.Duration
	// LocalName is the name given in EHLO; "" means "localhost".
	LocalName string
}

// Address is host:port.
func (c SMTPConfig) Address() string { return fmt.Sprintf("%s:%d", c.Host, c.Port) }

// Message is one e-mail.
type Message struct {
	From    string
	To      []string
	Subject string
	// Text and HTML are the plain text and HTML alternatives of the body;
	// both are sent (multipart/alternative).
	Text string
	HTML string
	// MessageID is the Message-ID header without angle brackets; the
	// mailer makes one when it is empty.
	MessageID string
	// Date is the Date header; zero means when it is sent.
	Date time.Time
}

// Reply is an SMTP server's answer, e.g. 250 "2.0.0 Ok: queued as 4F2A1".
type Reply struct {
	Code    int
	Message string
}

func (r Reply) String() string {
	if r.Code == 0 {
		return r.Message
	}
	return fmt.Sprintf("%d %s", r.Code, r.Message)
}

// Mailer hands messages to an SMTP server.
type Mailer interface {
	// Send delivers msg and returns the server's final answer. commit,
	// when not nil, is called once the server has accepted the sender, the
	// recipients and the whole content, just before the final step that
	// makes the server take responsibility for the message (the "." that
	// ends DATA): an error from it abandons the message, which is then not
	// delivered. A failure is a *SendError saying whether the message may
	// have been delivered.
	Send(ctx context.Context, msg Message, commit func(context.Context) error) (Reply, error)
}

// Outcome says what a failed send means for the message.
type Outcome int

// Outcomes of a failed send.
const (
	// OutcomeTemporary: not delivered, and trying again later may work
	// (a 4xx answer, the server unreachable, a connection lost before the
	// final step, commit failed).
	OutcomeTemporary Outcome = iota + 1
	// OutcomePermanent: not delivered, and trying again will not help
	// (a 5xx answer, e.g. an unknown recipient or a refused login).
	OutcomePermanent
	// OutcomeUnknown: the final step was taken but its answer never came
	// (the connection dropped or timed out): the message may have been
	// delivered.
	OutcomeUnknown
)

func (o Outcome) String() string {
	switch o {
	case OutcomeTemporary:
		return "temporary"
	case OutcomePermanent:
		return "permanent"
	case OutcomeUnknown:
		return "unknown"
	}
	return "invalid"
}

// SendError is a failed send.
type SendError struct {
	Outcome Outcome
	// Reply is the server's refusal; zero when it said nothing.
	Reply Reply
	// Step is what was being done: "connect", "starttls", "tls" (the
	// implicit TLS handshake), "ehlo", "auth", "mail from", "rcpt to",
	// "data", "commit", "end of data", or "message" (it could not be
	// written: a bad address or Message-ID).
	Step string
	Err  error
}

func (e *SendError) Error() string {
	msg := "send e-mail: " + e.Step
	if e.Reply.Code != 0 {
		msg += ": the server answered " + e.Reply.String()
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *SendError) Unwrap() error { return e.Err }

// OutcomeOf returns the outcome of a Send error: a *SendError's, else
// OutcomeTemporary (e.g. a cancelled context before anything was sent).
func OutcomeOf(err error) Outcome {
	var se *SendError
	if errors.As(err, &se) {
		return se.Outcome
	}
	return OutcomeTemporary
}
