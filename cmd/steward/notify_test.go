package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/notify/smtptest"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// startNotifyServer is startServer with the configuration changed by
// configure (the SMTP settings) first.
func startNotifyServer(t *testing.T, configure func(*config.Config)) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL, cfg.SecretKey, cfg.SpoolDir = storetest.ServerDatabaseOn(t, storetest.TestStore(t), t.TempDir())
	if configure != nil {
		configure(&cfg)
	}
	require.NoError(t, cfg.Validate())
	srv, err := server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

// notifyCLI runs client verbs against srv with token.
func notifyCLI(t *testing.T, srv *server.Server, token string) func(args ...string) (string, error) {
	return func(args ...string) (string, error) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := newRootCommand(&stdout, &stderr)
		cmd.SetArgs(append([]string{"--server", srv.URL(), "--token", token}, args...))
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		err := cmd.ExecuteContext(ctx)
		return stdout.String(), err
	}
}

// plan adds notifications to the sent-log as the planner does, and moves
// each to its state.
func planNotifications(t *testing.T, db *store.DB, rows ...planned) []int64 {
	t.Helper()
	var ids []int64
	require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error {
		for _, r := range rows {
			id, _, err := tx.PlanNotification(t.Context(), r.plan)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}))
	for i, r := range rows {
		if r.state == "" || r.state == steward.NotificationPending {
			continue
		}
		ok, err := db.TransitionNotification(t.Context(), ids[i], []steward.NotificationState{steward.NotificationPending},
			store.NotificationChange{To: r.state, Attempt: true, LastError: &r.lastError})
		require.NoError(t, err)
		require.True(t, ok)
	}
	return ids
}

type planned struct {
	plan      store.NotificationPlan
	state     steward.NotificationState
	lastError string
}

