package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/api/apitest"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/notify"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// notifyAPI is a real API over HTTP on a fresh store with the notification
// service; jobs are inserted by an insert-only River client and never
// worked.
type notifyAPI struct {
	db    *store.DB
	url   string
	admin string // a security-admin token
	// client is the admin's, its answers checked against the OpenAPI
	// document.
	client *apiclient.Client
}

// newNotifyAPI starts the API; smtp nil leaves e-mail unconfigured
// (preview and the sent-log still work).
func newNotifyAPI(t *testing.T, smtp *notify.SMTPConfig) *notifyAPI {
	t.Helper()
	db := storetest.MustOpen(t)
	logger := storetest.Logger(t)
	queue := jobs.NewQueue()
	rc, err := river.NewClient(db.RiverDriver(), &river.Config{})
	require.NoError(t, err)
	queue.Bind(rc)
	svc := notify.New(notify.Config{SMTP: smtp, Schedule: notify.DefaultSchedule(), PublicURL: "https://steward.example.com"},
		notify.Deps{DB: db, Queue: queue, Logger: logger})
	a := api.New(api.Config{SpoolDir: t.TempDir()}, api.Deps{DB: db, Queue: queue, Notify: svc, Auth: auth.NewAuthenticator(db, logger)},
		logger, prometheus.NewRegistry())
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	n := &notifyAPI{db: db, url: srv.URL, admin: authtest.Token(t, db, "sec-admin", steward.RoleSecurityAdmin)}
	n.client = n.clientFor(t, n.admin)
	return n
}

func (n *notifyAPI) clientFor(t *testing.T, token string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(n.url, token)
	require.NoError(t, err)
	return c.WithHTTPClient(apitest.Client(t))
}

// call sends one raw request and returns the status and the decoded
// error (if any); answers are checked against the OpenAPI document.
func (n *notifyAPI) call(t *testing.T, method, path, token, body string) (int, *apiclient.Error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, n.url+path, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := apitest.Client(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	require.NoError(t, json.Unmarshal(raw, &e), "%s", raw)
	return resp.StatusCode, &apiclient.Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field}
}

