package servicenow_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/itsm/itsmtest"
)

// recordedHandler serves the recorded answers of testdata/ (see its
// README) and checks that every request has the shape the client promises:
// JSON Accept, Basic credentials, no cookies sent back, reference links
// excluded on reads.
func recordedHandler(t *testing.T) http.HandlerFunc {
	file := func(name string) string {
		b, err := os.ReadFile("testdata/" + name)
		require.NoError(t, err)
		return string(b)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "application/json", r.Header.Get("Accept"))
		user, pass, ok := r.BasicAuth()
		require.True(t, ok)
		require.Equal(t, testUser, user)
		require.Equal(t, testPassword, pass)
		require.Empty(t, r.Header.Get("Cookie"), "the client must not keep session cookies (reference §0)")
		// Real instances set session cookies on every answer.
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "ABC123", Path: "/"})
		q := r.URL.Query()
		query := q.Get("sysparm_query")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/now/table/ticket" && strings.HasPrefix(query, "sys_idIN"):
			require.Equal(t, "true", q.Get("sysparm_exclude_reference_link"))
			require.Contains(t, q.Get("sysparm_fields"), "correlation_id")
			w.Header().Set("X-Total-Count", "5")
			writeJSON(w, 200, file("task_ticket_more_than_5.json"))
		case r.Method == http.MethodPost && r.URL.Path == "/api/now/table/ticket":
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			var body map[string]string
			require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
			require.Equal(t, "My mouse is not working.", body["short_description"])
			require.Equal(t, "steward-a-1", body["correlation_id"])
			writeJSON(w, 201, file("create_ticket.json"))
		case r.Method == http.MethodGet && r.URL.Path == "/api/now/table/change_request/11ab5ccfdb784d505da401a3ca96190a":
			writeJSON(w, 200, file("create_co_from_template_result.json"))
		case r.URL.Path == "/api/now/table/sys_user" && strings.HasPrefix(query, "email=twins@example.com^"):
			require.Equal(t, "2", q.Get("sysparm_limit"), "limit 2 detects duplicates (reference §6)")
			writeJSON(w, 200, file("multiple-users-found.json"))
		case r.URL.Path == "/api/now/table/sys_user" && strings.HasPrefix(query, "email=nobody@example.com^"):
			writeJSON(w, 200, file("user-not-found.json"))
		default:
			_, _ = io.Copy(io.Discard, r.Body)
			writeJSON(w, 400, `{"error":{"message":"Requested URI does not represent any resource","detail":null},"status":"failure"}`)
		}
	}
}

func TestRecorded(t *testing.T) {
	t.Parallel()

	t.Run("TaskRecordsWithReferenceLinks", func(t *testing.T) {
		t.Parallel()
		c, srv, _ := newFakeServer(t, recordedHandler(t), nil)

		got, err := c.Tickets(t.Context(), "ticket", []string{"f8cfe469db153300ea92eb41ca96198b", "f9817ca9db153300ea92eb41ca9619d7"})
		require.NoError(t, err)
		require.Len(t, got, 2, "TKT0010002 appears four times in the recording")
		first := got[0]
		if first.Number != "TKT0010001" {
			first = got[1]
		}
		require.Equal(t, "TKT0010001", first.Number)
		require.Equal(t, "f8cfe469db153300ea92eb41ca96198b", first.SysID)
		require.Equal(t, "Open", first.RawState)
		require.Empty(t, first.State, "the ticket table has no state model")
		require.Equal(t, time.Date(2019, 5, 8, 13, 25, 20, 0, time.UTC), first.UpdatedAt)
		require.Equal(t, "shree", first.UpdatedBy)
		require.Zero(t, first.ModCount)
		require.Empty(t, first.AssignedToSysID)
		require.Equal(t, srv.URL+"/nav_to.do?uri=ticket.do?sys_id=f8cfe469db153300ea92eb41ca96198b", first.Link)
	})

	t.Run("CreateAnswer", func(t *testing.T) {
		t.Parallel()
		c, _, _ := newFakeServer(t, recordedHandler(t), nil)

		got, err := c.CreateTicket(t.Context(), itsm.CreateRequest{Table: "ticket", CorrelationID: "steward-a-1",
			ShortDescription: "My mouse is not working.", FirstAttempt: true})
		require.NoError(t, err)
		require.Equal(t, "TKT0010006", got.Number)
		require.Equal(t, "00909613db113300ea92eb41ca961949", got.SysID)
		require.Equal(t, time.Date(2019, 5, 14, 6, 57, 39, 0, time.UTC), got.UpdatedAt)
	})

	t.Run("ChangeRequestWithDisplayValueAll", func(t *testing.T) {
		t.Parallel()
		c, _, _ := newFakeServer(t, recordedHandler(t), nil)

		got, err := c.Ticket(t.Context(), itsm.Ref{Table: "change_request", SysID: "11ab5ccfdb784d505da401a3ca96190a"})
		require.NoError(t, err)
		require.Equal(t, "CHG0031889", got.Number)
		require.Equal(t, "-5", got.RawState, "the recording has the JSON number -5.0")
		require.Equal(t, steward.TicketNew, got.State)
		require.Equal(t, "New", got.StateLabel, "label from display_value")
		require.Equal(t, time.Date(2022, 1, 6, 12, 12, 43, 0, time.UTC), got.UpdatedAt, "value, not the display value in the user's zone")
		require.Equal(t, "admin_test_Nov2020-01", got.UpdatedBy)
		require.Empty(t, got.AssignedToSysID)
		require.Zero(t, got.ModCount)
	})

	t.Run("MultipleUsersFound", func(t *testing.T) {
		t.Parallel()
		c, _, _ := newFakeServer(t, recordedHandler(t), nil)

		_, err := c.LookupUser(t.Context(), "twins@example.com")
		require.True(t, itsm.IsKind(err, itsm.KindAmbiguous), "%v", err)
		require.Equal(t, steward.CodeConflict, steward.ErrorCode(err))
		require.Contains(t, err.Error(), "60bef257db220010b026d1b1ca9619ed")
		require.Contains(t, err.Error(), "twins@example.com")

		_, err = c.CreateTicket(t.Context(), itsm.CreateRequest{Table: "ticket", CorrelationID: "steward-a-2",
			ShortDescription: "x", AssignedToEmail: "twins@example.com", FirstAttempt: true})
		require.True(t, itsm.IsKind(err, itsm.KindAmbiguous), "%v", err)
		require.Contains(t, err.Error(), "assignee")
	})

	t.Run("UserNotFound", func(t *testing.T) {
		t.Parallel()
		c, _, logs := newFakeServer(t, recordedHandler(t), nil)

		_, err := c.LookupUser(t.Context(), "nobody@example.com")
		require.True(t, itsm.IsKind(err, itsm.KindNotFound), "%v", err)
		require.Equal(t, steward.CodeNotFound, steward.ErrorCode(err))
		require.Contains(t, steward.ErrorMessage(err), "nobody@example.com")
		itsmtest.AssertNoSecretLeak(t, err, testPassword)
		itsmtest.AssertNoSecretLeak(t, logs.String(), testPassword, testUser+":"+testPassword)
	})
}
