package ticketsync_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/snowemu"
)

const webhookSecret = "webhook-secret-must-not-leak"

// sign is the business rule's signature: base64(HMAC-SHA256(secret,
// "<timestamp>.<body>")).
func sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ruleBody is what the business rule sends for a ticket, keys in the rule's
// order.
func ruleBody(event, table, sysID, number, state, corr string, modCount int) []byte {
	return fmt.Appendf(nil, `{"event":%q,"table":%q,"sys_id":%q,"number":%q,"state":%q,"state_label":"","assigned_to":"","correlation_id":%q,"sys_updated_on":"2026-11-25 21:55:03","sys_mod_count":"%d"}`,
		event, table, sysID, number, state, corr, modCount)
}

type webhookAnswer struct {
	status  int
	code    string
	message string
	raw     string
}

// deliver posts body to integration id's webhook with the given headers
// (nil values are left out).
func (b *testBundle) deliver(t *testing.T, id int64, ts, sig *string, body []byte) webhookAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.webhookURL(id), strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if ts != nil {
		req.Header.Set("X-Steward-Timestamp", *ts)
	}
	if sig != nil {
		req.Header.Set("X-Signature-SHA256", *sig)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(raw, &e)
	return webhookAnswer{status: resp.StatusCode, code: e.Error.Code, message: e.Error.Message, raw: string(raw)}
}

// deliverSigned posts body signed with secret at time at.
func (b *testBundle) deliverSigned(t *testing.T, id int64, secret string, at time.Time, body []byte) webhookAnswer {
	t.Helper()
	ts := strconv.FormatInt(at.Unix(), 10)
	sig := sign(secret, ts, body)
	return b.deliver(t, id, &ts, &sig, body)
}

func (b *testBundle) webhookURL(id int64) string {
	return fmt.Sprintf("%s/api/v1/integrations/%d/events", b.srv.URL(), id)
}

// pendingRefreshes counts the records waiting in sync_pending: a queued
// delivery's row is written before the webhook answers.
func (b *testBundle) pendingRefreshes(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.srv.DB.Writer().QueryRowContext(t.Context(), `SELECT count(*) FROM sync_pending`).Scan(&n))
	return n
}

// tableReads counts the emulator's Table API reads of incidents (single
// records and sys_idIN lists).
func (b *testBundle) tableReads() int {
	n := 0
	for k, v := range b.emu.Requests() {
		if strings.HasPrefix(k, "GET /api/now/table/incident") {
			n += v
		}
	}
	return n
}

// webhookIntegration is an integration with a webhook secret and one
// created incident.
func (b *testBundle) webhookIntegration(t *testing.T) (*steward.Integration, *apiclient.AssignmentDetail) {
	t.Helper()
	in := b.integration(t, "basic")
	_, err := b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{WebhookSecret: ptr(webhookSecret)})
	require.NoError(t, err)
	ids := b.seed(t, 1)
	a := b.assign(t, ids[0], "incident")
	return in, b.waitTickets(t, []int64{a.ID}, 20*time.Second)[a.ID]
}