// The notify verbs on a server without an SMTP server: previews render,
// the status says e-mail is off, the sent-log lists, the manager mapping
// is kept, and test and resend fail saying e-mail is not configured.
func TestNotifyVerbsWithoutSMTP(t *testing.T) {
	t.Parallel()
	srv := startNotifyServer(t, nil)
	run := notifyCLI(t, srv, authtest.Token(t, srv.DB, "sec-admin", steward.RoleSecurityAdmin))
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		require.NoError(t, err, "steward %s", strings.Join(args, " "))
		return out
	}

	now := time.Now().UTC()
	overdue := storetest.Assessment(t, srv.DB, "storage-public-access", "/subscriptions/s1/rg/a/sa1", steward.StatusUnhealthy)
	storetest.Assignment(t, srv.DB, overdue.ID, "alice@example.com", now.AddDate(0, 0, -3))
	later := storetest.Assessment(t, srv.DB, "vm-disk-encryption", "/subscriptions/s1/rg/a/vm1", steward.StatusUnhealthy)
	storetest.Assignment(t, srv.DB, later.ID, "alice@example.com", now.AddDate(0, 0, 30))

	// test and resend need an SMTP server.
	_, err := run("notify", "test", "--to", "alice@example.com")
	require.ErrorContains(t, err, "e-mail is not configured: set STEWARD_SMTP_HOST")
	_, err = run("notify", "test")
	require.ErrorContains(t, err, "notify test needs --to ADDRESS")
	_, err = run("notify", "test", "--to", "not an address")
	require.ErrorContains(t, err, "is not a plain e-mail address")

	// Preview: the digest as it would be sent, its HTML part to a file.
	html := filepath.Join(t.TempDir(), "digest.html")
	out := must("notify", "preview", "--owner", "alice@example.com", "--html", html)
	require.Contains(t, out, "To: alice@example.com\n")
	require.Contains(t, out, "Subject: Steward: 1 overdue")
	require.Contains(t, out, "Kind: digest, 2 assignments")
	require.Contains(t, out, "HTML part written to "+html)
	require.Contains(t, out, "storage-public-access")
	require.Contains(t, out, "/subscriptions/s1/rg/a/vm1")
	b, err := os.ReadFile(html)
	require.NoError(t, err)
	require.Contains(t, string(b), "storage-public-access")
	require.Contains(t, strings.ToLower(string(b)), "<html")

	out = must("notify", "preview", "--owner", "nobody@example.com")
	require.Equal(t, "Nothing would be sent to nobody@example.com (digest): they have no open assignment to tell of.\n", out)
	out = must("notify", "preview", "--manager", "boss@example.com")
	require.Contains(t, out, "Nothing would be sent to boss@example.com (escalation)")
	_, err = run("notify", "preview", "--owner", "alice@example.com", "--manager", "boss@example.com")
	require.ErrorContains(t, err, "not both")
	_, err = run("notify", "preview")
	require.ErrorContains(t, err, "needs --owner EMAIL")

	// The manager mapping, then the escalation it makes.
	require.Equal(t, "No manager is mapped.\n", must("notify", "managers", "list"))
	require.Equal(t, "The manager of alice@example.com is boss@example.com.\n",
		must("notify", "managers", "set", "alice@example.com", "boss@example.com"))
	out = must("notify", "managers", "list")
	require.Contains(t, out, "OWNER")
	require.Regexp(t, `alice@example\.com\s+boss@example\.com\s+\S+ \S+\s+sec-admin`, out)
	var mappings struct {
		Items []steward.ManagerMapping `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(must("notify", "managers", "list", "-o", "json")), &mappings))
	require.Len(t, mappings.Items, 1)
	require.Equal(t, "boss@example.com", mappings.Items[0].Manager)

	out = must("notify", "preview", "--manager", "boss@example.com")
	require.Contains(t, out, "To: boss@example.com\n")
	require.Contains(t, out, "Kind: escalation, 1 assignment\n")
	require.Contains(t, out, "alice@example.com")
	require.Contains(t, out, "storage-public-access")
	require.NotContains(t, out, "vm-disk-encryption", "not overdue")
	var preview steward.MailPreview
	require.NoError(t, json.Unmarshal([]byte(must("notify", "preview", "--manager", "boss@example.com", "-o", "json")), &preview))
	require.Equal(t, 1, preview.Items)
	require.Equal(t, steward.NotificationEscalation, preview.Kind)
	require.NotEmpty(t, preview.HTML)

	_, err = run("notify", "managers", "set", "alice@example.com")
	require.ErrorContains(t, err, "set OWNER MANAGER")
	_, err = run("notify", "managers", "set", "alice@example.com", "Alice@example.com")
	require.ErrorContains(t, err, "cannot be their own manager")
	require.Equal(t, "Removed the manager mapping of alice@example.com (was boss@example.com).\n",
		must("notify", "managers", "delete", "alice@example.com"))
	_, err = run("notify", "managers", "delete", "alice@example.com")
	require.ErrorContains(t, err, "no manager is mapped for alice@example.com")

	// The sent-log and the status.
	require.Equal(t, "No notifications.\n", must("notify", "list"))
	ids := planNotifications(t, srv.DB,
		planned{plan: store.NotificationPlan{Recipient: "alice@example.com", Kind: steward.NotificationDigest, Period: "2026-W47"},
			state: steward.NotificationSent},
		planned{plan: store.NotificationPlan{Recipient: "bob@example.com", Kind: steward.NotificationDigest, Period: "2026-W47"},
			state: steward.NotificationFailed, lastError: "send e-mail: rcpt to: the server answered 550 5.1.1 <bob@example.com>: Recipient address rejected"},
		planned{plan: store.NotificationPlan{Recipient: "boss@example.com", Kind: steward.NotificationEscalation, Period: "2026-W48",
			Subjects: []string{"alice@example.com"}}},
	)
	out = must("notify", "list")
	require.Contains(t, out, "RECIPIENT")
	require.Regexp(t, itoa(ids[1])+`\s+bob@example\.com\s+digest\s+2026-W47\s+failed\s+1\s+-\s+send e-mail: rcpt to: the server answered 550`, out)
	require.Regexp(t, itoa(ids[2])+`\s+boss@example\.com\s+escalation\s+2026-W48\s+pending`, out)
	out = must("notify", "list", "--state", "failed,sent", "--kind", "digest")
	require.Contains(t, out, "bob@example.com")
	require.Contains(t, out, "alice@example.com")
	require.NotContains(t, out, "boss@example.com")
	out = must("notify", "list", "--limit", "1")
	require.Contains(t, out, "(more: --cursor ")
	var page struct {
		Items      []steward.Notification `json:"items"`
		NextCursor string                 `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal([]byte(must("notify", "list", "--recipient", "BOB@example.com", "-o", "json")), &page))
	require.Len(t, page.Items, 1)
	require.Equal(t, steward.NotificationFailed, page.Items[0].State)
	_, err = run("notify", "list", "--state", "lost")
	require.ErrorContains(t, err, `unknown notification state "lost"`)

	_, err = run("notify", "resend", itoa(ids[1]))
	require.ErrorContains(t, err, "e-mail is not configured")
	_, err = run("notify", "resend")
	require.ErrorContains(t, err, "notify resend needs the notification ID")

	out = must("notify", "status")
	require.Contains(t, out, "not configured: nothing is planned or sent")
	require.Contains(t, out, "Monday 08:00 UTC, next ")
	require.Contains(t, out, "1 sent, 1 pending, 1 failed")
	require.Contains(t, out, "Needing attention")
	require.Regexp(t, itoa(ids[1])+`\s+bob@example\.com\s+digest\s+2026-W47\s+failed`, out)
	require.NotContains(t, out, "boss@example.com", "a pending notification needs no attention")
	var st steward.NotificationStatus
	require.NoError(t, json.Unmarshal([]byte(must("notify", "status", "-o", "json")), &st))
	require.False(t, st.Enabled)
	require.Equal(t, 1, st.Counts[steward.NotificationFailed])

	// Only a security-admin may.
	reader := notifyCLI(t, srv, authtest.Token(t, srv.DB, "reader", steward.RoleReader))
	_, err = reader("notify", "status")
	require.ErrorContains(t, err, "this needs the security-admin role")
}