// plan adds notifications to the sent-log as the planner does.
func (n *notifyAPI) plan(t *testing.T, plans ...store.NotificationPlan) []int64 {
	t.Helper()
	var ids []int64
	require.NoError(t, n.db.WithTx(t.Context(), func(tx *store.Tx) error {
		for _, p := range plans {
			id, created, err := tx.PlanNotification(t.Context(), p)
			if err != nil {
				return err
			}
			require.True(t, created)
			ids = append(ids, id)
		}
		return nil
	}))
	return ids
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func apiError(t *testing.T, err error) *apiclient.Error {
	t.Helper()
	var e *apiclient.Error
	require.True(t, errors.As(err, &e), "want an API error, got %v", err)
	return e
}

// Every notification route needs security-admin, and refuses a token
// limited to a scope whatever its role: notifications concern owners in
// every scope.
func TestNotificationRoutesRolesAndScope(t *testing.T) {
	t.Parallel()
	n := newNotifyAPI(t, nil)
	ids := n.plan(t, store.NotificationPlan{Recipient: "alice@example.com", Kind: steward.NotificationDigest, Period: "2026-W48"})
	id := itoa(ids[0])
	routes := []struct{ method, path, body string }{
		{"GET", "/api/v1/notifications", ""},
		{"GET", "/api/v1/notifications/" + id, ""},
		{"POST", "/api/v1/notifications/" + id + "/resend", ""},
		{"GET", "/api/v1/notifications/status", ""},
		{"GET", "/api/v1/notifications/preview?owner=alice@example.com", ""},
		{"POST", "/api/v1/notifications/test", `{"to":"alice@example.com"}`},
		{"GET", "/api/v1/managers", ""},
		{"PUT", "/api/v1/managers/alice@example.com", `{"manager":"boss@example.com"}`},
		{"DELETE", "/api/v1/managers/alice@example.com", ""},
	}
	reader := authtest.Token(t, n.db, "reader", steward.RoleReader)
	contributor := authtest.Token(t, n.db, "contributor", steward.RoleContributor)
	owner := authtest.Token(t, n.db, "owner", steward.RoleOwner)
	scoped := authtest.ScopedToken(t, n.db, "scoped-admin", steward.RoleSecurityAdmin, "/subscriptions/s1")
	scopedOwner := authtest.ScopedToken(t, n.db, "scoped-owner", steward.RoleOwner, "/subscriptions/s1")
	for _, rt := range routes {
		for _, tok := range []string{reader, contributor} {
			status, e := n.call(t, rt.method, rt.path, tok, rt.body)
			require.Equal(t, http.StatusForbidden, status, "%s %s", rt.method, rt.path)
			require.Contains(t, e.Message, "security-admin")
		}
		for _, tok := range []string{scoped, scopedOwner} {
			status, e := n.call(t, rt.method, rt.path, tok, rt.body)
			require.Equal(t, http.StatusForbidden, status, "%s %s", rt.method, rt.path)
			require.Contains(t, e.Message, "limited to /subscriptions/s1")
		}
		for _, tok := range []string{n.admin, owner} {
			status, _ := n.call(t, rt.method, rt.path, tok, rt.body)
			require.NotContains(t, []int{401, 403}, status, "%s %s", rt.method, rt.path)
		}
	}
}

// The sent-log lists newest first a page at a time, filtered by state,
// kind, period and recipient; bad filters are refused naming the field.
func TestNotificationList(t *testing.T) {
	t.Parallel()
	n := newNotifyAPI(t, nil)
	ctx := t.Context()
	ids := n.plan(t,
		store.NotificationPlan{Recipient: "alice@example.com", Kind: steward.NotificationDigest, Period: "2026-W47"},
		store.NotificationPlan{Recipient: "bob@example.com", Kind: steward.NotificationDigest, Period: "2026-W47"},
		store.NotificationPlan{Recipient: "boss@example.com", Kind: steward.NotificationEscalation, Period: "2026-W47",
			Subjects: []string{"alice@example.com", "bob@example.com"}},
		store.NotificationPlan{Recipient: "Alice@Example.com", Kind: steward.NotificationDigest, Period: "2026-W48"},
		store.NotificationPlan{Recipient: "bob@example.com", Kind: steward.NotificationDigest, Period: "2026-W48"},
	)
	failed := "550 5.1.1 mailbox unavailable"
	ok, err := n.db.TransitionNotification(ctx, ids[1], []steward.NotificationState{steward.NotificationPending},
		store.NotificationChange{To: steward.NotificationFailed, Attempt: true, LastError: &failed})
	require.NoError(t, err)
	require.True(t, ok)

	var got []int64
	f := apiclient.NotificationFilter{Limit: 2}
	pages := 0
	for {
		page, err := n.client.ListNotifications(ctx, f)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Items), 2)
		for _, it := range page.Items {
			got = append(got, it.ID)
		}
		pages++
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	require.Equal(t, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}, got, "newest first, every row once")
	require.Equal(t, 3, pages)

	list := func(f apiclient.NotificationFilter) []int64 {
		t.Helper()
		page, err := n.client.ListNotifications(ctx, f)
		require.NoError(t, err)
		var out []int64
		for _, it := range page.Items {
			out = append(out, it.ID)
		}
		return out
	}
	require.Equal(t, []int64{ids[1]}, list(apiclient.NotificationFilter{States: []steward.NotificationState{steward.NotificationFailed}}))
	require.Equal(t, []int64{ids[4], ids[3], ids[2], ids[0]}, list(apiclient.NotificationFilter{States: []steward.NotificationState{"pending"}}))
	require.Equal(t, []int64{ids[2]}, list(apiclient.NotificationFilter{Kind: steward.NotificationEscalation}))
	require.Equal(t, []int64{ids[4], ids[3]}, list(apiclient.NotificationFilter{Period: "2026-W48"}))
	require.Equal(t, []int64{ids[3], ids[0]}, list(apiclient.NotificationFilter{Recipient: "ALICE@example.com"}), "any letter case")
	require.Equal(t, []int64{ids[1]}, list(apiclient.NotificationFilter{Recipient: "bob@example.com", Period: "2026-W47"}))

	// States repeated and as a comma list.
	for _, q := range []string{"state=failed&state=pending", "state=failed,pending"} {
		status, _ := n.call(t, "GET", "/api/v1/notifications?"+q, n.admin, "")
		require.Equal(t, http.StatusOK, status, q)
	}

	one, err := n.client.Notification(ctx, ids[2])
	require.NoError(t, err)
	require.Equal(t, "boss@example.com", one.Recipient)
	require.Equal(t, steward.NotificationEscalation, one.Kind)
	require.Equal(t, []string{"alice@example.com", "bob@example.com"}, one.Subjects)
	require.Equal(t, steward.NotificationPending, one.State)
	failedRow, err := n.client.Notification(ctx, ids[1])
	require.NoError(t, err)
	require.Equal(t, failed, failedRow.LastError)
	require.Equal(t, 1, failedRow.Attempts)
	_, err = n.client.Notification(ctx, 999999)
	require.Equal(t, http.StatusNotFound, apiError(t, err).Status)

	for _, c := range []struct{ query, field, msg string }{
		{"state=lost", "state", `unknown notification state "lost"`},
		{"kind=weekly", "kind", `unknown notification kind "weekly"`},
		{"period=2026-48", "period", "is not an ISO week"},
		{"recipient=not-an-address", "recipient", "is not a plain e-mail address"},
		{"owner=alice@example.com", "", `unknown query parameter "owner"`},
		{"limit=0", "", "must be a positive integer"},
		{"cursor=garbage", "", ""},
	} {
		status, e := n.call(t, "GET", "/api/v1/notifications?"+c.query, n.admin, "")
		require.Equal(t, http.StatusBadRequest, status, c.query)
		require.Equal(t, c.field, e.Field, c.query)
		require.Contains(t, e.Message, c.msg, c.query)
	}
	status, _ := n.call(t, "GET", "/api/v1/notifications/abc", n.admin, "")
	require.Equal(t, http.StatusBadRequest, status)
}