// TestWebhookRefusals sends every kind of bad delivery over real HTTP: each
// gets its own 4xx in the JSON error shape and changes nothing.
func TestWebhookRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	in, d := b.webhookIntegration(t)
	tk := d.Ticket
	noSecret, err := b.client.CreateIntegration(t.Context(), apiclient.IntegrationRequest{
		Name: ptr("no-secret"), Scope: ptr("/subscriptions/other"), InstanceURL: ptr(b.emuURL), Local: ptr(true),
		AuthMode: ptr("basic"), Username: ptr("admin"), Password: ptr(emuPassword)})
	require.NoError(t, err)
	other, err := b.client.CreateIntegration(t.Context(), apiclient.IntegrationRequest{
		Name: ptr("other"), Scope: ptr("/subscriptions/third"), InstanceURL: ptr(b.emuURL), Local: ptr(true),
		AuthMode: ptr("basic"), Username: ptr("admin"), Password: ptr(emuPassword), WebhookSecret: ptr("other-secret")})
	require.NoError(t, err)

	now := time.Now()
	good := ruleBody("update", "incident", tk.SysID, tk.Number, "6", tk.CorrelationID, tk.ModCount+1)
	ts := strconv.FormatInt(now.Unix(), 10)
	bodyOnly := func() string { // the reference's example rule: no timestamp in the MAC
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		mac.Write(good)
		return base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}()
	signed := func(body []byte) (*string, *string, []byte) { s := sign(webhookSecret, ts, body); return &ts, &s, body }
	big := append([]byte(`{"event":"update","pad":"`), strings.Repeat("x", 70<<10)...)
	big = append(big, `"}`...)

	readsBefore := b.tableReads()
	auditBefore, err := b.client.ListAudit(t.Context(), nil)
	require.NoError(t, err)

	cases := []struct {
		name   string
		id     int64
		send   func() (*string, *string, []byte)
		status int
		want   string // in the message
	}{
		{"UnknownIntegration", 99999, func() (*string, *string, []byte) { return signed(good) }, 404, "integration 99999 not found"},
		{"NoWebhookSecret", noSecret.ID, func() (*string, *string, []byte) { return signed(good) }, 409, "--webhook-secret-file"},
		{"MissingTimestamp", in.ID, func() (*string, *string, []byte) { _, s, body := signed(good); return nil, s, body }, 401, "X-Steward-Timestamp header is missing"},
		{"TimestampNotANumber", in.ID, func() (*string, *string, []byte) {
			x := "yesterday"
			s := sign(webhookSecret, x, good)
			return &x, &s, good
		}, 401, "not a Unix time"},
		{"StaleTimestamp", in.ID, func() (*string, *string, []byte) {
			x := strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10)
			s := sign(webhookSecret, x, good)
			return &x, &s, good
		}, 401, "old"},
		{"FutureTimestamp", in.ID, func() (*string, *string, []byte) {
			x := strconv.FormatInt(now.Add(6*time.Minute).Unix(), 10)
			s := sign(webhookSecret, x, good)
			return &x, &s, good
		}, 401, "in the future"},
		{"MissingSignature", in.ID, func() (*string, *string, []byte) { return &ts, nil, good }, 401, "X-Signature-SHA256 header is missing"},
		{"WrongSecret", in.ID, func() (*string, *string, []byte) { s := sign("guess", ts, good); return &ts, &s, good }, 401, "does not match"},
		{"BodyOnlySignature", in.ID, func() (*string, *string, []byte) { s := bodyOnly; return &ts, &s, good }, 401, "does not match"},
		{"SignatureNotBase64", in.ID, func() (*string, *string, []byte) { s := "%%%"; return &ts, &s, good }, 401, "does not match"},
		{"BodyChangedAfterSigning", in.ID, func() (*string, *string, []byte) {
			x, s, _ := signed(good)
			return x, s, []byte(strings.Replace(string(good), `"state":"6"`, `"state":"7"`, 1))
		}, 401, "does not match"},
		{"TooLarge", in.ID, func() (*string, *string, []byte) { return signed(big) }, 413, "larger than 65536 bytes"},
		{"NotJSON", in.ID, func() (*string, *string, []byte) { return signed([]byte("state=6")) }, 400, "business rule's JSON"},
		{"MissingFields", in.ID, func() (*string, *string, []byte) {
			return signed([]byte(`{"event":"update","table":"incident","sys_id":"` + tk.SysID + `"}`))
		}, 400, "number, state, state_label, assigned_to, correlation_id, sys_updated_on, sys_mod_count missing"},
		{"NumberNotString", in.ID, func() (*string, *string, []byte) {
			return signed([]byte(strings.Replace(string(good), fmt.Sprintf(`"sys_mod_count":"%d"`, tk.ModCount+1), `"sys_mod_count":3`, 1)))
		}, 400, "sys_mod_count"},
		{"UnknownField", in.ID, func() (*string, *string, []byte) {
			return signed([]byte(strings.Replace(string(good), `{"event"`, `{"extra":"1","event"`, 1)))
		}, 400, "unknown field"},
		{"UnknownEvent", in.ID, func() (*string, *string, []byte) {
			return signed([]byte(strings.Replace(string(good), `"event":"update"`, `"event":"merge"`, 1)))
		}, 400, "not insert, update or delete"},
		{"UnknownTicket", in.ID, func() (*string, *string, []byte) {
			return signed(ruleBody("update", "incident", "0123456789abcdef0123456789abcdef", "INC0099999", "6", "", 3))
		}, 404, "not a Steward ticket"},
		{"UnknownCorrelationID", in.ID, func() (*string, *string, []byte) {
			return signed(ruleBody("insert", "incident", "0123456789abcdef0123456789abcdef", "INC0099999", "1", "steward-someone-else-1", 0))
		}, 404, "not a Steward ticket"},
		{"OtherIntegrationsTicket", other.ID, func() (*string, *string, []byte) {
			x := ts
			s := sign("other-secret", x, good)
			return &x, &s, good
		}, 404, "not a Steward ticket"},
		{"WrongTable", in.ID, func() (*string, *string, []byte) {
			return signed(ruleBody("update", "problem", tk.SysID, tk.Number, "6", tk.CorrelationID, tk.ModCount+1))
		}, 404, "not a Steward ticket"},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		x, s, body := tc.send()
		got := b.deliver(t, tc.id, x, s, body)
		require.Equal(t, tc.status, got.status, "%s: %s", tc.name, got.raw)
		require.NotEmpty(t, got.code, "%s: the JSON error shape: %s", tc.name, got.raw)
		require.Contains(t, got.message, tc.want, tc.name)
		require.NotContains(t, got.raw, webhookSecret, tc.name)
		require.NotContains(t, got.raw, tk.CorrelationID, "%s: says nothing about what Steward links", tc.name)
		seen[tc.name] = got.message
	}
	require.Equal(t, "not a Steward ticket", seen["UnknownTicket"], "no more than that")
	require.NotEqual(t, seen["StaleTimestamp"], seen["FutureTimestamp"], "says which")

	require.Zero(t, b.pendingRefreshes(t), "no refusal queued anything")
	require.Equal(t, readsBefore, b.tableReads(), "no refusal read anything")
	after, err := b.client.GetAssignment(t.Context(), d.ID)
	require.NoError(t, err)
	require.Equal(t, d.Ticket.RawState, after.Ticket.RawState)
	require.Equal(t, d.Ticket.ModCount, after.Ticket.ModCount)
	require.Len(t, after.History, len(d.History))
	auditAfter, err := b.client.ListAudit(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, auditAfter.Items, len(auditBefore.Items), "nothing audited")

	// The same delivery, well formed and fresh, is accepted and queued once;
	// one already applied (this sys_mod_count or older) queues nothing.
	got := b.deliverSigned(t, in.ID, webhookSecret, time.Now(), good)
	require.Equal(t, http.StatusAccepted, got.status, got.raw)
	require.JSONEq(t, `{"status":"queued"}`, got.raw)
	// The drainer reads the record back once and drops the pending row.
	require.Eventually(t, func() bool { return b.pendingRefreshes(t) == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, readsBefore+1, b.tableReads(), "read back once")
	stale := ruleBody("update", "incident", tk.SysID, tk.Number, "1", tk.CorrelationID, tk.ModCount)
	got = b.deliverSigned(t, in.ID, webhookSecret, time.Now(), stale)
	require.Equal(t, http.StatusAccepted, got.status, got.raw)
	require.JSONEq(t, `{"status":"up_to_date"}`, got.raw)
	require.Zero(t, b.pendingRefreshes(t), "an applied version queues nothing")

	// Nothing secret reached the logs either.
	require.NotContains(t, b.logs.String(), webhookSecret)
	require.NotContains(t, b.logs.String(), "other-secret")
	require.Contains(t, b.logs.String(), "webhook refused", "refusals are logged for the operator")
}

