package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/notify"
	"github.com/stewardhq/steward/internal/notify/smtptest"
	"github.com/stewardhq/steward/internal/secret"
)

func smtpConfig(s *smtptest.Server, mode notify.TLSMode) notify.SMTPConfig {
	return notify.SMTPConfig{Host: s.Host(), Port: s.Port(), TLS: mode, From: "Steward <steward@example.com>",
		RootCAs: s.CertPool(), Timeout: 10 * time.Second, LocalName: "steward.test"}
}

func testMessage() notify.Message {
	return notify.Message{
		From:    "Steward <steward@example.com>",
		To:      []string{"Zoë Ämtli <zoe@example.com>"},
		Subject: "Wöchentliche Übersicht: 3 offene Aufgaben",
		Text:    "Hello Zoë,\n\n" + "a long line of text that goes on " + fmt.Sprint(make([]int, 40)) + "\n.dot\n",
		HTML:    "<p>Hello Zoë,</p>\n<p><a href=\"https://steward.example.com/x?a=1&amp;b=2\">open</a></p>\n",
	}
}

// sendError requires err to be a *SendError with outcome and step.
func sendError(t *testing.T, err error, outcome notify.Outcome, step string) *notify.SendError {
	t.Helper()
	var se *notify.SendError
	require.ErrorAs(t, err, &se)
	require.Equal(t, outcome, se.Outcome, "%v", err)
	require.Equal(t, step, se.Step, "%v", err)
	require.Equal(t, outcome, notify.OutcomeOf(err))
	return se
}

func TestSMTPSendPlain(t *testing.T) {
	s := smtptest.Start(t)
	msg := testMessage()
	reply, err := notify.NewSMTPMailer(smtpConfig(s, notify.TLSNone)).Send(t.Context(), msg, nil)
	require.NoError(t, err)
	require.Equal(t, 250, reply.Code)
	require.Contains(t, reply.Message, "2.0.0")

	got := s.WaitMessages(t, 1)
	require.Len(t, got, 1)
	r := got[0]
	require.NoError(t, r.ParseErr)
	require.Equal(t, "steward@example.com", r.From)
	require.Equal(t, []string{"zoe@example.com"}, r.To)
	require.Equal(t, msg.Subject, r.Subject)
	require.Equal(t, msg.Text, r.Text)
	require.Equal(t, msg.HTML, r.HTML)
	require.Regexp(t, `^steward\.[a-z0-9]+@example\.com$`, r.MessageID, "made in From's domain")
	require.Equal(t, "steward.test", r.Hello)
	require.False(t, r.TLS)
	require.Empty(t, r.AuthUser)
	require.Equal(t, 1, s.Transactions())
}

func TestSMTPSendKeepsMessageID(t *testing.T) {
	s := smtptest.Start(t)
	msg := testMessage()
	msg.To = []string{"a@example.com", "b@example.com"}
	msg.MessageID = "steward.7.digest.2026-W10@example.com"
	_, err := notify.NewSMTPMailer(smtpConfig(s, notify.TLSNone)).Send(t.Context(), msg, nil)
	require.NoError(t, err)
	r := s.WaitMessages(t, 1)[0]
	require.Equal(t, msg.MessageID, r.MessageID)
	require.Equal(t, msg.To, r.To)
}

func TestSMTPStartTLS(t *testing.T) {
	s := smtptest.Start(t, smtptest.WithSTARTTLS())
	_, err := notify.NewSMTPMailer(smtpConfig(s, notify.TLSStartTLS)).Send(t.Context(), testMessage(), nil)
	require.NoError(t, err)
	r := s.WaitMessages(t, 1)[0]
	require.True(t, r.TLS)
	require.Equal(t, "steward.test", r.Hello, "the EHLO after STARTTLS gives LocalName")

	// Without the kit's CA the certificate is not trusted: no fallback to
	// clear text, nothing handed over.
	cfg := smtpConfig(s, notify.TLSStartTLS)
	cfg.RootCAs = nil
	_, err = notify.NewSMTPMailer(cfg).Send(t.Context(), testMessage(), nil)
	sendError(t, err, notify.OutcomeTemporary, "starttls")
	require.ErrorContains(t, err, "certificate")
	require.Equal(t, 1, s.Transactions())
	require.Len(t, s.Messages(), 1)
}

