package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is written by hand, separately from the route table, so the
// test that compares the two can catch an undocumented or stale route.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPIDocument returns the API's OpenAPI 3 document.
func OpenAPIDocument() []byte { return openAPIDoc }

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, err := w.Write(openAPIDoc)
	return err
}