// wireWebhook points the emulator's business rule at Steward's webhook for
// integration id, signing as docs/servicenow-setup.md §3 does, and makes
// the poll and reconcile too slow to be what applies a change.
func (b *testBundle) wireWebhook(t *testing.T, id int64) {
	t.Helper()
	_, err := b.client.UpdateIntegration(t.Context(), id, apiclient.IntegrationRequest{Sync: &steward.SyncSettings{
		PollInterval: steward.Duration(24 * time.Hour), ReconcileInterval: steward.Duration(24 * time.Hour)}})
	require.NoError(t, err)
	require.NoError(t, b.emu.AddWebhook(snowemu.Webhook{URL: b.webhookURL(id), Secret: webhookSecret, Scheme: snowemu.SchemeSteward}))
}

// waitAssignment polls until ok holds for the assignment, and returns it
// with how long that took.
func (b *testBundle) waitAssignment(t *testing.T, id int64, within time.Duration, ok func(d *apiclient.AssignmentDetail) bool) (*apiclient.AssignmentDetail, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		d, err := b.client.GetAssignment(t.Context(), id)
		require.NoError(t, err)
		if ok(d) {
			return d, time.Since(start)
		}
		if time.Since(start) > within {
			require.FailNow(t, "assignment not updated in time", "assignment %d: %+v, ticket %+v", id, d.Assignment, d.Ticket)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWebhookAppliesAgentChanges: an agent reassigns, then resolves, a
// ticket in the emulator; its business rule posts to Steward, which applies
// each change within seconds (the poll and reconcile are a day away).
func TestWebhookAppliesAgentChanges(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	in, d := b.webhookIntegration(t)
	b.wireWebhook(t, in.ID)

	_, err := b.emu.Reassign("incident", d.Ticket.Number, "david.loo", "beth.anglin")
	require.NoError(t, err)
	got, took := b.waitAssignment(t, d.ID, 5*time.Second, func(d *apiclient.AssignmentDetail) bool { return d.Owner == "david.loo@example.com" })
	t.Logf("reassignment applied after %s", took)
	require.Equal(t, "david.loo@example.com", got.Ticket.AssigneeEmail)
	require.Equal(t, steward.AssignmentActive, got.State)

	_, err = b.emu.SetState("incident", d.Ticket.Number, snowemu.StateChange{State: "Resolved", User: "david.loo"})
	require.NoError(t, err)
	got, took = b.waitAssignment(t, d.ID, 5*time.Second, func(d *apiclient.AssignmentDetail) bool { return d.State != steward.AssignmentActive })
	t.Logf("resolution applied after %s", took)
	require.Equal(t, steward.AssignmentCompleted, got.State)
	require.Equal(t, steward.TicketResolved, got.Ticket.State)
	require.Contains(t, got.History[len(got.History)-1].Reason, "Resolved", "the history says why")

	b.emu.WaitWebhooks()
	for _, dl := range b.emu.WebhookDeliveries() {
		require.Equal(t, http.StatusAccepted, dl.Status, "every delivery accepted: %s", dl.Body)
	}
	st, err := b.client.SyncStatus(t.Context(), in.ID)
	require.NoError(t, err)
	require.NotNil(t, st.LastWebhookAt)
	require.True(t, st.HasWebhookSecret)
	require.Equal(t, b.webhookURL(in.ID), st.WebhookURL)
	require.NotContains(t, b.logs.String(), webhookSecret)
}

// TestWebhookDuplicatesAndReordering: the emulator sends every delivery
// twice and out of order while an agent changes a ticket quickly; Steward
// ends where ServiceNow ends, and no change is applied twice or undone.
func TestWebhookDuplicatesAndReordering(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{emu: snowemu.Options{WebhookDuplicate: 1, WebhookReorder: true, WebhookReorderWindow: 300 * time.Millisecond, Seed: 7}})
	in, d := b.webhookIntegration(t)
	b.wireWebhook(t, in.ID)

	agents := []string{"david.loo", "fred.luddy", "abel.tuter", "don.goodliffe", "david.loo"}
	for _, who := range agents {
		_, err := b.emu.Reassign("incident", d.Ticket.Number, who, "beth.anglin")
		require.NoError(t, err)
	}
	rec, err := b.emu.Record("incident", d.Ticket.SysID)
	require.NoError(t, err)
	final := rec["sys_mod_count"]
	b.emu.WaitWebhooks()
	got, _ := b.waitAssignment(t, d.ID, 10*time.Second, func(d *apiclient.AssignmentDetail) bool {
		return strconv.Itoa(d.Ticket.ModCount) == final
	})
	require.Equal(t, "david.loo@example.com", got.Owner, "the last assignee wins, whatever order the deliveries came in")
	require.Equal(t, "david.loo@example.com", got.Ticket.AssigneeEmail)

	deliveries := b.emu.WebhookDeliveries()
	require.Len(t, deliveries, 2*len(agents), "each change was delivered twice")
	for _, dl := range deliveries {
		require.Equal(t, http.StatusAccepted, dl.Status, dl.Body)
	}
	// Let any late duplicate's job finish, then check the history: owner
	// changes only ever move forward, and at most once per agent change.
	time.Sleep(500 * time.Millisecond)
	got, err = b.client.GetAssignment(t.Context(), d.ID)
	require.NoError(t, err)
	require.Equal(t, "david.loo@example.com", got.Owner)
	var owners []string
	for _, e := range got.History {
		if e.Actor == steward.IntegrationActor("emulator") {
			owners = append(owners, e.Reason)
		}
	}
	require.LessOrEqual(t, len(owners), len(agents), "no change applied twice: %v", owners)
	require.NotContains(t, b.logs.String(), webhookSecret)
}

// TestSyncEndpointsOverHTTP: POST sync answers 202 at once; GET shows the
// reconcile's outcome once it ran.
func TestSyncEndpointsOverHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	in, d := b.webhookIntegration(t)
	before, err := b.client.SyncStatus(t.Context(), in.ID)
	require.NoError(t, err)
	require.True(t, before.HasWebhookSecret)
	require.Equal(t, b.webhookURL(in.ID), before.WebhookURL)

	// A change no webhook announces: only the sync finds it.
	_, err = b.emu.Reassign("incident", d.Ticket.Number, "david.loo", "beth.anglin")
	require.NoError(t, err)
	_, err = b.client.SyncNow(t.Context(), in.ID)
	require.NoError(t, err)
	var st *apiclient.SyncStatus
	require.Eventually(t, func() bool {
		st, err = b.client.SyncStatus(t.Context(), in.ID)
		require.NoError(t, err)
		return st.Running == "" && st.LastReconcileSuccessAt != nil
	}, 20*time.Second, 50*time.Millisecond)
	require.GreaterOrEqual(t, st.LastReconcile.Checked, 1)
	require.NotNil(t, st.LastPollSuccessAt)
	got, err := b.client.GetAssignment(t.Context(), d.ID)
	require.NoError(t, err)
	require.Equal(t, "david.loo@example.com", got.Owner)

	_, err = b.client.SyncStatus(t.Context(), 999)
	apiErr, ok := err.(*apiclient.Error)
	require.True(t, ok, "%v", err)
	require.Equal(t, http.StatusNotFound, apiErr.Status)
}

