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
		// The mux's {name...} wildcard is one {name} parameter in OpenAPI.
		served = append(served, strings.ReplaceAll(r, "...}", "}"))
	}
	sort.Strings(documented)
	sort.Strings(served)
	require.Equal(t, served, documented)
}
