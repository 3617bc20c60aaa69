package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/notify/smtptest"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// mailClock is the notification service's clock in a test: a digest
// moment is crossed by setting it.
type mailClock struct{ at atomic.Int64 }

func (c *mailClock) now() time.Time       { return time.Unix(0, c.at.Load()).UTC() }
func (c *mailClock) set(t time.Time)      { c.at.Store(t.UnixNano()) }
func newMailClock(t time.Time) *mailClock { c := &mailClock{}; c.set(t); return c }

// Monday 30 November 2026, 08:00 UTC is a digest moment of the default
// schedule (Monday 08:00 UTC).
var digestMoment = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

// startMailing starts Steward sending through mail (STARTTLS with the
// kit's CA, AUTH PLAIN with a password file) on st, with the notification
// clock and fast schedule ticks and retries.
func startMailing(t *testing.T, st storeKind, mail *smtptest.Server, clock *mailClock) *testBundle {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	require.NoError(t, os.WriteFile(pwFile, []byte("mail-secret-pw\n"), 0o600))
	caFile := mail.WriteCAFile(t)
	onStore := st.configure(t)
	b, _ := startInbound(t, func(c *config.Config) {
		if onStore != nil {
			onStore(c)
		}
		c.SMTPHost, c.SMTPPort, c.SMTPTLS = "127.0.0.1", mail.Port(), "starttls"
		c.SMTPUsername, c.SMTPPasswordFile, c.SMTPCAFile = "steward", pwFile, caFile
		c.SMTPFrom = "Steward <steward@example.com>"
		c.PublicURL = "https://steward.example.com"
	}, nil, server.WithNotifyClock(clock.now), server.WithNotifyRetryBackoff(100*time.Millisecond),
		server.WithProcessTiming(5*time.Second, 30*time.Second, 10*time.Second, 200*time.Millisecond))
	return b
}

// assign creates an assignment on a fresh Unhealthy finding of rec on
// resource, made the way the API would, with the given opt-outs.
func assign(t *testing.T, db *store.DB, rec, resource, owner string, due time.Time, ownerOptOut, managerOptOut bool) *steward.Assignment {
	t.Helper()
	storetest.Apply(t, db, time.Time{}, storetest.Observation(rec, resource, steward.StatusUnhealthy))
	found, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{RecommendationKey: rec, ResourceID: resource})
	require.NoError(t, err)
	require.Len(t, found, 1)
	a := &steward.Assignment{AssessmentID: found[0].ID, Owner: owner, DueDate: due, OwnerEmailOptOut: ownerOptOut, ManagerEmailOptOut: managerOptOut}
	require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error { return tx.CreateAssignment(t.Context(), a, "tester@example.com", "test") }))
	return a
}

// TestWeeklyDigestsAndEscalations: at the digest moment, each owner with
// open work gets one digest of it (opt-outs left out), and each manager —
// from the emulator's sys_user.manager, else the mapping — one escalation
// of their reports' overdue work; an owner whose manager is known nowhere
// is recorded, not an error. Nothing before the moment, nothing twice.
func TestWeeklyDigestsAndEscalations(t *testing.T) {
	t.Parallel()
	forEachStore(t, weeklyDigestsAndEscalations)
}

