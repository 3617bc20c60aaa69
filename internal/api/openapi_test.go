package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/api"
)

// TestOpenAPIMatchesRoutes checks the hand-maintained OpenAPI document
// against the router's table in both directions: every route is documented,
// and every documented operation is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()

	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(api.OpenAPIDocument(), &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."), "OpenAPI 3 document, got %q", doc.OpenAPI)

	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	a := api.New(api.Config{}, api.Deps{}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	var served []string
	for _, r := range a.Routes() {
		served = append(served, openAPIPath(r))
	}
	sort.Strings(documented)
	sort.Strings(served)
	require.Equal(t, served, documented)
}

// TestOpenAPIDocumentsRoles checks that every operation's x-steward-role
// is the role the route table enforces, and that exactly the public ones
// are documented without security.
func TestOpenAPIDocumentsRoles(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]struct {
			Role     string            `json:"x-steward-role"`
			Security *[]map[string]any `json:"security"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(api.OpenAPIDocument(), &doc))
	a := api.New(api.Config{}, api.Deps{}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	for route, want := range a.RouteAccess() {
		method, path, _ := strings.Cut(route, " ")
		op := doc.Paths[openAPIPath(path)][strings.ToLower(method)]
		require.Equal(t, want, op.Role, "x-steward-role of %s", route)
		public := op.Security != nil && len(*op.Security) == 0
		require.Equal(t, want == "public", public, "security of %s", route)
	}
}

// openAPIPath writes a mux pattern as an OpenAPI path: the {name...}
// wildcard is one {name} parameter, and {$} (the exact-match marker) is
// nothing.
func openAPIPath(pattern string) string {
	return strings.NewReplacer("...}", "}", "{$}", "").Replace(pattern)
}