func TestSMTPStartTLSNotOffered(t *testing.T) {
	s := smtptest.Start(t) // no STARTTLS
	var committed atomic.Int32
	_, err := notify.NewSMTPMailer(smtpConfig(s, notify.TLSStartTLS)).Send(t.Context(), testMessage(),
		func(context.Context) error { committed.Add(1); return nil })
	sendError(t, err, notify.OutcomeTemporary, "starttls")
	require.ErrorContains(t, err, "STARTTLS")
	require.Zero(t, committed.Load())
	require.Zero(t, s.Transactions())
	require.Empty(t, s.Messages())
}

func TestSMTPImplicitTLS(t *testing.T) {
	s := smtptest.Start(t, smtptest.WithImplicitTLS())
	_, err := notify.NewSMTPMailer(smtpConfig(s, notify.TLSImplicit)).Send(t.Context(), testMessage(), nil)
	require.NoError(t, err)
	require.True(t, s.WaitMessages(t, 1)[0].TLS)

	cfg := smtpConfig(s, notify.TLSImplicit)
	cfg.RootCAs = nil
	_, err = notify.NewSMTPMailer(cfg).Send(t.Context(), testMessage(), nil)
	sendError(t, err, notify.OutcomeTemporary, "tls")
	require.Len(t, s.Messages(), 1)
}

func TestSMTPAuth(t *testing.T) {
	const password = "pw-Zq8#never-shown"
	s := smtptest.Start(t, smtptest.WithSTARTTLS(), smtptest.WithAuth("steward", password))
	cfg := smtpConfig(s, notify.TLSStartTLS)
	cfg.Username, cfg.Password = "steward", secret.New(password)
	_, err := notify.NewSMTPMailer(cfg).Send(t.Context(), testMessage(), nil)
	require.NoError(t, err)
	require.Equal(t, "steward", s.WaitMessages(t, 1)[0].AuthUser)

	// Without credentials the server refuses MAIL.
	anon := smtpConfig(s, notify.TLSStartTLS)
	_, err = notify.NewSMTPMailer(anon).Send(t.Context(), testMessage(), nil)
	se := sendError(t, err, notify.OutcomePermanent, "mail from")
	require.Equal(t, 530, se.Reply.Code)

	// A wrong password: 535, permanent, and the password is in no text.
	const wrong = "wrong-Xy7!secret"
	cfg.Password = secret.New(wrong)
	_, err = notify.NewSMTPMailer(cfg).Send(t.Context(), testMessage(), nil)
	se = sendError(t, err, notify.OutcomePermanent, "auth")
	require.Equal(t, 535, se.Reply.Code)
	for _, text := range []string{err.Error(), fmt.Sprintf("%v %+v %#v", err, err, se), se.Reply.String()} {
		require.NotContains(t, text, wrong)
		require.NotContains(t, text, password)
	}
	require.Len(t, s.Messages(), 1)
}

func TestSMTPAuthNeverInClearText(t *testing.T) {
	s := smtptest.Start(t)
	cfg := smtpConfig(s, notify.TLSNone)
	cfg.Username, cfg.Password = "steward", secret.New("pw-clear-text-never")
	_, err := notify.NewSMTPMailer(cfg).Send(t.Context(), testMessage(), nil)
	sendError(t, err, notify.OutcomeTemporary, "auth")
	require.NotContains(t, err.Error(), "pw-clear-text-never")
	require.Zero(t, s.Transactions())
}