func weeklyDigestsAndEscalations(t *testing.T, st storeKind) {
	ctx := t.Context()
	mail := smtptest.Start(t, smtptest.WithSTARTTLS(), smtptest.WithAuth("steward", "mail-secret-pw"))
	clock := newMailClock(digestMoment.Add(-time.Minute))
	b := startMailing(t, st, mail, clock)
	db := b.srv.DB

	emu := snowemu.New(snowemu.Options{AdminPassword: "emu-pw"}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = emu.Close() })
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	_, err := b.client.CreateIntegration(ctx, apiclient.IntegrationRequest{
		Name: ptrTo("emulator"), Scope: ptrTo("/subscriptions"), InstanceURL: ptrTo(hs.URL), Local: ptrTo(true),
		AuthMode: ptrTo("basic"), Username: ptrTo("admin"), Password: ptrTo("emu-pw"),
	})
	require.NoError(t, err)

	// The schedule has run once before the moment: it planned nothing.
	require.Eventually(t, func() bool {
		var v string
		return db.Writer().QueryRowContext(ctx, db.Bind(`SELECT value FROM meta WHERE key = 'notifications_since'`)).Scan(&v) == nil
	}, time.Minute, 50*time.Millisecond, "the notify_schedule job never ran")

	now := digestMoment
	overdue, soon, later := now.Add(-72*time.Hour), now.Add(3*24*time.Hour), now.Add(20*24*time.Hour)
	rg := "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
	beth1 := assign(t, db, "rec-1", rg+"1", "Beth.Anglin@example.com", overdue, false, false)
	beth2 := assign(t, db, "rec-2", rg+"2", "beth.anglin@example.com", soon, false, false)
	beth3 := assign(t, db, "rec-3", rg+"3", "beth.anglin@example.com", later, false, false)
	don4 := assign(t, db, "rec-4", rg+"4", "don.goodliffe@example.com", overdue, false, false)
	don5 := assign(t, db, "rec-5", rg+"5", "don.goodliffe@example.com", overdue, false, true) // not for the manager
	abel6 := assign(t, db, "rec-6", rg+"6", "abel.tuter@example.com", overdue, false, false)
	carol7 := assign(t, db, "rec-7", rg+"7", "carol@example.org", overdue, false, false)
	dave8 := assign(t, db, "rec-8", rg+"8", "dave@example.org", overdue, false, false)
	assign(t, db, "rec-9", rg+"9", "erin@example.org", overdue, true, true) // erin hears nothing
	_, err = db.PutManagerMapping(ctx, "carol@example.org", "boss@example.org", "tester@example.com")
	require.NoError(t, err)
	_, err = db.PutManagerMapping(ctx, "beth.anglin@example.com", "ignored@example.org", "tester@example.com") // ServiceNow comes first
	require.NoError(t, err)
	require.Empty(t, mail.Messages())

	clock.set(digestMoment.Add(30 * time.Second))
	msgs := mail.WaitMessages(t, 8)
	byTo := map[string]smtptest.Received{}
	for _, m := range msgs {
		require.NoError(t, m.ParseErr)
		require.Len(t, m.To, 1)
		require.NotContains(t, byTo, m.To[0], "one message per recipient")
		byTo[strings.ToLower(m.To[0])] = m
		require.True(t, m.TLS, "sent over STARTTLS")
		require.Equal(t, "steward", m.AuthUser)
		require.Equal(t, "steward@example.com", m.From)
		require.Contains(t, m.Header.Get("From"), "steward@example.com")
		require.NotEmpty(t, m.MessageID)
		require.NotEmpty(t, m.Text)
		require.NotEmpty(t, m.HTML)
	}
	require.ElementsMatch(t, []string{"beth.anglin@example.com", "don.goodliffe@example.com", "abel.tuter@example.com", "carol@example.org",
		"dave@example.org", "david.loo@example.com", "fred.luddy@example.com", "boss@example.org"}, keys(byTo))

	link := func(a *steward.Assignment) string {
		return "https://steward.example.com/assignments/" + strconv.FormatInt(a.ID, 10)
	}
	beth := byTo["beth.anglin@example.com"]
	for _, a := range []*steward.Assignment{beth1, beth2, beth3} {
		require.Contains(t, beth.Text, a.RecommendationKey)
		require.Contains(t, beth.HTML, link(a))
	}
	require.NotContains(t, beth.Text, "rec-4")
	require.Contains(t, beth.Subject, "1 overdue")

	david := byTo["david.loo@example.com"] // manager of beth and don in the emulator
	require.Contains(t, david.Text, "rec-1")
	require.Contains(t, david.Text, "rec-4")
	require.Contains(t, strings.ToLower(david.Text), "beth.anglin@example.com")
	require.Contains(t, strings.ToLower(david.Text), "don.goodliffe@example.com")
	for _, absent := range []string{"rec-2", "rec-3", don5.RecommendationKey, "rec-6"} {
		require.NotContains(t, david.Text, absent, "an escalation lists only the reports' overdue work without manager opt-outs")
	}
	require.Contains(t, byTo["fred.luddy@example.com"].Text, abel6.RecommendationKey)
	require.Contains(t, byTo["boss@example.org"].Text, carol7.RecommendationKey)
	require.Contains(t, byTo["dave@example.org"].Text, dave8.RecommendationKey)
	require.Contains(t, byTo["don.goodliffe@example.com"].Text, don4.RecommendationKey)
	require.Contains(t, byTo["don.goodliffe@example.com"].Text, don5.RecommendationKey, "a manager opt-out does not silence the owner")

	// Every row of the sent-log is sent, with the server's answer.
	require.Eventually(t, func() bool {
		rows, _, err := db.FindNotifications(ctx, store.NotificationFilter{})
		require.NoError(t, err)
		for _, n := range rows {
			if n.State != steward.NotificationSent {
				return false
			}
		}
		return len(rows) == 8
	}, time.Minute, 50*time.Millisecond)
	rows, _, err := db.FindNotifications(ctx, store.NotificationFilter{Recipient: "david.loo@example.com"})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, steward.NotificationEscalation, rows[0].Kind)
	require.Equal(t, "2026-W49", rows[0].Period)
	require.ElementsMatch(t, []string{"Beth.Anglin@example.com", "don.goodliffe@example.com"}, rows[0].Subjects)
	require.True(t, strings.HasPrefix(rows[0].Reply, "250 "), rows[0].Reply)
	require.Equal(t, 1, rows[0].Attempts)

	status, err := b.srv.Notify.Status(ctx)
	require.NoError(t, err)
	require.True(t, status.Enabled)
	require.NotContains(t, status.SMTP, "mail-secret-pw")
	require.Len(t, status.OwnersWithoutManager, 1)
	require.Equal(t, "dave@example.org", status.OwnersWithoutManager[0].Owner)
	require.Contains(t, status.OwnersWithoutManager[0].Detail, "emulator: no active user has this e-mail address")
	require.Contains(t, status.OwnersWithoutManager[0].Detail, "no manager mapping")

	// Later ticks of the same week plan nothing more, even after the
	// assignments change.
	assign(t, db, "rec-10", rg+"10", "zoe@example.org", overdue, false, false)
	clock.set(digestMoment.Add(time.Hour))
	time.Sleep(time.Second) // five schedule ticks
	require.Len(t, mail.Messages(), 8)
	all, _, err := db.FindNotifications(ctx, store.NotificationFilter{})
	require.NoError(t, err)
	require.Len(t, all, 8)

	// The next week's moment plans the next week.
	clock.set(digestMoment.Add(7*24*time.Hour + time.Minute))
	mail.WaitMessages(t, 8+9)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDigestRefusedThenRetried: a 4xx answer leaves the digest retrying
