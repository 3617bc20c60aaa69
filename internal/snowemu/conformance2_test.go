package snowemu_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/snowemu"
)

func (b *testBundle) token(t *testing.T, form url.Values, opts ...reqOpt) *response {
	t.Helper()
	all := append([]reqOpt{noAuth(), withHeader("Content-Type", "application/x-www-form-urlencoded")}, opts...)
	return b.do(t, http.MethodPost, "/oauth_token.do", form.Encode(), all...)
}

func passwordForm(user, pass string) url.Values {
	return url.Values{"grant_type": {"password"}, "client_id": {"steward"}, "client_secret": {"steward-secret"},
		"username": {user}, "password": {pass}}
}

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{86}$`)

const tokenDenied = `{"error_description":"access_denied","error":"server_error"}`

// §9.6: the token endpoint.
func TestChecklist6OAuth(t *testing.T) {
	t.Parallel()

	t.Run("PasswordGrant", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		r := b.token(t, passwordForm("svc.steward", snowemu.DefaultUserPassword))
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		require.Regexp(t, `^\{"access_token":"[^"]+","refresh_token":"[^"]+","scope":"useraccount","token_type":"Bearer","expires_in":1799\}$`, string(r.body))
		tok := r.json(t)
		access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
		require.Regexp(t, tokenPattern, access)
		require.Regexp(t, tokenPattern, refresh)

		// Same access token while valid (§1.2).
		b.clock.Advance(10 * time.Minute)
		again := b.token(t, passwordForm("svc.steward", snowemu.DefaultUserPassword)).json(t)
		require.Equal(t, access, again["access_token"])
		require.Equal(t, float64(1199), again["expires_in"])

		api := b.do(t, http.MethodGet, "/api/now/table/incident", "", noAuth(), withHeader("Authorization", "Bearer "+access))
		require.Equal(t, http.StatusOK, api.status)

		// Expiry → 401 with the Basic body.
		b.clock.Advance(20 * time.Minute)
		api = b.do(t, http.MethodGet, "/api/now/table/incident", "", noAuth(), withHeader("Authorization", "Bearer "+access))
		require.Equal(t, http.StatusUnauthorized, api.status)
		require.Equal(t, `{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}`, string(api.body))

		// Refresh: new access token, same refresh token.
		rf := b.token(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {"steward"}, "client_secret": {"steward-secret"}, "refresh_token": {refresh}})
		require.Equal(t, http.StatusOK, rf.status)
		rtok := rf.json(t)
		require.NotEqual(t, access, rtok["access_token"])
		require.Equal(t, refresh, rtok["refresh_token"])
		api = b.do(t, http.MethodGet, "/api/now/table/incident", "", noAuth(), withHeader("Authorization", "Bearer "+rtok["access_token"].(string)))
		require.Equal(t, http.StatusOK, api.status)

		// Records are attributed to the token's user.
		cr := b.do(t, http.MethodPost, "/api/now/table/incident", `{"short_description":"x"}`, noAuth(), withHeader("Authorization", "Bearer "+rtok["access_token"].(string)))
		require.Equal(t, "svc.steward", cr.result(t)["sys_created_by"])

		b.emu.ExpireTokens()
		api = b.do(t, http.MethodGet, "/api/now/table/incident", "", noAuth(), withHeader("Authorization", "Bearer "+rtok["access_token"].(string)))
		require.Equal(t, http.StatusUnauthorized, api.status)
	})

	t.Run("Failures", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		bad := []url.Values{
			passwordForm("svc.steward", "wrong"),
			passwordForm("nobody", "x"),
			{"grant_type": {"password"}, "client_id": {"steward"}, "client_secret": {"nope"}, "username": {"admin"}, "password": {"admin"}},
			{"grant_type": {"password"}, "client_id": {"other"}, "client_secret": {"steward-secret"}, "username": {"admin"}, "password": {"admin"}},
			{"grant_type": {"refresh_token"}, "client_id": {"steward"}, "client_secret": {"steward-secret"}, "refresh_token": {"bogus"}},
			{"grant_type": {"client_credentials"}, "client_id": {"steward"}, "client_secret": {"steward-secret"}},
		}
		for _, f := range bad {
			r := b.token(t, f)
			require.Equal(t, http.StatusUnauthorized, r.status, "form %v", f)
			require.Equal(t, tokenDenied, string(r.body))
		}
		// Malformed: JSON body, missing or unsupported grant.
		r := b.do(t, http.MethodPost, "/oauth_token.do", `{"grant_type":"password"}`, noAuth())
		require.Equal(t, http.StatusBadRequest, r.status)
		require.Equal(t, "invalid_request", r.json(t)["error"])
		r = b.token(t, url.Values{"client_id": {"steward"}})
		require.Equal(t, http.StatusBadRequest, r.status)
		r = b.token(t, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}})
		require.Equal(t, http.StatusBadRequest, r.status)
	})

	t.Run("ClientCredentials", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{ClientCredentials: true, OAuthAppUser: "svc.steward", AccessTokenLifetime: time.Hour})
		r := b.token(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {"steward"}, "client_secret": {"steward-secret"}})
		require.Equal(t, http.StatusOK, r.status)
		tok := r.json(t)
		require.NotContains(t, tok, "refresh_token")
		require.Equal(t, float64(3599), tok["expires_in"])
		cr := b.do(t, http.MethodPost, "/api/now/table/incident", `{"short_description":"x"}`, noAuth(), withHeader("Authorization", "Bearer "+tok["access_token"].(string)))
		require.Equal(t, http.StatusCreated, cr.status)
		require.Equal(t, "svc.steward", cr.result(t)["sys_updated_by"])
	})
}

// §9.7: state models.
func TestChecklist7StateModels(t *testing.T) {
	t.Parallel()

	t.Run("IncidentResolveAndClose", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		beth := b.user(t, "beth.anglin")
		id := b.create(t, "incident", `{"short_description":"x"}`)["sys_id"].(string)
		r := b.patch(t, "incident", id, `{"state":"6","close_code":"Solution provided"}`)
		require.Equal(t, http.StatusForbidden, r.status)
		require.Contains(t, string(r.body), `The following fields are mandatory: Close notes"`)

		b.clock.Advance(time.Hour)
		r = b.patch(t, "incident", id, `{"state":"6","close_code":"Solution provided","close_notes":"fixed"}`, withBasic("beth.anglin", snowemu.DefaultUserPassword))
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		rec := r.result(t)
		require.Equal(t, "6", rec["state"])
		require.Equal(t, "6", rec["incident_state"])
		require.Equal(t, "2024-03-05 15:02:10", rec["resolved_at"])
		require.Equal(t, beth, rec["resolved_by"])
		require.Equal(t, "true", rec["active"])

		r = b.patch(t, "incident", id, `{"state":"7"}`)
		rec = r.result(t)
		require.Equal(t, "7", rec["state"])
		require.Equal(t, "false", rec["active"])
		require.Equal(t, "2024-03-05 15:02:10", rec["closed_at"])
		require.NotEmpty(t, rec["closed_by"])

		// Reopen clears the resolution.
		rec = b.patch(t, "incident", id, `{"state":"2"}`).result(t)
		require.Equal(t, "true", rec["active"])
		require.Empty(t, rec["resolved_at"])
		require.Equal(t, "1", rec["reopen_count"])
	})

	t.Run("IncidentStrictSwitches", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{StrictOnHold: true, StrictClosedIncidents: true})
		id := b.create(t, "incident", `{"short_description":"x"}`)["sys_id"].(string)
		r := b.patch(t, "incident", id, `{"state":"3"}`)
		require.Equal(t, http.StatusForbidden, r.status)
		require.Contains(t, string(r.body), "mandatory: On hold reason")
		require.Equal(t, http.StatusOK, b.patch(t, "incident", id, `{"state":"3","hold_reason":"1"}`).status)
		require.Equal(t, http.StatusOK, b.patch(t, "incident", id, `{"state":"7","close_code":"Duplicate","close_notes":"dup"}`).status)
		r = b.patch(t, "incident", id, `{"short_description":"y"}`, withBasic("beth.anglin", snowemu.DefaultUserPassword))
		require.Equal(t, http.StatusForbidden, r.status)
		require.Equal(t, `{"error":{"message":"Operation Failed","detail":"ACL Exception Update Failed due to security constraints"},"status":"failure"}`, string(r.body))

		lax := setup(t, snowemu.Options{})
		id = lax.create(t, "incident", `{"short_description":"x"}`)["sys_id"].(string)
		require.Equal(t, http.StatusOK, lax.patch(t, "incident", id, `{"state":"3"}`).status)
	})

	t.Run("PriorityLookup", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		want := map[string]string{"11": "1", "12": "2", "13": "3", "21": "2", "22": "3", "23": "4", "31": "3", "32": "4", "33": "5"}
		for k, p := range want {
			rec := b.create(t, "incident", fmt.Sprintf(`{"impact":"%c","urgency":"%c","priority":"1"}`, k[0], k[1]))
			require.Equal(t, p, rec["priority"], "impact×urgency %s", k)
		}
		id := b.create(t, "incident", `{}`)["sys_id"].(string)
		require.Equal(t, "1", b.patch(t, "incident", id, `{"impact":"1","urgency":"1"}`).result(t)["priority"])
	})

	t.Run("ProblemTransitions", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		beth := b.user(t, "beth.anglin")
		rec := b.create(t, "problem", `{"short_description":"p"}`)
		id := rec["sys_id"].(string)
		require.Equal(t, "PRB0040001", rec["number"])
		require.Equal(t, "101", rec["state"])

		// Illegal jump: 200, state unchanged, other fields applied.
		r := b.patch(t, "problem", id, `{"state":"104","description":"d"}`)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "101", r.result(t)["state"])
		require.Equal(t, "d", r.result(t)["description"])
		// Assess needs an assignee.
		require.Equal(t, "101", b.patch(t, "problem", id, `{"state":"102"}`).result(t)["state"])
		require.Equal(t, "102", b.patch(t, "problem", id, `{"state":"102","assigned_to":"`+beth+`"}`).result(t)["state"])
		require.Equal(t, "103", b.patch(t, "problem", id, `{"state":"103"}`).result(t)["state"])
		require.Equal(t, "103", b.patch(t, "problem", id, `{"state":"104"}`).result(t)["state"])
		require.Equal(t, "104", b.patch(t, "problem", id, `{"state":"104","cause_notes":"c"}`).result(t)["state"])
		rec = b.patch(t, "problem", id, `{"state":"106","resolution_code":"fix_applied","fix_notes":"f"}`).result(t)
		require.Equal(t, "106", rec["state"])
		require.NotEmpty(t, rec["resolved_at"])
		rec = b.patch(t, "problem", id, `{"state":"107"}`).result(t)
		require.Equal(t, "107", rec["state"])
		require.Equal(t, "false", rec["active"])

		fb := setup(t, snowemu.Options{BlockedTransitions: snowemu.TransitionForbidden})
		pid := fb.create(t, "problem", `{"short_description":"p"}`)["sys_id"].(string)
		r = fb.patch(t, "problem", pid, `{"state":"106","description":"d"}`)
		require.Equal(t, http.StatusForbidden, r.status)
		require.Equal(t, `{"error":{"message":"Operation Failed","detail":"Error during update of problem (PRB0040001)"},"status":"failure"}`, string(r.body))
		rec2, err := fb.emu.Record("problem", pid)
		require.NoError(t, err)
		require.Empty(t, rec2["description"])
	})

	t.Run("ChangeTransitions", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		rec := b.create(t, "change_request", `{"short_description":"c","state":"-1"}`)
		id := rec["sys_id"].(string)
		require.Equal(t, "CHG0030001", rec["number"])
		require.Equal(t, "-5", rec["state"], "insert cannot skip to Implement")
		require.Equal(t, "-4", b.patch(t, "change_request", id, `{"state":"-4"}`).result(t)["state"])
		require.Equal(t, "-4", b.patch(t, "change_request", id, `{"state":"-3"}`).result(t)["state"], "approval pending")
		require.Equal(t, "-3", b.patch(t, "change_request", id, `{"state":"-3","approval":"approved"}`).result(t)["state"])
		require.Equal(t, "-2", b.patch(t, "change_request", id, `{"state":"-2"}`).result(t)["state"])
		require.Equal(t, "-1", b.patch(t, "change_request", id, `{"state":"-1"}`).result(t)["state"])
		require.Equal(t, "0", b.patch(t, "change_request", id, `{"state":"0"}`).result(t)["state"])
		require.Equal(t, "0", b.patch(t, "change_request", id, `{"state":"4"}`).result(t)["state"], "Review cannot be canceled")
		require.Equal(t, "0", b.patch(t, "change_request", id, `{"state":"3"}`).result(t)["state"], "close needs close code")
		rec = b.patch(t, "change_request", id, `{"state":"3","close_code":"successful","close_notes":"done"}`).result(t)
		require.Equal(t, "3", rec["state"])
		require.Equal(t, "false", rec["active"])

		std := b.create(t, "change_request", `{"type":"standard"}`)
		require.Equal(t, "approved", std["approval"])
		sid := std["sys_id"].(string)
		require.Equal(t, "-5", b.patch(t, "change_request", sid, `{"state":"-4"}`).result(t)["state"], "standard skips Assess")
		require.Equal(t, "-2", b.patch(t, "change_request", sid, `{"state":"-2"}`).result(t)["state"])
		require.Equal(t, "4", b.patch(t, "change_request", sid, `{"state":"4"}`).result(t)["state"])
	})
}