// Without an SMTP server, a resend and a test message answer 503 saying
// e-mail is not configured; with one, a pending notification cannot be
// resent (409) and a failed one is queued again, audited under the
// caller's name.
func TestNotificationResend(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	off := newNotifyAPI(t, nil)
	ids := off.plan(t, store.NotificationPlan{Recipient: "alice@example.com", Kind: steward.NotificationDigest, Period: "2026-W48"})
	_, err := off.client.ResendNotification(ctx, ids[0])
	e := apiError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, e.Status)
	require.Contains(t, e.Message, "e-mail is not configured")
	_, err = off.client.SendTestMail(ctx, "alice@example.com")
	e = apiError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, e.Status)
	require.Contains(t, e.Message, "e-mail is not configured: set STEWARD_SMTP_HOST")

	// Nothing listens on the configured server: no message is sent here.
	on := newNotifyAPI(t, &notify.SMTPConfig{Host: "127.0.0.1", Port: 1, TLS: notify.TLSNone, From: "steward@example.com"})
	ids = on.plan(t,
		store.NotificationPlan{Recipient: "alice@example.com", Kind: steward.NotificationDigest, Period: "2026-W48"},
		store.NotificationPlan{Recipient: "bob@example.com", Kind: steward.NotificationDigest, Period: "2026-W48"})
	_, err = on.client.ResendNotification(ctx, ids[0])
	e = apiError(t, err)
	require.Equal(t, http.StatusConflict, e.Status)
	require.Contains(t, e.Message, "is pending: only a failed, unknown or retrying one can be sent again")

	msg := "550 5.1.1 no such user"
	ok, err := on.db.TransitionNotification(ctx, ids[1], []steward.NotificationState{steward.NotificationPending},
		store.NotificationChange{To: steward.NotificationFailed, Attempt: true, LastError: &msg})
	require.NoError(t, err)
	require.True(t, ok)
	again, err := on.client.ResendNotification(ctx, ids[1])
	require.NoError(t, err)
	require.Equal(t, steward.NotificationPending, again.State)
	_, err = on.client.ResendNotification(ctx, ids[1])
	require.Equal(t, http.StatusConflict, apiError(t, err).Status, "already pending again")
	events, _, err := on.db.FindAuditEvents(ctx, store.AuditFilter{ActionPrefix: "notification.resend"})
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, "sec-admin", events[0].Actor)
	require.EqualValues(t, ids[1], events[0].Details["notification_id"])

	_, err = on.client.ResendNotification(ctx, 999999)
	require.Equal(t, http.StatusNotFound, apiError(t, err).Status)
	status, _ := on.call(t, "POST", "/api/v1/notifications/"+itoa(ids[1])+"/resend?force=true", on.admin, "")
	require.Equal(t, http.StatusBadRequest, status, "unknown query parameter")
}

