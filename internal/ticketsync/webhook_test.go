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

// refreshJobs counts queued ticket_refresh jobs, done or not.
func (b *testBundle) refreshJobs(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.srv.DB.Writer().QueryRowContext(t.Context(), `SELECT count(*) FROM river_job WHERE kind = 'ticket_refresh'`).Scan(&n))
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

	jobsBefore := b.refreshJobs(t)
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
		{"TimestampNotANumber", in.ID, func() (*string, *string, []byte) { x := "yesterday"; s := sign(webhookSecret, x, good); return &x, &s, good }, 401, "not a Unix time"},
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

	require.Equal(t, jobsBefore, b.refreshJobs(t), "no refusal queued anything")
	after, err := b.client.GetAssignment(t.Context(), d.ID)
	require.NoError(t, err)
	require.Equal(t, d.Ticket.RawState, after.Ticket.RawState)
	require.Equal(t, d.Ticket.ModCount, after.Ticket.ModCount)
	require.Len(t, after.History, len(d.History))
	auditAfter, err := b.client.ListAudit(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, auditAfter.Items, len(auditBefore.Items), "nothing audited")

	// Nothing secret reached the logs either.
	require.NotContains(t, b.logs.String(), webhookSecret)
	require.NotContains(t, b.logs.String(), "other-secret")
	require.Contains(t, b.logs.String(), "webhook refused", "refusals are logged for the operator")
}