// §9.8: rate-limit rules.
func TestChecklist8RateLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{RateLimitRemainingHeader: true})
	b.emu.SetRateLimits([]snowemu.RateLimitRule{
		{ID: "allusers00000000000000000000000a", Limit: 3},
		{ID: "itilrole00000000000000000000000b", Role: "itil", Limit: 5},
		{ID: "itilrole00000000000000000000000c", Role: "itil", Limit: 4},
		{ID: "bethuser00000000000000000000000d", User: "beth.anglin", Limit: 2},
		{ID: "postonly00000000000000000000000e", Method: "POST", Table: "problem", Limit: 1},
	})
	reset := strconv.FormatInt(time.Date(2024, 3, 5, 15, 0, 0, 0, time.UTC).Unix(), 10)
	hit := func(user, pass string, n int, rule string, limit int) {
		t.Helper()
		for i := 1; i <= n; i++ {
			r := b.do(t, http.MethodGet, "/api/now/table/incident", "", withBasic(user, pass))
			require.Equal(t, http.StatusOK, r.status, "%s request %d", user, i)
			require.Equal(t, strconv.Itoa(limit), r.header.Get("X-RateLimit-Limit"))
			require.Equal(t, rule, r.header.Get("X-RateLimit-Rule"))
			require.Equal(t, reset, r.header.Get("X-RateLimit-Reset"))
			require.Equal(t, strconv.Itoa(limit-i), r.header.Get("X-RateLimit-Remaining"))
		}
		r := b.do(t, http.MethodGet, "/api/now/table/incident", "", withBasic(user, pass))
		require.Equal(t, http.StatusTooManyRequests, r.status)
		require.Equal(t, fmt.Sprintf(`{"error":{"message":"Rate limit exceeded","detail":"Rate limit of %d requests per hour for Table API exceeded"},"status":"failure"}`, limit), string(r.body))
		require.Equal(t, rule, r.header.Get("X-RateLimit-Rule"))
		require.Equal(t, "3470", r.header.Get("Retry-After")) // 14:02:10 → 15:00:00
	}
	hit("admin", "admin", 3, "allusers00000000000000000000000a", 3)                                                     // all-users rule
	hit("don.goodliffe", snowemu.DefaultUserPassword, 4, "itilrole00000000000000000000000c", 4)                         // lowest role rule
	hit("beth.anglin", snowemu.DefaultUserPassword, 2, "bethuser00000000000000000000000d", 2)                           // user rule wins
	r := b.do(t, http.MethodPost, "/api/now/table/problem", `{}`, withBasic("abel.tuter", snowemu.DefaultUserPassword)) // method+table rule
	require.Equal(t, http.StatusCreated, r.status)
	r = b.do(t, http.MethodPost, "/api/now/table/problem", `{}`, withBasic("abel.tuter", snowemu.DefaultUserPassword))
	require.Equal(t, http.StatusTooManyRequests, r.status)

	// The window resets on the hour.
	b.clock.Advance(time.Hour)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/now/table/incident", "").status)

	// Without the switch there is no Remaining header.
	nb := setup(t, snowemu.Options{})
	nb.emu.SetRateLimits([]snowemu.RateLimitRule{{Limit: 10}})
	r = nb.do(t, http.MethodGet, "/api/now/table/incident", "")
	require.NotEmpty(t, r.header.Get("X-RateLimit-Rule"))
	require.Empty(t, r.header.Values("X-RateLimit-Remaining"))
}