// The test message's input is checked before anything is sent.
func TestSendTestMailInput(t *testing.T) {
	t.Parallel()
	n := newNotifyAPI(t, nil)
	for _, c := range []struct{ body, field, msg string }{
		{`{"to":"not an address"}`, "to", "is not a plain e-mail address"},
		{`{"to":"Alice <alice@example.com>"}`, "to", "is not a plain e-mail address"},
		{`{}`, "to", "to is missing"},
		{`{"to":"alice@example.com","cc":"bob@example.com"}`, "", `unknown field "cc"`},
		{`{"to":"alice@example.com"} {}`, "", "data after the JSON value"},
	} {
		status, e := n.call(t, "POST", "/api/v1/notifications/test", n.admin, c.body)
		require.Equal(t, http.StatusBadRequest, status, c.body)
		require.Equal(t, c.field, e.Field, c.body)
		require.Contains(t, e.Message, c.msg, c.body)
	}
}

// Status and preview work without an SMTP server: status says e-mail is
// off, and a preview renders (items 0: nothing would be sent).
func TestNotificationStatusAndPreviewWithoutSMTP(t *testing.T) {
	t.Parallel()
	n := newNotifyAPI(t, nil)
	ctx := t.Context()
	ids := n.plan(t,
		store.NotificationPlan{Recipient: "alice@example.com", Kind: steward.NotificationDigest, Period: "2026-W48"},
		store.NotificationPlan{Recipient: "bob@example.com", Kind: steward.NotificationDigest, Period: "2026-W48"})
	msg := "connect: connection refused"
	next := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	ok, err := n.db.TransitionNotification(ctx, ids[1], []steward.NotificationState{steward.NotificationPending},
		store.NotificationChange{To: steward.NotificationRetrying, Attempt: true, LastError: &msg, NextAttemptAt: &next})
	require.NoError(t, err)
	require.True(t, ok)

	st, err := n.client.NotificationStatus(ctx)
	require.NoError(t, err)
	require.False(t, st.Enabled)
	require.Empty(t, st.SMTP)
	require.Equal(t, "Monday 08:00 UTC", st.Schedule)
	require.Equal(t, time.Monday, st.NextDigest.Weekday())
	require.True(t, st.NextDigest.After(time.Now()))
	require.Equal(t, map[steward.NotificationState]int{steward.NotificationPending: 1, steward.NotificationRetrying: 1}, st.Counts)
	require.Len(t, st.Attention, 1)
	require.Equal(t, ids[1], st.Attention[0].ID)
	require.Equal(t, msg, st.Attention[0].LastError)
	require.NotNil(t, st.Attention[0].NextAttemptAt)
	require.NotNil(t, st.OwnersWithoutManager)

	p, err := n.client.PreviewNotification(ctx, steward.NotificationDigest, "nobody@example.com")
	require.NoError(t, err)
	require.Equal(t, 0, p.Items)
	require.Equal(t, []string{"nobody@example.com"}, p.To)
	require.Equal(t, steward.NotificationDigest, p.Kind)
	p, err = n.client.PreviewNotification(ctx, steward.NotificationEscalation, "boss@example.com")
	require.NoError(t, err)
	require.Equal(t, 0, p.Items)
	require.Equal(t, steward.NotificationEscalation, p.Kind)

	for _, c := range []struct{ query, field, msg string }{
		{"owner=alice@example.com&manager=boss@example.com", "", "not both"},
		{"", "", "give owner (a digest) or manager (an escalation)"},
		{"owner=alice", "owner", `owner "alice" is not a plain e-mail address`},
		{"manager=" + strings.ReplaceAll("Boss <boss@example.com>", " ", "%20"), "manager", "is not a plain e-mail address"},
		{"owner=alice@example.com&kind=digest", "", `unknown query parameter "kind"`},
	} {
		status, e := n.call(t, "GET", "/api/v1/notifications/preview?"+c.query, n.admin, "")
		require.Equal(t, http.StatusBadRequest, status, c.query)
		require.Equal(t, c.field, e.Field, c.query)
		require.Contains(t, e.Message, c.msg, c.query)
	}
}

