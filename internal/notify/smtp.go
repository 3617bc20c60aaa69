package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// defaultTimeout bounds connecting and each read or write when
// SMTPConfig.Timeout is 0.
const defaultTimeout = 30 * time.Second

// SMTPMailer sends through an SMTP server, one connection per message.
//
// Failures are *SendError. Their outcomes: a 4xx answer is temporary and a
// 5xx answer permanent, whatever the step; a network failure before the
// final "." of DATA is temporary (the server cannot have taken the
// message); a failure after the final "." was written and before its
// answer is unknown. TLS failures (no STARTTLS offered, a certificate not
// trusted or for another name) are temporary, not permanent: they do not
// fix themselves by the next try, but they are fixed by a person changing
// the server or Steward's settings, and the message should then go
// without anyone having to resend it; until then the retries fail the
// same way and say why.
type SMTPMailer struct{ cfg SMTPConfig }

// NewSMTPMailer returns a mailer for cfg.
func NewSMTPMailer(cfg SMTPConfig) *SMTPMailer { return &SMTPMailer{cfg: cfg} }

// Send implements Mailer. The password is never part of an error.
func (m *SMTPMailer) Send(ctx context.Context, msg Message, commit func(context.Context) error) (Reply, error) {
	if msg.MessageID == "" {
		msg.MessageID = newMessageID(msg.From)
	}
	data, err := msg.Bytes()
	if err != nil {
		return Reply{}, &SendError{Outcome: OutcomePermanent, Step: "message", Err: err}
	}
	from, err := mail.ParseAddress(msg.From)
	if err != nil { // Bytes checked it
		return Reply{}, &SendError{Outcome: OutcomePermanent, Step: "message", Err: err}
	}
	to := make([]string, len(msg.To))
	for i, t := range msg.To {
		a, err := mail.ParseAddress(t)
		if err != nil { // Bytes checked them
			return Reply{}, &SendError{Outcome: OutcomePermanent, Step: "message", Err: err}
		}
		to[i] = a.Address
	}

	timeout := m.cfg.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", m.cfg.Address())
	if err != nil {
		return Reply{}, failure(ctx, "connect", err, false)
	}
	// Ending ctx closes the connection, which ends whatever read or write
	// is waiting.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	conn := &deadlineConn{Conn: raw, timeout: timeout}
	defer conn.Close()

	tlsConfig := &tls.Config{ServerName: m.cfg.Host, RootCAs: m.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	var c *smtp.Client
	switch m.cfg.TLS {
	case TLSImplicit:
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return Reply{}, failure(ctx, "tls", err, false)
		}
		c = smtp.NewClient(tc)
	case TLSStartTLS:
		// Refuses a server that does not offer STARTTLS: never goes on in
		// clear text. (This first EHLO says "localhost": go-smtp gives no
		// way to name ourselves before STARTTLS; the EHLO that counts,
		// after it, gives LocalName.)
		c, err = smtp.NewClientStartTLS(conn, tlsConfig)
		if err != nil {
			return Reply{}, failure(ctx, "starttls", err, false)
		}
	case TLSNone:
		c = smtp.NewClient(conn)
	default:
		return Reply{}, &SendError{Outcome: OutcomeTemporary, Step: "connect",
			Err: fmt.Errorf("TLS mode %q is not one of starttls, tls, none", m.cfg.TLS)}
	}
	c.CommandTimeout = timeout
	c.SubmissionTimeout = timeout

	localName := m.cfg.LocalName
	if localName == "" {
		localName = "localhost"
	}
	if err := c.Hello(localName); err != nil {
		step := "ehlo"
		if m.cfg.TLS == TLSStartTLS && isTLSError(err) {
			step = "starttls" // the handshake happens with the first write after STARTTLS
		}
		return Reply{}, failure(ctx, step, err, false)
	}

	if m.cfg.Username != "" {
		if _, ok := c.TLSConnectionState(); !ok {
			return Reply{}, &SendError{Outcome: OutcomeTemporary, Step: "auth",
				Err: errors.New("refusing to send the SMTP password over a connection without TLS")}
		}
		password := m.cfg.Password.Reveal()
		if err := c.Auth(sasl.NewPlainClient("", m.cfg.Username, password)); err != nil {
			se := failure(ctx, "auth", err, false)
			// A server may echo what it was sent in its answer.
			se.Reply.Message = redact(se.Reply.Message, m.cfg.Username, password)
			return Reply{}, se
		}
	}

	var opts *smtp.MailOptions
	if !isASCII(from.Address) || !isASCII(to...) {
		opts = &smtp.MailOptions{UTF8: true}
	}
	if err := c.Mail(from.Address, opts); err != nil {
		return Reply{}, failure(ctx, "mail from", err, false)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return Reply{}, failure(ctx, "rcpt to", err, false)
		}
	}
	w, err := c.Data()
	if err != nil {
		return Reply{}, failure(ctx, "data", err, false)
	}
	if _, err := w.Write(data); err != nil {
		return Reply{}, failure(ctx, "data", err, false)
	}
	if commit != nil {
		if err := commit(ctx); err != nil {
			// Closing without the final "." abandons the transaction: the
			// server discards what it received (the deferred Close).
			return Reply{}, &SendError{Outcome: OutcomeTemporary, Step: "commit", Err: err}
		}
	}
	conn.finalStep = true
	resp, err := w.CloseWithResponse()
	if err != nil {
		// Only when every byte up to the final "." was written can the
		// server have taken the message.
		return Reply{}, failure(ctx, "end of data", err, conn.writeErr == nil)
	}
	// The message is the server's now; a failed QUIT changes nothing.
	_ = c.Quit()
	return Reply{Code: 250, Message: resp.StatusText}, nil
}