// with the server's words, and the next try sends it once; a 5xx answer
// fails it for good until a person resends it.
func TestDigestRefusedThenRetried(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	mail := smtptest.Start(t, smtptest.WithSTARTTLS(), smtptest.WithAuth("steward", "mail-secret-pw"))
	clock := newMailClock(digestMoment.Add(-time.Minute))
	b := startMailing(t, onSQLite, mail, clock)
	db := b.srv.DB
	require.Eventually(t, func() bool {
		var v string
		return db.Writer().QueryRowContext(ctx, db.Bind(`SELECT value FROM meta WHERE key = 'notifications_since'`)).Scan(&v) == nil
	}, time.Minute, 50*time.Millisecond)
	rg := "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa"
	assign(t, db, "rec-a", rg+"1", "ann@example.org", digestMoment.Add(24*time.Hour), false, false)
	assign(t, db, "rec-b", rg+"2", "bob@example.org", digestMoment.Add(24*time.Hour), false, false)
	// One of the two (the send jobs run side by side): 451 once.
	mail.RefuseNext(1, "rcpt", 451, "4.3.0", "mailbox temporarily unavailable")

	clock.set(digestMoment.Add(time.Minute))
	msgs := mail.WaitMessages(t, 2)
	require.ElementsMatch(t, []string{"ann@example.org", "bob@example.org"}, []string{msgs[0].To[0], msgs[1].To[0]})
	var rows []*steward.Notification
	require.Eventually(t, func() bool {
		var err error
		rows, _, err = db.FindNotifications(ctx, store.NotificationFilter{States: []steward.NotificationState{steward.NotificationSent}})
		require.NoError(t, err)
		return len(rows) == 2
	}, time.Minute, 50*time.Millisecond)
	attempts := map[int]int{}
	for _, n := range rows {
		attempts[n.Attempts]++
		if n.Attempts == 2 {
			require.Contains(t, n.LastError, "451")
			require.Contains(t, n.LastError, "mailbox temporarily unavailable")
		}
	}
	require.Equal(t, map[int]int{1: 1, 2: 1}, attempts)
	time.Sleep(300 * time.Millisecond)
	require.Len(t, mail.Messages(), 2, "each sent once")

	// A permanent refusal: failed, and sent again only when resent.
	mail.RefuseNext(1, "data", 550, "5.7.1", "message refused")
	clock.set(digestMoment.Add(7*24*time.Hour + time.Minute))
	var failed *steward.Notification
	require.Eventually(t, func() bool {
		rows, _, err := db.FindNotifications(ctx, store.NotificationFilter{States: []steward.NotificationState{steward.NotificationFailed}})
		require.NoError(t, err)
		if len(rows) == 1 {
			failed = rows[0]
		}
		return failed != nil
	}, time.Minute, 50*time.Millisecond)
	require.Contains(t, failed.Reply, "550")
	mail.WaitMessages(t, 3) // the other owner's second digest
	time.Sleep(300 * time.Millisecond)
	require.Len(t, mail.Messages(), 3)
	// Until River has recorded the failed attempt's job as done, a resend
	// is refused (one attempt at a time); then it is accepted.
	var resent *steward.Notification
	require.Eventually(t, func() bool {
		var err error
		resent, err = b.srv.Notify.Resend(ctx, failed.ID, "tester@example.com")
		if err != nil {
			require.Equal(t, steward.CodeConflict, steward.ErrorCode(err), "%v", err)
			require.Contains(t, err.Error(), "still has a send attempt waiting or finishing")
		}
		return err == nil
	}, time.Minute, 50*time.Millisecond)
	require.Equal(t, steward.NotificationPending, resent.State)
	mail.WaitMessages(t, 4)
	require.Eventually(t, func() bool {
		n, err := db.FindNotification(ctx, failed.ID)
		require.NoError(t, err)
		return n.State == steward.NotificationSent
	}, time.Minute, 50*time.Millisecond)
	_, err := b.srv.Notify.Resend(ctx, failed.ID, "tester@example.com")
	require.Error(t, err)
	require.Equal(t, steward.CodeConflict, steward.ErrorCode(err))
}