// §9.9: automatic fields.
func TestChecklist9AutoFields(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	beth := b.user(t, "beth.anglin")
	asBeth := withBasic("beth.anglin", snowemu.DefaultUserPassword)
	for i, want := range []string{"INC0010001", "INC0010002"} {
		r := b.do(t, http.MethodPost, "/api/now/table/incident?sysparm_exclude_reference_link=true", `{"short_description":"x"}`, asBeth)
		rec := r.result(t)
		require.Equal(t, want, rec["number"], "incident %d", i)
		require.Equal(t, want, rec["task_effective_number"])
		require.Equal(t, "0", rec["sys_mod_count"])
		require.Equal(t, "beth.anglin", rec["sys_created_by"])
		require.Equal(t, "beth.anglin", rec["sys_updated_by"])
		require.Equal(t, beth, rec["opened_by"])
		require.Equal(t, "2024-03-05 14:02:10", rec["opened_at"])
		require.Equal(t, "true", rec["active"])
		require.Equal(t, "1", rec["state"])
		require.Equal(t, "5", rec["priority"])
		require.Equal(t, "incident", rec["sys_class_name"])
	}
	require.Equal(t, "PRB0040001", b.create(t, "problem", `{}`)["number"])
	require.Equal(t, "CHG0030001", b.create(t, "change_request", `{}`)["number"])

	id := b.create(t, "incident", `{"short_description":"x"}`)["sys_id"].(string)
	b.clock.Advance(time.Minute)
	rec := b.patch(t, "incident", id, `{"short_description":"y"}`, asBeth).result(t)
	require.Equal(t, "1", rec["sys_mod_count"])
	require.Equal(t, "beth.anglin", rec["sys_updated_by"])
	require.Equal(t, "admin", rec["sys_created_by"])
	require.Equal(t, "2024-03-05 14:03:10", rec["sys_updated_on"])
	// An update that changes nothing is not an update.
	rec = b.patch(t, "incident", id, `{"short_description":"y"}`).result(t)
	require.Equal(t, "1", rec["sys_mod_count"])
	require.Equal(t, "beth.anglin", rec["sys_updated_by"])
}

