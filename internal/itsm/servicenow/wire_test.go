package servicenow_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/itsm/itsmtest"
	"github.com/stewardhq/steward/internal/itsm/servicenow"
)

const incidentJSON = `{"sys_id":"9d3c1197c0a8016501a4e9ab0c3e0a11","number":"INC0010001","state":"1","assigned_to":"","correlation_id":"c-1","sys_updated_on":"2024-03-05 14:07:22","sys_mod_count":"0","sys_updated_by":"svc.steward"}`

// TestClient_RetryTable checks the retry decision of a real request for
// every status a server can send (200–599).
func TestClient_RetryTable(t *testing.T) {
	t.Parallel()

	retryable := []int{202, 429, 500, 502, 503, 504}
	t.Run("Get", func(t *testing.T) {
		t.Parallel()
		var status, requests atomic.Int64
		c, _, _ := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			writeJSON(w, int(status.Load()), `{"result":`+incidentJSON+`}`)
		}, func(cfg *servicenow.Config) { cfg.MaxRetries = 1 })
		itsmtest.RetryTableRange(t, 200, 599, retryable, func(t testing.TB, s int) bool {
			status.Store(int64(s))
			requests.Store(0)
			_, err := c.Ticket(t.Context(), itsm.Ref{Table: "incident", SysID: "9d3c1197c0a8016501a4e9ab0c3e0a11"})
			if err != nil {
				_, isITSM := err.(*itsm.Error)
				require.True(t, isITSM, "status %d: %T %v", s, err, err)
				require.Equal(t, itsm.IsRetryable(err), itsm.RetryableStatus(s), "status %d: Retryable flag", s)
			}
			return requests.Load() > 1
		})
	})
	t.Run("Create", func(t *testing.T) {
		t.Parallel()
		// POST answers with the status under test; lookups find nothing.
		var status atomic.Int64
		var mu sync.Mutex
		var seq []string
		c, _, _ := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seq = append(seq, r.Method)
			mu.Unlock()
			if r.Method == http.MethodGet {
				w.Header().Set("X-Total-Count", "0")
				writeJSON(w, 200, `{"result":[]}`)
				return
			}
			writeJSON(w, int(status.Load()), `{"result":`+incidentJSON+`}`)
		}, func(cfg *servicenow.Config) { cfg.MaxRetries = 1 })
		itsmtest.RetryTableRange(t, 200, 599, retryable, func(t testing.TB, s int) bool {
			status.Store(int64(s))
			mu.Lock()
			seq = nil
			mu.Unlock()
			_, _ = c.CreateTicket(t.Context(), itsm.CreateRequest{Type: steward.TicketTypeIncident, CorrelationID: "c-1", ShortDescription: "x", FirstAttempt: true})
			mu.Lock()
			defer mu.Unlock()
			got := strings.Join(seq, ",")
			switch {
			case got == "POST":
				return false
			case s == 429:
				require.Equal(t, "POST,POST", got, "a 429 was refused before processing: resend directly")
			default:
				require.Equal(t, "POST,GET,POST", got, "status %d: look the correlation ID up before creating again", s)
			}
			return true
		})
	})
}