// TestDigestsOnceAcrossProcesses: three servers on one PostgreSQL
// database, each ticking and each also asked to plan at the same moment,
// send every owner's digest once between them.
func TestDigestsOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newCluster(t)
	mail := smtptest.Start(t)
	clock := newMailClock(digestMoment.Add(-time.Minute))
	var servers []*server.Server
	for range 3 {
		cfg := config.Default()
		cfg.Addr, cfg.DatabaseURL, cfg.SecretKey, cfg.SpoolDir = "127.0.0.1:0", c.url, c.key, c.spool
		cfg.ShutdownTimeout = 10 * time.Second
		cfg.SMTPHost, cfg.SMTPPort, cfg.SMTPTLS, cfg.SMTPFrom = "127.0.0.1", mail.Port(), "none", "steward@example.com"
		srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
			server.WithNotifyClock(clock.now), server.WithProcessTiming(time.Second, 30*time.Second, 10*time.Second, 100*time.Millisecond))
		require.NoError(t, err)
		require.NoError(t, srv.Start(ctx))
		t.Cleanup(func() { require.NoError(t, srv.Shutdown(context.Background())) })
		servers = append(servers, srv)
	}
	db := servers[0].DB
	since, err := db.NotificationsSince(ctx, clock.now())
	require.NoError(t, err)
	require.True(t, since.Before(digestMoment))
	const owners = 20
	for i := range owners {
		assign(t, db, fmt.Sprintf("rec-%d", i), fmt.Sprintf("/subscriptions/s1/vm%d", i), fmt.Sprintf("owner%d@example.org", i),
			digestMoment.Add(48*time.Hour), false, false)
	}

	clock.set(digestMoment.Add(time.Second))
	planned := make([]int, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			n, err := s.Notify.Plan(ctx, clock.now())
			assert.NoError(t, err)
			planned[i] = n
		})
	}
	wg.Wait()
	msgs := mail.WaitMessages(t, owners)
	time.Sleep(time.Second) // ten more ticks, and every send job done
	require.Len(t, mail.Messages(), owners, "one digest per owner: %d planned by direct calls %v", len(msgs), planned)
	to := map[string]bool{}
	for _, m := range mail.Messages() {
		to[m.To[0]] = true
	}
	require.Len(t, to, owners)
	require.LessOrEqual(t, planned[0]+planned[1]+planned[2], owners, "the week was planned once")
}