func TestSMTPRefusals(t *testing.T) {
	for _, tc := range []struct {
		title     string
		step      string
		code      int
		enhanced  string
		outcome   notify.Outcome
		sendStep  string
		committed int32
	}{
		{"mail 451", "mail", 451, "4.3.0", notify.OutcomeTemporary, "mail from", 0},
		{"rcpt 450", "rcpt", 450, "4.2.1", notify.OutcomeTemporary, "rcpt to", 0},
		{"rcpt 550", "rcpt", 550, "5.1.1", notify.OutcomePermanent, "rcpt to", 0},
		{"data 452", "data", 452, "4.3.1", notify.OutcomeTemporary, "end of data", 1},
		{"data 554", "data", 554, "5.7.1", notify.OutcomePermanent, "end of data", 1},
		{"rcpt 550 without enhanced code", "rcpt", 550, "", notify.OutcomePermanent, "rcpt to", 0},
	} {
		t.Run(tc.title, func(t *testing.T) {
			s := smtptest.Start(t)
			s.RefuseNext(1, tc.step, tc.code, tc.enhanced, "No thanks")
			var committed atomic.Int32
			commit := func(context.Context) error { committed.Add(1); return nil }
			m := notify.NewSMTPMailer(smtpConfig(s, notify.TLSNone))
			_, err := m.Send(t.Context(), testMessage(), commit)
			se := sendError(t, err, tc.outcome, tc.sendStep)
			enhanced := tc.enhanced
			if enhanced == "" {
				enhanced = fmt.Sprintf("%d.0.0", tc.code/100) // go-smtp's default
			}
			require.Equal(t, notify.Reply{Code: tc.code, Message: enhanced + " No thanks"}, se.Reply)
			require.Contains(t, err.Error(), fmt.Sprintf("%d %s No thanks", tc.code, enhanced))
			require.Equal(t, tc.committed, committed.Load())
			require.Empty(t, s.Messages())

			// Only the next one was refused.
			_, err = m.Send(t.Context(), testMessage(), nil)
			require.NoError(t, err)
			require.Len(t, s.WaitMessages(t, 1), 1)
		})
	}
}

// commit runs once, after the content and before the final ".": the
// server has not answered (nor received the end) when it runs, and it has
// run when the server holds the complete message.
func TestSMTPCommitBeforeFinalDot(t *testing.T) {
	s := smtptest.Start(t)
	h := s.HoldData()
	var calls atomic.Int32
	commit := func(ctx context.Context) error {
		calls.Add(1)
		if len(s.Messages()) != 0 {
			return errors.New("commit after the server accepted the message")
		}
		return nil
	}
	type result struct {
		reply notify.Reply
		err   error
	}
	done := make(chan result, 1)
	go func() {
		reply, err := notify.NewSMTPMailer(smtpConfig(s, notify.TLSNone)).Send(t.Context(), testMessage(), commit)
		done <- result{reply, err}
	}()
	held := h.Wait(t)
	require.Equal(t, int32(1), calls.Load(), "commit ran before the final \".\"")
	require.Equal(t, testMessage().Text, held.Text)
	require.Empty(t, s.Messages())
	h.Answer()
	res := <-done
	require.NoError(t, res.err)
	require.Equal(t, 250, res.reply.Code)
	require.Equal(t, int32(1), calls.Load())
	require.Len(t, s.WaitMessages(t, 1), 1)
}

// A failed commit abandons the message without its final ".": the
// server keeps nothing.
func TestSMTPCommitFails(t *testing.T) {
	s := smtptest.Start(t)
	taken := errors.New("taken by another attempt")
	var calls atomic.Int32
	_, err := notify.NewSMTPMailer(smtpConfig(s, notify.TLSNone)).Send(t.Context(), testMessage(),
		func(context.Context) error { calls.Add(1); return taken })
	sendError(t, err, notify.OutcomeTemporary, "commit")
	require.ErrorIs(t, err, taken)
	require.Equal(t, int32(1), calls.Load())
	require.Eventually(t, func() bool { return s.Transactions() == 1 }, 10*time.Second, 10*time.Millisecond,
		"the server saw the DATA attempt")
	require.Empty(t, s.Messages())
}

