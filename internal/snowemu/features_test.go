package snowemu_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/snowemu"
)

func TestInputDisplayValue(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	beth := b.user(t, "beth.anglin")
	group := b.do(t, http.MethodGet, "/api/now/table/sys_user_group?sysparm_query=name%3DCloud%20Security&sysparm_fields=sys_id", "").results(t)
	require.Len(t, group, 1)

	r := b.do(t, http.MethodPost, "/api/now/table/incident?sysparm_input_display_value=true&sysparm_exclude_reference_link=true",
		`{"assigned_to":"Beth Anglin","assignment_group":"Cloud Security","impact":"1 - High","state":"In Progress","hold_reason":"Awaiting Vendor"}`)
	require.Equal(t, http.StatusCreated, r.status)
	rec := r.result(t)
	require.Equal(t, beth, rec["assigned_to"])
	require.Equal(t, group[0].(map[string]any)["sys_id"], rec["assignment_group"])
	require.Equal(t, "1", rec["impact"])
	require.Equal(t, "2", rec["state"])

	// Without the flag values are stored as given (§2.3).
	rec = b.create(t, "incident", `{"impact":"1 - High"}`)
	require.Equal(t, "1 - High", rec["impact"])
}

func TestFaults(t *testing.T) {
	t.Parallel()

	t.Run("ErrorsAndStorm", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		b.emu.SetFaults(snowemu.Faults{Error503: 1})
		r := b.do(t, http.MethodGet, "/api/now/table/incident", "")
		require.Equal(t, http.StatusServiceUnavailable, r.status)
		b.emu.SetFaults(snowemu.Faults{Error500: 1, Methods: []string{"POST"}})
		require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/now/table/incident", "").status)
		require.Equal(t, http.StatusInternalServerError, b.do(t, http.MethodPost, "/api/now/table/incident", `{}`).status)
		require.Zero(t, b.emu.Count("incident"))

		b.emu.SetFaults(snowemu.Faults{Storm429: 1, StormDuration: time.Minute, StormRetryAfter: 7})
		r = b.do(t, http.MethodGet, "/api/now/table/incident", "")
		require.Equal(t, http.StatusTooManyRequests, r.status)
		require.Equal(t, "7", r.header.Get("Retry-After"))
		require.Empty(t, r.header.Values("X-RateLimit-Rule"))
		b.clock.Advance(2 * time.Minute) // storm over
		require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/now/table/incident", "").status)

		// The admin API is never faulted.
		b.emu.SetFaults(snowemu.Faults{Error500: 1})
		require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/emulator/admin/faults", "").status)
	})

	t.Run("DropAndDropAfterCommit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		post := func() error {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL+"/api/now/table/incident", strings.NewReader(`{"correlation_id":"evt-1"}`))
			require.NoError(t, err)
			req.SetBasicAuth("admin", "admin")
			req.Header.Set("Content-Type", "application/json")
			resp, err := b.srv.Client().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			return err
		}
		b.emu.SetFaults(snowemu.Faults{Drop: 1})
		require.Error(t, post())
		require.Zero(t, b.emu.Count("incident"))

		b.emu.SetFaults(snowemu.Faults{DropAfterCommit: 1})
		require.Error(t, post())
		require.Len(t, b.emu.FindByCorrelationID("incident", "evt-1"), 1, "the write committed")
	})

	t.Run("LatencyAndSlowBody", func(t *testing.T) {
		t.Parallel()
		b := setup(t, snowemu.Options{})
		b.emu.SetFaults(snowemu.Faults{Latency: 30 * time.Millisecond, SlowBodyChunk: 10, SlowBodyDelay: 5 * time.Millisecond})
		start := time.Now()
		r := b.do(t, http.MethodGet, "/api/now/table/incident", "")
		require.Equal(t, http.StatusOK, r.status)
		require.JSONEq(t, `{"result":[]}`, string(r.body))
		require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	})

	t.Run("DeterministicWithSeed", func(t *testing.T) {
		t.Parallel()
		pattern := func() string {
			b := setup(t, snowemu.Options{Seed: 7})
			b.emu.SetFaults(snowemu.Faults{Error500: 0.5})
			var s strings.Builder
			for range 20 {
				fmt.Fprintf(&s, "%d,", b.do(t, http.MethodGet, "/api/now/table/incident", "").status)
			}
			return s.String()
		}
		p := pattern()
		require.Contains(t, p, "500")
		require.Contains(t, p, "200")
		require.Equal(t, p, pattern())
	})
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	rec := b.create(t, "incident", `{"short_description":"x"}`)
	number := rec["number"].(string)

	r := b.do(t, http.MethodGet, "/emulator/admin/faults", "", withBasic("beth.anglin", snowemu.DefaultUserPassword))
	require.Equal(t, http.StatusUnauthorized, r.status)

	r = b.do(t, http.MethodPost, "/emulator/admin/records/incident/"+number+"/assign", `{"assigned_to":"beth.anglin@example.com","user":"david.loo"}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	got := r.result(t)
	require.Equal(t, b.user(t, "beth.anglin"), got["assigned_to"])
	require.Equal(t, "david.loo", got["sys_updated_by"])
	require.Equal(t, "1", got["sys_mod_count"])
	require.Equal(t, "1", got["reassignment_count"])

	r = b.do(t, http.MethodPost, "/emulator/admin/records/incident/"+number+"/work_notes", `{"text":"looking","user":"beth.anglin"}`)
	require.Equal(t, "2", r.result(t)["sys_mod_count"])

	r = b.do(t, http.MethodPost, "/emulator/admin/records/incident/"+number+"/state", `{"state":"Resolved","user":"beth.anglin"}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	got = r.result(t)
	require.Equal(t, "6", got["state"])
	require.Equal(t, "Solution provided", got["close_code"])
	require.NotEmpty(t, got["close_notes"])
	require.NotEmpty(t, got["resolved_at"])

	r = b.do(t, http.MethodPut, "/emulator/admin/faults", `{"latency_ms":5,"error_500":0.25,"methods":["POST"]}`)
	require.Equal(t, http.StatusOK, r.status)
	f := b.emu.CurrentFaults()
	require.Equal(t, 5*time.Millisecond, f.Latency)
	require.InDelta(t, 0.25, f.Error500, 1e-9)
	b.emu.SetFaults(snowemu.Faults{})

	r = b.do(t, http.MethodPut, "/emulator/admin/rate_limits", `[{"limit":100,"role":"itil"}]`)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, b.emu.RateLimits(), 1)
	b.emu.SetRateLimits(nil)

	r = b.do(t, http.MethodPost, "/emulator/admin/users", `{"user_name":"new.user","first_name":"New","last_name":"User","email":"new@example.com","password":"pw","manager":"david.loo"}`)
	require.Equal(t, http.StatusCreated, r.status)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/now/table/incident", "", withBasic("new.user", "pw")).status)
	r = b.do(t, http.MethodPost, "/emulator/admin/groups", `{"name":"SecOps","manager":"new.user","members":["new.user"]}`)
	require.Equal(t, http.StatusCreated, r.status)

	r = b.do(t, http.MethodGet, "/emulator/admin/requests", "")
	var counts map[string]int
	require.NoError(t, json.Unmarshal(r.body, &counts))
	require.Equal(t, 1, counts["POST /api/now/table/incident"])

	r = b.do(t, http.MethodDelete, "/emulator/admin/records/incident/"+number+"?user=beth.anglin", "")
	require.Equal(t, http.StatusNoContent, r.status)
	require.Zero(t, b.emu.Count("incident"))
	r = b.do(t, http.MethodPost, "/emulator/admin/records/incident/"+number+"/state", `{"state":"2"}`)
	require.Equal(t, http.StatusNotFound, r.status)

	r = b.do(t, http.MethodPost, "/emulator/admin/reset", "")
	require.Equal(t, http.StatusNoContent, r.status)
	require.Zero(t, b.emu.Count("sys_audit"))
}

