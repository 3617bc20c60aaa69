package apitest_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/api/apitest"
)

func TestValidatorChecksAnswersAgainstTheDocument(t *testing.T) {
	t.Parallel()
	v, err := apitest.NewValidator()
	require.NoError(t, err)
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	check := func(method, path string, status int, header http.Header, body string) error {
		req := httptest.NewRequestWithContext(t.Context(), method, "http://127.0.0.1:8080"+path, nil)
		return v.Check(t.Context(), req, status, header, []byte(body))
	}
	ticket := `{"assignment_id":3,"integration_id":1,"type":"incident","table":"incident","correlation_id":"steward-x-3",
		"status":"created","attempts":1,"number":"INC0010001","state":"Resolved","ended_state":"Resolved",
		"short_description":"s","description":"d","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z",
		"owner":"a@example.com","resource_id":"/subscriptions/s1/vm1","recommendation_key":"r1","severity":"High","assignment_state":"completed"`

	require.NoError(t, check("GET", "/api/v1/tickets/3", 200, jsonHeader, ticket+`}`))
	require.NoError(t, check("GET", "/api/v1/tickets/3", 404, jsonHeader, `{"error":{"code":"not_found","message":"assignment 3 has no ticket"}}`))
	require.NoError(t, check("GET", "/nowhere", 404, jsonHeader, `{"error":{"code":"not_found","message":"nothing at /nowhere"}}`))

	// An undocumented field, a missing required one, a value outside an enum.
	require.ErrorContains(t, check("GET", "/api/v1/tickets/3", 200, jsonHeader, ticket+`,"secret":"x"}`), "secret")
	require.ErrorContains(t, check("GET", "/api/v1/tickets/3", 200, jsonHeader, `{"assignment_id":3}`), "required")
	require.Error(t, check("GET", "/api/v1/tickets/3", 200, jsonHeader, ticket+`,"flag":"weird"}`))
	// A path the document does not know must not succeed, and off the
	// document errors keep the JSON shape.
	require.ErrorContains(t, check("GET", "/nowhere", 200, jsonHeader, `{}`), "not in the document")
	require.Error(t, check("GET", "/nowhere", 404, http.Header{"Content-Type": {"text/plain"}}, "404 page not found"))
}