// §9.10: journal, audit and signed webhooks.
func TestChecklist10JournalAuditWebhooks(t *testing.T) {
	t.Parallel()

	type hit struct {
		body   []byte
		header http.Header
	}
	var mu sync.Mutex
	var hits []hit
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, hit{body: body, header: r.Header.Clone()})
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	b := setup(t, snowemu.Options{})
	require.NoError(t, b.emu.AddWebhook(snowemu.Webhook{URL: recv.URL + "/hook", Secret: "s3cr3t"}))

	beth := b.user(t, "beth.anglin")
	rec := b.create(t, "incident", `{"short_description":"x","correlation_id":"mon-evt-88412","work_notes":"first note"}`)
	id := rec["sys_id"].(string)
	require.Empty(t, rec["work_notes"])
	b.clock.Advance(time.Minute)
	rec = b.patch(t, "incident", id, `{"work_notes":"second note","comments":"hello caller","assigned_to":"`+beth+`","state":"2"}`, withBasic("beth.anglin", snowemu.DefaultUserPassword)).result(t)
	require.Empty(t, rec["work_notes"])
	require.Empty(t, rec["comments"])
	require.Equal(t, "1", rec["sys_mod_count"])

	q := url.QueryEscape("element_id=" + id + "^elementINwork_notes,comments^ORDERBYsys_created_on")
	r := b.do(t, http.MethodGet, "/api/now/table/sys_journal_field?sysparm_query="+q+"&sysparm_fields=element,value,sys_created_on,sys_created_by", "")
	require.JSONEq(t, `{"result":[
		{"element":"work_notes","value":"first note","sys_created_on":"2024-03-05 14:02:10","sys_created_by":"admin"},
		{"element":"comments","value":"hello caller","sys_created_on":"2024-03-05 14:03:10","sys_created_by":"beth.anglin"},
		{"element":"work_notes","value":"second note","sys_created_on":"2024-03-05 14:03:10","sys_created_by":"beth.anglin"}]}`, string(r.body))

	q = url.QueryEscape("tablename=incident^documentkey=" + id + "^fieldname=state^ORDERBYsys_created_on")
	r = b.do(t, http.MethodGet, "/api/now/table/sys_audit?sysparm_query="+q+"&sysparm_fields=fieldname,oldvalue,newvalue,user,record_checkpoint", "")
	require.JSONEq(t, `{"result":[{"fieldname":"state","oldvalue":"1","newvalue":"2","user":"beth.anglin","record_checkpoint":"1"}]}`, string(r.body))

	b.emu.WaitWebhooks()
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, hits, 2)
	want := []string{
		`{"event":"insert","table":"incident","sys_id":"` + id + `","number":"INC0010001","state":"1","state_label":"New","assigned_to":"","correlation_id":"mon-evt-88412","sys_updated_on":"2024-03-05 14:02:10","sys_mod_count":"0"}`,
		`{"event":"update","table":"incident","sys_id":"` + id + `","number":"INC0010001","state":"2","state_label":"In Progress","assigned_to":"` + beth + `","correlation_id":"mon-evt-88412","sys_updated_on":"2024-03-05 14:03:10","sys_mod_count":"1"}`,
	}
	for i, h := range hits {
		require.Equal(t, want[i], string(h.body))
		mac := hmac.New(sha256.New, []byte("s3cr3t"))
		mac.Write(h.body)
		require.Equal(t, base64.StdEncoding.EncodeToString(mac.Sum(nil)), h.header.Get("X-Signature-SHA256"))
		require.Equal(t, "ServiceNow/1.0", h.header.Get("User-Agent"))
		require.Equal(t, "application/json", h.header.Get("Content-Type"))
		require.True(t, json.Valid(h.body))
	}
}

// Webhook failures are logged, never retried (at-most-once, §8.1).
func TestWebhookAtMostOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(recv.Close)
	b := setup(t, snowemu.Options{})
	require.NoError(t, b.emu.AddWebhook(snowemu.Webhook{URL: recv.URL, SecretBase64: base64.StdEncoding.EncodeToString([]byte("k"))}))
	b.create(t, "problem", `{"short_description":"x"}`)
	b.emu.WaitWebhooks()
	mu.Lock()
	require.Equal(t, 1, calls)
	mu.Unlock()
	d := b.emu.WebhookDeliveries()
	require.Len(t, d, 1)
	require.Equal(t, http.StatusInternalServerError, d[0].Status)
	require.True(t, strings.HasPrefix(d[0].Body, `{"event":"insert","table":"problem"`))
}