func TestAgentActions(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	prb, err := b.emu.Create("problem", snowemu.Record{"short_description": "p"}, "svc.steward")
	require.NoError(t, err)
	rec, err := b.emu.SetState("problem", prb["number"], snowemu.StateChange{State: "Closed", User: "beth.anglin"})
	require.NoError(t, err)
	require.Equal(t, "107", rec["state"])
	require.Equal(t, "fix_applied", rec["resolution_code"])
	require.Equal(t, "false", rec["active"])
	require.Equal(t, "beth.anglin", rec["sys_updated_by"])

	chg, err := b.emu.Create("change_request", snowemu.Record{}, "")
	require.NoError(t, err)
	rec, err = b.emu.SetState("change_request", chg["sys_id"], snowemu.StateChange{State: "3"})
	require.NoError(t, err)
	require.Equal(t, "3", rec["state"])
	require.Equal(t, "successful", rec["close_code"])

	inc, err := b.emu.Create("incident", snowemu.Record{"correlation_id": "c-1"}, "")
	require.NoError(t, err)
	_, err = b.emu.Reassign("incident", inc["sys_id"], "nobody", "")
	require.ErrorIs(t, err, snowemu.ErrUnknownUser)
	_, err = b.emu.SetState("incident", "INC9999999", snowemu.StateChange{State: "2"})
	require.ErrorIs(t, err, snowemu.ErrNotFound)
	_, err = b.emu.AddComment("incident", inc["number"], "hi", "abel.tuter")
	require.NoError(t, err)
	require.Len(t, b.emu.FindByCorrelationID("incident", "c-1"), 1)
	require.Len(t, b.emu.Records("sys_journal_field"), 1)
	require.NoError(t, b.emu.DeleteRecord("incident", inc["number"], "beth.anglin"))
	require.Empty(t, b.emu.FindByCorrelationID("incident", "c-1"))

	// Go Update goes through the Table API rules.
	inc, err = b.emu.Create("incident", snowemu.Record{}, "")
	require.NoError(t, err)
	_, err = b.emu.Update("incident", inc["sys_id"], snowemu.Record{"state": "6"}, "")
	require.ErrorContains(t, err, "Data Policy Exception")
}