// With the password never in any answer: the status names the server,
// its TLS mode and the sender only.
func TestNotificationStatusHidesPassword(t *testing.T) {
	t.Parallel()
	n := newNotifyAPI(t, &notify.SMTPConfig{Host: "smtp.example.com", Port: 587, TLS: notify.TLSStartTLS, Username: "steward",
		Password: secret.New("hunter2-very-secret"), From: "Steward <steward@example.com>"})
	st, err := n.client.NotificationStatus(t.Context())
	require.NoError(t, err)
	require.True(t, st.Enabled)
	require.Contains(t, st.SMTP, "smtp.example.com:587")
	raw, err := json.Marshal(st)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "hunter2")
}

// The owner → manager mapping: set (audited), replace, list, delete
// (audited; 404 when none), with the owner an e-mail address in the path.
func TestManagerMappings(t *testing.T) {
	t.Parallel()
	n := newNotifyAPI(t, nil)
	ctx := t.Context()

	m, err := n.client.SetManager(ctx, "alice+ops@example.com", "boss@example.com")
	require.NoError(t, err)
	require.Equal(t, "alice+ops@example.com", m.Owner)
	require.Equal(t, "boss@example.com", m.Manager)
	require.Equal(t, "sec-admin", m.UpdatedBy)
	_, err = n.client.SetManager(ctx, "bob@example.com", "boss@example.com")
	require.NoError(t, err)
	m, err = n.client.SetManager(ctx, "Alice+Ops@example.com", "chief@example.com")
	require.NoError(t, err, "replacing, in any letter case")
	require.Equal(t, "chief@example.com", m.Manager)

	all, err := n.client.ListManagers(ctx)
	require.NoError(t, err)
	require.Len(t, all.Items, 2)
	require.Equal(t, "Alice+Ops@example.com", all.Items[0].Owner)
	require.Equal(t, "chief@example.com", all.Items[0].Manager)
	require.Equal(t, "bob@example.com", all.Items[1].Owner)
	require.Empty(t, all.NextCursor)

	gone, err := n.client.DeleteManager(ctx, "alice+ops@example.com")
	require.NoError(t, err)
	require.Equal(t, "chief@example.com", gone.Manager)
	_, err = n.client.DeleteManager(ctx, "alice+ops@example.com")
	e := apiError(t, err)
	require.Equal(t, http.StatusNotFound, e.Status)
	require.Contains(t, e.Message, "no manager is mapped for alice+ops@example.com")
	all, err = n.client.ListManagers(ctx)
	require.NoError(t, err)
	require.Len(t, all.Items, 1)

	events, _, err := n.db.FindAuditEvents(ctx, store.AuditFilter{ActionPrefix: "manager_mapping."})
	require.NoError(t, err)
	var actions []string
	for _, ev := range events {
		require.Equal(t, "sec-admin", ev.Actor)
		actions = append(actions, ev.Action+" "+ev.Details["owner"].(string))
	}
	require.Equal(t, []string{"manager_mapping.deleted alice+ops@example.com", "manager_mapping.set Alice+Ops@example.com",
		"manager_mapping.set bob@example.com", "manager_mapping.set alice+ops@example.com"}, actions)

	for _, c := range []struct{ owner, body, field, msg string }{
		{"alice@example.com", `{"manager":"not an address"}`, "manager", "is not a plain e-mail address"},
		{"alice@example.com", `{}`, "manager", "manager is missing"},
		{"alice@example.com", `{"manager":"ALICE@example.com"}`, "manager", "cannot be their own manager"},
		{"alice@example.com", `{"manager":"boss@example.com","note":"x"}`, "", `unknown field "note"`},
		{"not-an-address", `{"manager":"boss@example.com"}`, "owner", "is not a plain e-mail address"},
	} {
		status, e := n.call(t, "PUT", "/api/v1/managers/"+c.owner, n.admin, c.body)
		require.Equal(t, http.StatusBadRequest, status, c.body)
		require.Equal(t, c.field, e.Field, c.body)
		require.Contains(t, e.Message, c.msg, c.body)
	}
	status, _ := n.call(t, "GET", "/api/v1/managers?owner=bob@example.com", n.admin, "")
	require.Equal(t, http.StatusBadRequest, status, "unknown query parameter")
	req, err := http.NewRequestWithContext(ctx, "PUT", n.url+"/api/v1/managers/bob@example.com", bytes.NewReader([]byte(`{"manager":"boss@example.com"}`)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+n.admin)
	resp, err := apitest.Client(t).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, "JSON only")
}

