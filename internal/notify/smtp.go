package notify

import (
	"context"
	"errors"
)

// SMTPMailer sends through an SMTP server. (Placeholder: being written.)
type SMTPMailer struct{ cfg SMTPConfig }

// NewSMTPMailer returns a mailer for cfg.
func NewSMTPMailer(cfg SMTPConfig) *SMTPMailer { return &SMTPMailer{cfg: cfg} }

// Send implements Mailer.
func (m *SMTPMailer) Send(ctx context.Context, msg Message, commit func(context.Context) error) (Reply, error) {
	return Reply{}, &SendError{Outcome: OutcomeTemporary, Step: "connect", Err: errors.New("not implemented yet")}
}