func TestPersistence(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	_, err := b.emu.Create("incident", snowemu.Record{"short_description": "kept", "correlation_id": "p-1"}, "")
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, b.emu.Save(&buf))

	other := setup(t, snowemu.Options{NoSeed: true})
	require.NoError(t, other.emu.Load(&buf))
	require.Len(t, other.emu.FindByCorrelationID("incident", "p-1"), 1)
	rec, err := other.emu.Create("incident", snowemu.Record{}, "")
	require.NoError(t, err)
	require.Equal(t, "INC0010002", rec["number"], "counters survive")
	require.Equal(t, http.StatusOK, other.do(t, http.MethodGet, "/api/now/table/incident", "", withBasic("beth.anglin", snowemu.DefaultUserPassword)).status)

	// DataFile: saved on Close, loaded by New.
	path := filepath.Join(t.TempDir(), "snow.json")
	first := snowemu.New(snowemu.Options{DataFile: path}, nil)
	_, err = first.Create("problem", snowemu.Record{"correlation_id": "df-1"}, "")
	require.NoError(t, err)
	require.NoError(t, first.Close())
	second := snowemu.New(snowemu.Options{DataFile: path}, nil)
	t.Cleanup(func() { require.NoError(t, second.Close()) })
	require.Len(t, second.FindByCorrelationID("problem", "df-1"), 1)
}

func TestUI(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	_, err := b.emu.Create("incident", snowemu.Record{"short_description": "<script>alert(1)</script>", "assigned_to": b.user(t, "beth.anglin")}, "")
	require.NoError(t, err)
	resp, err := b.srv.Client().Get(b.srv.URL + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	page := string(body)
	require.Contains(t, page, "INC0010001")
	require.Contains(t, page, "Beth Anglin")
	require.Contains(t, page, "&lt;script&gt;")
	require.Contains(t, page, `http-equiv="refresh"`)
}

// Concurrent creates, reads and updates keep numbers unique and counts right.
func TestConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	const workers, each = 8, 25
	var wg sync.WaitGroup
	ids := make(chan string, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				rec := b.create(t, "incident", fmt.Sprintf(`{"correlation_id":"w%d-%d"}`, w, i))
				id := rec["sys_id"].(string)
				ids <- id
				require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/now/table/incident/"+id, "").status)
				require.Equal(t, http.StatusOK, b.patch(t, "incident", id, `{"work_notes":"n"}`).status)
			}
		})
	}
	wg.Wait()
	close(ids)
	require.Equal(t, workers*each, b.emu.Count("incident"))
	numbers := map[string]bool{}
	for _, r := range b.emu.Records("incident") {
		require.False(t, numbers[r["number"]], "duplicate number %s", r["number"])
		numbers[r["number"]] = true
		require.Equal(t, "1", r["sys_mod_count"])
	}
	require.Equal(t, workers*each, b.emu.Count("sys_journal_field"))
	q := url.QueryEscape("correlation_id=w3-7")
	require.Len(t, b.do(t, http.MethodGet, "/api/now/table/incident?sysparm_query="+q, "").results(t), 1)
	require.Equal(t, workers*each, b.emu.Requests()["POST /api/now/table/incident"])
}

func TestWebhookSwitches(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(body)+"|"+r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	b := setup(t, snowemu.Options{WebhookDuplicate: 1, WebhookDelay: 20 * time.Millisecond})
	// Registered through the admin API, with an extra header.
	r := b.do(t, http.MethodPost, "/emulator/admin/webhooks", `{"url":"`+recv.URL+`","secret":"s","headers":{"Authorization":"Bearer hook"}}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	start := time.Now()
	b.create(t, "change_request", `{"short_description":"c"}`)
	b.emu.WaitWebhooks()
	require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, bodies, 2, "duplicated")
	require.Equal(t, bodies[0], bodies[1])
	require.True(t, strings.HasSuffix(bodies[0], "|Bearer hook"))
}