// A preview renders the message as it would be sent: an owner's digest
// of their open work, a manager's escalation of their reports' overdue
// work (the report found through the mapping).
func TestNotificationPreviewRenders(t *testing.T) {
	t.Parallel()
	n := newNotifyAPI(t, nil)
	ctx := t.Context()
	now := time.Now().UTC()
	late := storetest.Assessment(t, n.db, "storage-public-access", "/subscriptions/s1/rg/a/sa1", steward.StatusUnhealthy)
	storetest.Assignment(t, n.db, late.ID, "alice@example.com", now.AddDate(0, 0, -3))
	soon := storetest.Assessment(t, n.db, "vm-disk-encryption", "/subscriptions/s1/rg/a/vm1", steward.StatusUnhealthy)
	storetest.Assignment(t, n.db, soon.ID, "alice@example.com", now.AddDate(0, 0, 30))

	p, err := n.client.PreviewNotification(ctx, steward.NotificationDigest, "Alice@example.com")
	require.NoError(t, err)
	require.Equal(t, 2, p.Items)
	require.Equal(t, steward.NotificationDigest, p.Kind)
	require.Contains(t, p.Subject, "1 overdue")
	for _, part := range []string{p.Text, p.HTML} {
		require.Contains(t, part, "storage-public-access")
		require.Contains(t, part, "/subscriptions/s1/rg/a/vm1")
		require.Contains(t, part, "https://steward.example.com/")
	}

	p, err = n.client.PreviewNotification(ctx, steward.NotificationEscalation, "boss@example.com")
	require.NoError(t, err)
	require.Equal(t, 0, p.Items, "no manager is known for alice yet")
	_, err = n.client.SetManager(ctx, "alice@example.com", "boss@example.com")
	require.NoError(t, err)
	p, err = n.client.PreviewNotification(ctx, steward.NotificationEscalation, "boss@example.com")
	require.NoError(t, err)
	require.Equal(t, 1, p.Items, "only the overdue assignment")
	require.Equal(t, []string{"boss@example.com"}, p.To)
	require.Contains(t, p.Text, "alice@example.com")
	require.Contains(t, p.Text, "storage-public-access")
	require.NotContains(t, p.Text, "vm-disk-encryption")
}