// With an SMTP server configured that does not answer, the test message
// fails with the reason and the status names the server, never the
// password; a pending notification cannot be resent.
func TestNotifyVerbsSMTPUnreachable(t *testing.T) {
	t.Parallel()
	// A port that was free a moment ago: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	srv := startNotifyServer(t, func(c *config.Config) {
		c.SMTPHost, c.SMTPPort, c.SMTPTLS, c.SMTPFrom = "127.0.0.1", port, "none", "Steward <steward@example.com>"
	})
	run := notifyCLI(t, srv, authtest.Token(t, srv.DB, "sec-admin", steward.RoleSecurityAdmin))

	out, err := run("notify", "test", "--to", "alice@example.com")
	require.Error(t, err)
	require.Empty(t, out)
	require.Contains(t, err.Error(), "the test message to alice@example.com was not accepted")
	require.Contains(t, err.Error(), "(unavailable)")

	out, err = run("notify", "status")
	require.NoError(t, err)
	require.Contains(t, out, "enabled, through 127.0.0.1:")
	require.Contains(t, out, "steward@example.com")

	ids := planNotifications(t, srv.DB, planned{plan: store.NotificationPlan{Recipient: "alice@example.com",
		Kind: steward.NotificationDigest, Period: "2026-W40"}})
	_, err = run("notify", "resend", itoa(ids[0]))
	require.ErrorContains(t, err, "is pending: only a failed, unknown or retrying one can be sent again")
}