func TestClient_ErrorAnswers(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		kind       itsm.ErrorKind
		code       steward.Code
		retryable  bool
		retryAfter time.Duration
		message    string // a part of Error()
		detail     string
		requests   int
	}{
		{name: "DataPolicy", status: 403, kind: itsm.KindDataPolicy, code: steward.CodeInvalid, requests: 1,
			body:    `{"error":{"message":"Operation Failed","detail":"Data Policy Exception: \n\tThe following fields are mandatory: Resolution code, Close notes"},"status":"failure"}`,
			message: "data policy", detail: "Data Policy Exception: \n\tThe following fields are mandatory: Resolution code, Close notes"},
		{name: "ACL", status: 403, kind: itsm.KindForbidden, code: steward.CodeInvalid, requests: 1,
			body:    `{"error":{"message":"Operation Failed","detail":"ACL Exception Update Failed due to security constraints"},"status":"failure"}`,
			message: `integration user "svc.steward" may not`, detail: "ACL Exception Update Failed due to security constraints"},
		{name: "InvalidTable", status: 400, kind: itsm.KindInvalidTable, code: steward.CodeInvalid, requests: 1,
			body:    `{"error":{"message":"Invalid table incident","detail":null},"status":"failure"}`,
			message: `table "incident" does not exist`},
		{name: "NotFound", status: 404, kind: itsm.KindNotFound, code: steward.CodeNotFound, requests: 1,
			body:    `{"error":{"message":"No Record found","detail":"Record doesn't exist or ACL restricts the record retrieval"},"status":"failure"}`,
			message: "not found", detail: "Record doesn't exist or ACL restricts the record retrieval"},
		{name: "Unauthorized", status: 401, kind: itsm.KindAuth, code: steward.CodeInvalid, requests: 1,
			header:  map[string]string{"WWW-Authenticate": `BASIC realm="Service-now"`},
			body:    `{"error":{"message":"User is not authenticated","detail":"Required to provide Auth information"},"status":"failure"}`,
			message: `user name or password of "svc.steward"`},
		{name: "RateLimitLongerThanMaxDelay", status: 429, kind: itsm.KindRateLimited, code: steward.CodeUnavailable, requests: 1,
			header:    map[string]string{"Retry-After": "120"},
			body:      `{"error":{"message":"Rate limit exceeded","detail":"Rate limit of 100 requests per hour for Table API exceeded"},"status":"failure"}`,
			retryable: true, retryAfter: 120 * time.Second, message: "rate limit"},
		{name: "ServerErrorNullDetail", status: 500, kind: itsm.KindUnavailable, code: steward.CodeUnavailable, requests: 3,
			body:      `{"error":{"message":"Transaction cancelled: maximum execution time exceeded","detail":null},"status":"failure"}`,
			retryable: true, message: "Transaction cancelled"},
		{name: "QueuedAndDropped", status: 202, kind: itsm.KindUnavailable, code: steward.CodeUnavailable, requests: 3,
			body: ``, retryable: true, message: "HTTP 202"},
		{name: "ResultAndErrorRetriedAsTransient", status: 200, kind: itsm.KindBadResponse, code: steward.CodeUnavailable, requests: 3,
			body:      `{"result":{"sys_id":"9d3c"},"error":{"message":"Transaction cancelled: maximum execution time exceeded","detail":"Transaction cancelled: maximum execution time exceeded Check logs"}}`,
			retryable: true, message: "both a result and an error"},
		{name: "HTMLPage", status: 200, kind: itsm.KindBadResponse, code: steward.CodeUnavailable, requests: 1,
			header: map[string]string{"Content-Type": "text/html; charset=utf-8"},
			body:   `<html><body>Your instance is hibernating</body></html>`, message: "HTML page"},
		{name: "NotJSON", status: 200, kind: itsm.KindBadResponse, code: steward.CodeUnavailable, requests: 1,
			body: `{"result":`, message: "not a Table API JSON result"},
		{name: "Redirect", status: 302, kind: itsm.KindInvalid, code: steward.CodeInvalid, requests: 1,
			header: map[string]string{"Location": "https://login.example.com/sso?token=SECRETTOKEN"},
			body:   ``, message: "the instance answered with a redirect to https://login.example.com; use that URL as the instance URL"},
		{name: "MethodNotAllowed", status: 405, kind: itsm.KindInvalid, code: steward.CodeInvalid, requests: 1,
			body: `{"error":{"message":"Method not Supported","detail":null},"status":"failure"}`, message: "rejected the request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var requests atomic.Int64
			c, _, logs := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				if w.Header().Get("Content-Type") == "" {
					w.Header().Set("Content-Type", "application/json;charset=UTF-8")
				}
				w.Header().Set("X-Transaction-ID", "a1b2c3d4e5f6")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}, func(cfg *servicenow.Config) { cfg.MaxRetries = 2 })

			_, err := c.Ticket(t.Context(), itsm.Ref{Table: "incident", SysID: "9d3c1197c0a8016501a4e9ab0c3e0a11"})
			require.Error(t, err)
			e, ok := err.(*itsm.Error)
			require.True(t, ok, "%T", err)
			require.Equal(t, tt.kind, e.Kind, "%v", err)
			require.Equal(t, tt.code, steward.ErrorCode(err))
			require.Equal(t, tt.retryable, e.Retryable)
			require.Equal(t, tt.retryAfter, e.RetryAfter)
			require.Equal(t, tt.status, e.Status)
			require.Equal(t, "a1b2c3d4e5f6", e.TransactionID)
			require.Contains(t, err.Error(), tt.message)
			if tt.detail != "" {
				require.Equal(t, tt.detail, e.Detail)
			}
			require.EqualValues(t, tt.requests, requests.Load())
			itsmtest.AssertNoSecretLeak(t, err, testPassword, "SECRETTOKEN")
			itsmtest.AssertNoSecretLeak(t, logs.String(), testPassword, "SECRETTOKEN")
		})
	}
}