// failure is the SendError for err at step. afterFinal says the final "."
// of DATA was written, so that no answer means the message may have been
// delivered.
func failure(ctx context.Context, step string, err error, afterFinal bool) *SendError {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		reply := Reply{Code: se.Code, Message: se.Message}
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != smtp.EnhancedCodeNotSet {
			reply.Message = fmt.Sprintf("%d.%d.%d %s", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
		}
		out := OutcomeTemporary
		switch {
		case se.Code >= 500 && se.Code < 600:
			out = OutcomePermanent
		case se.Code >= 400 && se.Code < 500:
			out = OutcomeTemporary
		case afterFinal:
			out = OutcomeUnknown // an answer that is neither yes nor no
		}
		return &SendError{Outcome: out, Reply: reply, Step: step}
	}
	if ctx.Err() != nil {
		// The connection was closed because ctx ended: say so rather than
		// "use of closed network connection" alone.
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	out := OutcomeTemporary
	if afterFinal {
		out = OutcomeUnknown
	}
	return &SendError{Outcome: out, Step: step, Err: err}
}

// redact removes password from s, as it is and as AUTH PLAIN sends it.
func redact(s, username, password string) string {
	if password == "" {
		return s
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + username + "\x00" + password))
	return strings.NewReplacer(password, "[redacted]", plain, "[redacted]").Replace(s)
}

// isTLSError says err is a TLS handshake or certificate failure.
func isTLSError(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		record    tls.RecordHeaderError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &record) ||
		errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

func isASCII(ss ...string) bool {
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return false
			}
		}
	}
	return true
}

// deadlineConn gives every read and write its own deadline of timeout from
// when it starts, so that a silent server fails the send within timeout
// of its last word. It ignores the deadlines go-smtp sets (5 and 12
// minutes before its timeouts can be changed, none while DATA is written),
// and remembers whether a write failed, which tells whether the final "."
// of DATA can have reached the server.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
	// finalStep is set before the final "." is written; writeErr is the
	// first write failure from then on.
	finalStep bool
	writeErr  error
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (n int, err error) {
	defer func() {
		if err != nil && c.finalStep && c.writeErr == nil {
			c.writeErr = err
		}
	}()
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *deadlineConn) SetDeadline(time.Time) error      { return nil }
func (c *deadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (c *deadlineConn) SetWriteDeadline(time.Time) error { return nil }