// TestOwnerChangeReachesServiceNow: PATCHing the owner of a ServiceNow
// assignment updates the ticket's assigned_to; the instance's webhook for
// that write comes back to Steward and changes nothing (no ping-pong).
func TestOwnerChangeReachesServiceNow(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	in, d := b.webhookIntegration(t)
	b.wireWebhook(t, in.ID)
	davidID, err := b.emu.UserID("david.loo")
	require.NoError(t, err)

	_, err = b.client.UpdateAssignment(t.Context(), d.ID, apiclient.AssignmentRequest{Owner: "david.loo@example.com", Reason: "team change"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rec, err := b.emu.Record("incident", d.Ticket.SysID)
		require.NoError(t, err)
		return rec["assigned_to"] == davidID
	}, 10*time.Second, 20*time.Millisecond)
	b.emu.WaitWebhooks()
	got, _ := b.waitAssignment(t, d.ID, 5*time.Second, func(d *apiclient.AssignmentDetail) bool {
		return d.Ticket.AssigneeEmail == "david.loo@example.com"
	})
	require.Equal(t, "david.loo@example.com", got.Owner)
	rec, err := b.emu.Record("incident", d.Ticket.SysID)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // a ping-pong would write again by now
	again, err := b.emu.Record("incident", d.Ticket.SysID)
	require.NoError(t, err)
	require.Equal(t, rec["sys_mod_count"], again["sys_mod_count"], "Steward did not write the record again")
}