func TestClient_ResponseTooLarge(t *testing.T) {
	t.Parallel()

	c, _, _ := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"result":{"sys_id":"`+strings.Repeat("a", 4096)+`"}}`)
	}, func(cfg *servicenow.Config) { cfg.MaxResponseBytes = 1024 })
	_, err := c.Ticket(t.Context(), itsm.Ref{Table: "incident", SysID: "x"})
	require.True(t, itsm.IsKind(err, itsm.KindBadResponse), "%v", err)
	require.Contains(t, err.Error(), "larger than 1024 bytes")
}

// pagingServer serves n records matching any query, limit/offset paged,
// with X-Total-Count unless noCount, and drops the records whose index
// hidden says (as ACLs do after the limit is applied, reference §2.3).
func pagingServer(t *testing.T, n int, noCount bool, hidden func(i int) bool) (*servicenow.Client, *[]string) {
	var mu sync.Mutex
	var offsets []string
	c, _, _ := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("sysparm_limit"))
		offset, _ := strconv.Atoi(q.Get("sysparm_offset"))
		mu.Lock()
		offsets = append(offsets, q.Get("sysparm_offset"))
		mu.Unlock()
		var recs []string
		for i := offset; i < min(n, offset+limit); i++ {
			if hidden != nil && hidden(i) {
				continue
			}
			recs = append(recs, fmt.Sprintf(`{"sys_id":"%032d","number":"INC%07d","state":"2","correlation_id":"c-%d","sys_updated_on":"2024-03-05 14:07:22","sys_mod_count":"1"}`, i, i, i))
		}
		if !noCount {
			w.Header().Set("X-Total-Count", strconv.Itoa(n))
		}
		writeJSON(w, 200, `{"result":[`+strings.Join(recs, ",")+`]}`)
	}, func(cfg *servicenow.Config) { cfg.PageSize = 3 })
	return c, &offsets
}

func TestClient_Paging(t *testing.T) {
	t.Parallel()

	ids := []string{"c-0", "c-1", "c-2", "c-3", "c-4", "c-5", "c-6"}
	tests := []struct {
		name    string
		n       int
		noCount bool
		hidden  func(int) bool
		want    int
		offsets string
	}{
		{name: "ByTotalCount", n: 7, want: 7, offsets: "0,3,6"},
		{name: "ExactMultiple", n: 6, want: 6, offsets: "0,3"},
		{name: "ShortPagesFromACLsDoNotStop", n: 7, hidden: func(i int) bool { return i == 1 || i == 3 || i == 4 || i == 5 }, want: 3, offsets: "0,3,6"},
		{name: "NoCountUntilEmptyPage", n: 7, noCount: true, want: 7, offsets: "0,3,6,9"},
		{name: "NoCountShortPageDoesNotStop", n: 7, noCount: true, hidden: func(i int) bool { return i == 0 }, want: 6, offsets: "0,3,6,9"},
		{name: "Empty", n: 0, want: 0, offsets: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, offsets := pagingServer(t, tt.n, tt.noCount, tt.hidden)
			got, err := c.FindByCorrelationIDs(t.Context(), "incident", ids)
			require.NoError(t, err)
			require.Len(t, got, tt.want)
			require.Equal(t, tt.offsets, strings.Join(*offsets, ","))
			for _, tk := range got {
				require.Equal(t, steward.TicketInProgress, tk.State)
				require.Equal(t, 1, tk.ModCount)
			}
		})
	}
}

func TestClient_BatchesLongIDLists(t *testing.T) {
	t.Parallel()

	var mu sync.Mutex
	var sizes []int
	c, _, _ := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("sysparm_query")
		in, _, _ := strings.Cut(strings.TrimPrefix(q, "sys_idIN"), "^")
		mu.Lock()
		sizes = append(sizes, len(strings.Split(in, ",")))
		mu.Unlock()
		w.Header().Set("X-Total-Count", "0")
		writeJSON(w, 200, `{"result":[]}`)
	}, nil)
	ids := make([]string, 250)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
	}
	_, err := c.Tickets(t.Context(), "incident", ids)
	require.NoError(t, err)
	require.Equal(t, []int{100, 100, 50}, sizes)

	_, err = c.Tickets(t.Context(), "incident", []string{"a^ORactive=true"})
	require.True(t, itsm.IsKind(err, itsm.KindInvalid), "query injection is refused: %v", err)
}

func TestClient_UpdateTicket(t *testing.T) {
	t.Parallel()

	type patch struct {
		body  map[string]string
		query string
	}
	setup := func(t *testing.T, answerState string) (*servicenow.Client, chan patch) {
		patches := make(chan patch, 10)
		c, _, _ := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPatch {
				writeJSON(w, 200, `{"result":[{"sys_id":"u1","email":"beth.anglin@example.com","active":"true"}]}`)
				return
			}
			var body map[string]string
			_ = json.NewDecoder(r.Body).Decode(&body)
			patches <- patch{body: body, query: r.URL.RawQuery}
			rec := map[string]string{"sys_id": "p1", "number": "PRB0040001", "state": answerState, "sys_mod_count": "3"}
			for k, v := range body {
				if k != "state" && k != "work_notes" {
					rec[k] = v
				}
			}
			b, _ := json.Marshal(map[string]any{"result": rec})
			writeJSON(w, 200, string(b))
		}, nil)
		return c, patches
	}
	resolved, canceled := steward.TicketResolved, steward.TicketCanceled
	code, notes, note := "Solution provided", "Fixed by Steward: the resource is healthy", "checked"

	t.Run("IncidentResolveSendsCloseFieldsTogether", func(t *testing.T) {
		t.Parallel()
		c, patches := setup(t, "6")
		got, err := c.UpdateTicket(t.Context(), itsm.Ref{Table: "incident", SysID: "p1"},
			itsm.TicketUpdate{State: &resolved, CloseCode: &code, CloseNotes: &notes, WorkNote: &note})
		require.NoError(t, err)
		p := <-patches
		require.Equal(t, map[string]string{"state": "6", "close_code": code, "close_notes": notes, "work_notes": note}, p.body)
		require.Contains(t, p.query, "sysparm_exclude_reference_link=true")
		require.Equal(t, steward.TicketResolved, got.State)
		require.Equal(t, code, got.CloseCode)
	})
	t.Run("IncidentResolveWithoutCloseInfoIsRefusedLocally", func(t *testing.T) {
		t.Parallel()
		c, patches := setup(t, "6")
		_, err := c.UpdateTicket(t.Context(), itsm.Ref{Table: "incident", SysID: "p1"}, itsm.TicketUpdate{State: &resolved})
		require.True(t, itsm.IsKind(err, itsm.KindInvalid), "%v", err)
		require.Contains(t, err.Error(), "close code and close notes")
		require.Empty(t, patches)
	})
	t.Run("ProblemTransitionRefused", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t, "102") // the instance keeps Assess
		_, err := c.UpdateTicket(t.Context(), itsm.Ref{Table: "problem", SysID: "p1"}, itsm.TicketUpdate{State: &resolved})
		require.True(t, itsm.IsKind(err, itsm.KindTransitionRefused), "%v", err)
		require.Contains(t, err.Error(), "Assess (102) instead of Resolved (106)")
		require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
	})
	t.Run("ProblemCancelClosesWithResolutionCode", func(t *testing.T) {
		t.Parallel()
		c, patches := setup(t, "107")
		got, err := c.UpdateTicket(t.Context(), itsm.Ref{Table: "problem", SysID: "p1"}, itsm.TicketUpdate{State: &canceled, CloseNotes: &notes})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"state": "107", "resolution_code": "canceled", "close_notes": notes}, (<-patches).body)
		require.Equal(t, "canceled", got.CloseCode)
	})
	t.Run("AssigneeByEmailWritesSysID", func(t *testing.T) {
		t.Parallel()
		c, patches := setup(t, "2")
		email := "beth.anglin@example.com"
		got, err := c.UpdateTicket(t.Context(), itsm.Ref{Table: "incident", SysID: "p1"}, itsm.TicketUpdate{AssignedToEmail: &email})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"assigned_to": "u1"}, (<-patches).body)
		require.Equal(t, "u1", got.AssignedToSysID)
		require.Equal(t, email, got.AssignedToEmail)
	})
}