// `steward notify test` through a real SMTP server over STARTTLS with AUTH
// PLAIN: it prints the server's answer and the Message-ID of what the
// server received; a refusal fails with the server's words; the password
// is in no answer, and a wrong one is refused saying so.
func TestNotifyTestThroughSMTP(t *testing.T) {
	t.Parallel()
	const password = "s3cret-smtp-password"
	mail := smtptest.Start(t, smtptest.WithSTARTTLS(), smtptest.WithAuth("steward", password))
	ca := mail.WriteCAFile(t)
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	require.NoError(t, os.WriteFile(pwFile, []byte(password+"\n"), 0o600))
	srv := startNotifyServer(t, func(c *config.Config) {
		c.SMTPHost, c.SMTPPort, c.SMTPTLS, c.SMTPFrom = mail.Host(), mail.Port(), "starttls", "Steward <steward@example.com>"
		c.SMTPUsername, c.SMTPPasswordFile, c.SMTPCAFile = "steward", pwFile, ca
	})
	run := notifyCLI(t, srv, authtest.Token(t, srv.DB, "sec-admin", steward.RoleSecurityAdmin))

	out, err := run("notify", "test", "--to", "alice@example.com")
	require.NoError(t, err)
	t.Logf("steward notify test --to alice@example.com:\n%s", out)
	require.Regexp(t, `^Accepted by the SMTP server: 250 \S`, out)
	got := mail.WaitMessages(t, 1)[0]
	require.Equal(t, []string{"alice@example.com"}, got.To)
	require.Equal(t, "steward@example.com", got.From)
	require.Contains(t, got.Subject, "test message")
	require.NotEmpty(t, got.MessageID)
	require.Contains(t, out, "\nTo: alice@example.com\nMessage-ID: <"+got.MessageID+">\n")

	var res steward.MailTestResult
	out, err = run("notify", "test", "--to", "bob@example.com", "-o", "json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, 250, res.Code)
	require.Equal(t, "bob@example.com", res.To)
	require.Equal(t, mail.WaitMessages(t, 2)[1].MessageID, res.MessageID)

	mail.RefuseNext(1, "rcpt", 550, "5.1.1", "<nobody@example.com>: Recipient address rejected")
	out, err = run("notify", "test", "--to", "nobody@example.com")
	require.Error(t, err)
	t.Logf("steward notify test --to nobody@example.com: error: %s", userMessage(err))
	require.Empty(t, out)
	require.Contains(t, err.Error(), "550 5.1.1 <nobody@example.com>: Recipient address rejected")
	require.Len(t, mail.Messages(), 2, "nothing more was accepted")

	ids := planNotifications(t, srv.DB,
		planned{plan: store.NotificationPlan{Recipient: "carol@example.com", Kind: steward.NotificationDigest, Period: "2026-W47"},
			state: steward.NotificationFailed, lastError: "send e-mail: rcpt to: the server answered 550 5.1.1 <carol@example.com>: Recipient address rejected"},
		planned{plan: store.NotificationPlan{Recipient: "dave@example.com", Kind: steward.NotificationDigest, Period: "2026-W47"}})
	out, err = run("notify", "status")
	require.NoError(t, err)
	t.Logf("steward notify status:\n%s", out)
	require.Contains(t, out, "enabled, through "+mail.Addr()+" (starttls)")
	require.Regexp(t, `carol@example\.com\s+digest\s+2026-W47\s+failed\s+1\s+-\s+send e-mail: rcpt to: the server answered 550`, out)
	require.Contains(t, out, "Sent-log:  1 pending, 1 failed")
	out, err = run("notify", "status", "-o", "json")
	require.NoError(t, err)
	require.NotContains(t, out, password)

	// A person resends the failed digest: it is sent again, once.
	as := storetest.Assessment(t, srv.DB, "storage-public-access", "/subscriptions/s1/rg/a/sa1", steward.StatusUnhealthy)
	storetest.Assignment(t, srv.DB, as.ID, "carol@example.com", time.Now().AddDate(0, 0, 10))
	out, err = run("notify", "resend", itoa(ids[0]))
	require.NoError(t, err)
	require.Equal(t, "Notification "+itoa(ids[0])+" (digest of 2026-W47 to carol@example.com) is pending again: it is sent shortly.\n", out)
	msgs := mail.WaitMessages(t, 3)
	require.Equal(t, []string{"carol@example.com"}, msgs[2].To)
	require.Contains(t, msgs[2].Text, "storage-public-access")
	require.Eventually(t, func() bool {
		out, err := run("notify", "list", "--recipient", "carol@example.com")
		return err == nil && strings.Contains(out, "sent") && strings.Contains(out, "250 ")
	}, time.Minute, 50*time.Millisecond, "the resent digest is recorded as sent with the server's answer")
	_, err = run("notify", "resend", itoa(ids[0]))
	require.ErrorContains(t, err, "is sent: only a failed, unknown or retrying one can be sent again")

	// The wrong password: the server's refusal, and still not the password.
	wrongFile := filepath.Join(t.TempDir(), "wrong-password")
	require.NoError(t, os.WriteFile(wrongFile, []byte("not-the-password"), 0o600))
	wrong := startNotifyServer(t, func(c *config.Config) {
		c.SMTPHost, c.SMTPPort, c.SMTPTLS, c.SMTPFrom = mail.Host(), mail.Port(), "starttls", "steward@example.com"
		c.SMTPUsername, c.SMTPPasswordFile, c.SMTPCAFile = "steward", wrongFile, ca
	})
	out, err = notifyCLI(t, wrong, authtest.Token(t, wrong.DB, "sec-admin", steward.RoleSecurityAdmin))("notify", "test", "--to", "alice@example.com")
	require.Error(t, err)
	require.Empty(t, out)
	require.Contains(t, err.Error(), "535")
	require.NotContains(t, err.Error(), "not-the-password")
}
