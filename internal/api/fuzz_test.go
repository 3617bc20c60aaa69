package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// webhookSeeds adds real deliveries and their near misses: the documented
// delivery (docs/servicenow-setup.md §3.2) as sent, re-signed, newer, and
// bodies and headers each wrong in one way. resign asks the target to sign
// the body itself, so the fuzzer gets past the HMAC into the parser.
func webhookSeeds(f *testing.F) (ts string) {
	ts, sig, body := documentedDelivery(f)
	f.Add(ts, sig, body, false) // the documented delivery, as sent
	f.Add(ts, "", body, true)
	f.Add(ts, "", bytes.Replace(body, []byte(`"sys_mod_count":"3"`), []byte(`"sys_mod_count":"4"`), 1), true) // newer: queued
	for _, b := range []string{
		`{"event":"delete","table":"incident","sys_id":"5b8bc39634516f7d9e074feb54075d01","number":"INC0010001","state":"7","state_label":"Closed","assigned_to":"","correlation_id":"","sys_updated_on":"2026-11-25 21:55:03","sys_mod_count":"3"}`,
		`{"event":"insert","table":"incident","sys_id":"x","number":"","state":"","state_label":"","assigned_to":"","correlation_id":"steward-fd6b156b134611bf-1","sys_updated_on":"","sys_mod_count":"0"}`,
		`{"event":"update","table":"problem","sys_id":"5b8bc39634516f7d9e074feb54075d01"}`,
		`{"event":"update","sys_mod_count":"-1"}`,
		`{"event":1}`,
		`[]`,
		`null`,
		`{} {}`,
		``,
	} {
		f.Add(ts, "", []byte(b), true)
	}
	f.Add("", sig, body, false)
	f.Add(ts+"000", sig, body, false)
	f.Add("-1", "", body, true)
	f.Add(ts, "not base64!", body, false)
	f.Add(ts, "", bytes.Repeat([]byte("x"), maxWebhookBytes+1), true)
	return ts
}

// FuzzWebhook feeds arbitrary deliveries to the webhook's verification and
// parsing, the code the handler runs on a delivery before it looks
// anything up, with a current and a previous secret as during a rotation.
// It must never panic, refuse only with 4xx codes, and accept only a
// complete event. (FuzzWebhookHandler runs the whole handler on a real
// store; coverage-guided fuzzing of that reaches ~10 execs/s because the
// SQLite driver is instrumented too, so CI fuzzes this one.)
func FuzzWebhook(f *testing.F) {
	ts := webhookSeeds(f)
	now := unixTime(f, ts)
	a := &API{now: func() time.Time { return now }}
	keys := [][]byte{[]byte("n3w-secret"), []byte("s3cret")}

	f.Fuzz(func(t *testing.T, ts, sig string, body []byte, resign bool) {
		if resign {
			sig = signDelivery("s3cret", ts, body)
		}
		ev, err := a.verifyDelivery(keys, ts, sig, http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), maxWebhookBytes))
		if err != nil {
			if status := statusByCode[steward.ErrorCode(err)]; status < 400 || status >= 500 {
				t.Fatalf("refused with %s (%d): %v", steward.ErrorCode(err), status, err)
			}
			if steward.ErrorMessage(err) == "" || strings.Contains(steward.ErrorMessage(err), "s3cret") {
				t.Fatalf("message %q", steward.ErrorMessage(err))
			}
			return
		}
		for _, v := range []*string{ev.Event, ev.Table, ev.SysID, ev.Number, ev.State, ev.StateLabel, ev.AssignedTo, ev.CorrelationID, ev.SysUpdatedOn, ev.SysModCount} {
			if v == nil {
				t.Fatalf("accepted an event with a field missing: %q", body)
			}
		}
		if n, err := strconv.Atoi(*ev.SysModCount); err != nil || n < 0 || *ev.SysID == "" || *ev.Table == "" {
			t.Fatalf("accepted %q", body)
		}
	})
}

