package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRootAndUnknownPaths: / names the API's description, and a path
// outside the API answers the JSON error shape, never the mux's plain
// text. b.rawRequest also checks each answer against /api/openapi.json.
func TestRootAndUnknownPaths(t *testing.T) {
	t.Parallel()
	b := setup(t)

	status, body := b.rawRequest(t, http.MethodGet, "/", "", nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, map[string]any{"name": "Steward", "api": "/api/v1", "openapi": "/api/openapi.json"}, body)

	for _, path := range []string{"/index.html", "/nav_to.do?uri=incident.do", "/api/v2/tickets"} {
		status, body = b.rawRequest(t, http.MethodGet, path, "", nil)
		require.Equal(t, http.StatusNotFound, status, path)
		code, message := errorOf(t, body)
		require.Equal(t, "not_found", code)
		require.Contains(t, message, "/api/openapi.json", path)
	}

	status, body = b.rawRequest(t, http.MethodPost, "/", "application/json", []byte(`{}`))
	require.Equal(t, http.StatusMethodNotAllowed, status)
	code, _ := errorOf(t, body)
	require.Equal(t, "method_not_allowed", code)
}