// The connection dropped after the final "." with no answer: the message
// may have been delivered.
func TestSMTPDroppedAfterFinalDot(t *testing.T) {
	s := smtptest.Start(t)
	h := s.HoldData()
	done := make(chan error, 1)
	go func() {
		_, err := notify.NewSMTPMailer(smtpConfig(s, notify.TLSNone)).Send(t.Context(), testMessage(),
			func(context.Context) error { return nil })
		done <- err
	}()
	h.Wait(t)
	h.Drop()
	err := <-done
	sendError(t, err, notify.OutcomeUnknown, "end of data")
	require.Empty(t, s.Messages())
}

// No answer within the timeout after the final ".": unknown, and the
// server may well take the message after all.
func TestSMTPTimeoutAfterFinalDot(t *testing.T) {
	s := smtptest.Start(t)
	h := s.HoldData()
	cfg := smtpConfig(s, notify.TLSNone)
	cfg.Timeout = 300 * time.Millisecond
	_, err := notify.NewSMTPMailer(cfg).Send(t.Context(), testMessage(), nil)
	sendError(t, err, notify.OutcomeUnknown, "end of data")
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
	h.Wait(t)
	h.Answer()
	require.Len(t, s.WaitMessages(t, 1), 1)
}

func TestSMTPContextCancelled(t *testing.T) {
	t.Run("waiting for the final answer", func(t *testing.T) {
		s := smtptest.Start(t)
		h := s.HoldData()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := notify.NewSMTPMailer(smtpConfig(s, notify.TLSNone)).Send(ctx, testMessage(), nil)
			done <- err
		}()
		h.Wait(t)
		cancel()
		err := <-done
		sendError(t, err, notify.OutcomeUnknown, "end of data")
		require.ErrorIs(t, err, context.Canceled)
		h.Drop()
	})

	t.Run("waiting for the greeting", func(t *testing.T) {
		// A server that accepts the connection and never speaks.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		addr := l.Addr().(*net.TCPAddr)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := notify.NewSMTPMailer(notify.SMTPConfig{Host: addr.IP.String(), Port: addr.Port, TLS: notify.TLSNone,
				From: "steward@example.com", Timeout: time.Minute}).Send(ctx, testMessage(), nil)
			done <- err
		}()
		var c net.Conn
		select {
		case c = <-accepted:
		case <-time.After(10 * time.Second):
			t.Fatal("no connection")
		}
		defer c.Close()
		cancel()
		err = <-done
		// The server's accept may return before the client's dial does.
		var se *notify.SendError
		require.ErrorAs(t, err, &se)
		require.Contains(t, []string{"connect", "ehlo"}, se.Step, "%v", err)
		require.Equal(t, notify.OutcomeTemporary, se.Outcome)
		require.ErrorIs(t, err, context.Canceled)
	})

	t.Run("before connecting", func(t *testing.T) {
		s := smtptest.Start(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := notify.NewSMTPMailer(smtpConfig(s, notify.TLSNone)).Send(ctx, testMessage(), nil)
		sendError(t, err, notify.OutcomeTemporary, "connect")
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, s.Transactions())
	})
}

func TestSMTPConnectRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().(*net.TCPAddr)
	l.Close() // nothing listens there now
	_, err = notify.NewSMTPMailer(notify.SMTPConfig{Host: addr.IP.String(), Port: addr.Port, TLS: notify.TLSNone,
		From: "steward@example.com"}).Send(t.Context(), testMessage(), nil)
	sendError(t, err, notify.OutcomeTemporary, "connect")
}

func TestSMTPBadMessage(t *testing.T) {
	s := smtptest.Start(t)
	msg := testMessage()
	msg.To = []string{"not an address"}
	_, err := notify.NewSMTPMailer(smtpConfig(s, notify.TLSNone)).Send(t.Context(), msg, nil)
	sendError(t, err, notify.OutcomePermanent, "message")
	require.Zero(t, s.Transactions())
}