// FuzzWebhookHandler sends arbitrary deliveries through the real webhook
// handler of a real API on a temporary SQLite store with a linked ticket.
// Bad input must be refused with a 4xx in the JSON error shape, never a
// panic or a 5xx. Its seeds run with every go test; fuzzing it is slow
// (see FuzzWebhook), so it is fuzzed by hand, not in CI.
func FuzzWebhookHandler(f *testing.F) {
	ts := webhookSeeds(f)
	h := newWebhookHarness(f, "s3cret", unixTime(f, ts), ticketsync.Config{})
	path := "/api/v1/integrations/" + strconv.FormatInt(h.in.ID, 10) + "/events"

	f.Fuzz(func(t *testing.T, ts, sig string, body []byte, resign bool) {
		if resign {
			sig = signDelivery("s3cret", ts, body)
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(headerTimestamp, ts)
		req.Header.Set(headerSignature, sig)
		rec := httptest.NewRecorder()
		h.api.ServeHTTP(rec, req)

		if rec.Code < 200 || rec.Code >= 300 && rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("answered %d to ts=%q sig=%q body=%q: %s", rec.Code, ts, sig, body, rec.Body)
		}
		var answer map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer is not JSON: %q", rec.Body)
		}
		if rec.Code >= 400 {
			e, ok := answer["error"].(map[string]any)
			if !ok || e["code"] == "" || e["message"] == "" {
				t.Fatalf("%d without the error shape: %s", rec.Code, rec.Body)
			}
		}
		if bytes.Contains(rec.Body.Bytes(), []byte("s3cret")) {
			t.Fatalf("the secret is in the answer: %s", rec.Body)
		}
	})
}

// FuzzDecodeJSON feeds arbitrary bodies to decodeJSON with the API's real
// request types: it must never panic, and every error must be CodeInvalid
// or CodeTooLarge with a message.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"name":"prod","scope":"/subscriptions/s1","instance_url":"https://acme.service-now.com","auth_mode":"oauth_password","username":"steward","password":"pw","client_id":"steward","client_secret":"cs","webhook_secret":"ws","ticket_types":{"incident":{"table":"incident","fields":{"category":"security"}}},"priority":{"High":{"impact":"1","urgency":"2"}},"requests_per_second":10,"sync":{"poll_interval":"5m","closed_not_fixed":"reopen"},"skip_validation":true}`,
		`{"assessment_id":1,"type":"servicenow","ticket_type":"incident","assigned_to":"beth.anglin@example.com","caller":"fred.luddy@example.com","remediation_timeframe_days":30,"due_date":"2026-12-31","eta":"2026-12-01T17:00:00Z","reason":"fix it"}`,
		`{"instance_url":"http://127.0.0.1:8089","local":true}`,
		`{"due_date":1}`,
		`{"due_date":"tomorrow"}`,
		`{"unknown":1}`,
		`{"name":1}`,
		`{} []`,
		`{"a":`,
		`null`,
		``,
		`"\ud800"`,
	} {
		f.Add([]byte(s), uint16(1<<15))
	}
	f.Add([]byte(`{"name":"`+string(bytes.Repeat([]byte("x"), 100))+`"}`), uint16(16))

	targets := []func() any{
		func() any { return new(integrationRequest) },
		func() any { return new(createAssignmentRequest) },
		func() any { return new(updateAssignmentRequest) },
	}
	f.Fuzz(func(t *testing.T, body []byte, limit uint16) {
		for _, target := range targets {
			req := httptest.NewRequest(http.MethodPost, "/api/v1/integrations", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			err := decodeJSON(httptest.NewRecorder(), req, int64(limit)+1, target())
			if err == nil {
				continue
			}
			switch code := steward.ErrorCode(err); code {
			case steward.CodeInvalid, steward.CodeTooLarge:
			default:
				t.Fatalf("%T: code %s for %q: %v", target(), code, body, err)
			}
			if steward.ErrorMessage(err) == "" {
				t.Fatalf("%T: no message for %q", target(), body)
			}
		}
	})
}
