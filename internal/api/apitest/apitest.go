// Package apitest checks, in tests, that every answer Steward's API gives
// matches its OpenAPI document (/api/openapi.json), so the document and
// the code cannot drift apart unnoticed. Wire it into a client with
// apiclient's WithHTTPClient(apitest.Client(t)).
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/stewardhq/steward/internal/api"
)

// Validator checks answers against the API's OpenAPI document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// NewValidator loads and checks the API's OpenAPI document.
func NewValidator() (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPIDocument())
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is invalid: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route the OpenAPI document: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

// Check reports how an answer to req (status, header and the whole body)
// differs from the document, or nil when it matches. A path the document
// does not describe must answer 404 or 405 in the error shape.
func (v *Validator) Check(ctx context.Context, req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := v.findRoute(req)
	if err != nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("the path is not in the document (%v), yet it answered %d", err, status)
		}
		return v.checkError(header, body)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	return openapi3filter.ValidateResponse(ctx, in)
}

// findRoute finds req's operation. The API's {id...} wildcard takes the
// rest of the path, slashes and all (a resource ID); OpenAPI has no such
// parameter, so a path no route matches is tried again with what follows
// a trailing parameter's prefix escaped into one segment.
func (v *Validator) findRoute(req *http.Request) (*routers.Route, map[string]string, error) {
	route, params, err := v.router.FindRoute(req)
	if err == nil {
		return route, params, nil
	}
	for path := range v.doc.Paths.Map() {
		prefix, last, ok := strings.Cut(path, "/{")
		if !ok || strings.Contains(last, "/") || !strings.HasPrefix(req.URL.Path, prefix+"/") {
			continue
		}
		rest := strings.TrimPrefix(req.URL.Path, prefix+"/")
		clone := req.Clone(req.Context())
		clone.URL.Path = prefix + "/" + rest
		clone.URL.RawPath = prefix + "/" + url.PathEscape(rest)
		if route, params, err2 := v.router.FindRoute(clone); err2 == nil {
			return route, params, nil
		}
	}
	return nil, nil, err
}

// checkError checks an answer against the document's Error schema.
func (v *Validator) checkError(header http.Header, body []byte) error {
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("an error answer has Content-Type %q, not application/json", header.Get("Content-Type"))
	}
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("an error answer is not JSON: %w", err)
	}
	return v.doc.Components.Schemas["Error"].Value.VisitJSON(doc, openapi3.MultiErrors())
}

// Transport validates every answer that passes through next (the default
// transport when nil), failing t on any mismatch. The answer reaches the
// caller unchanged.
func Transport(t testing.TB, next http.RoundTripper) http.RoundTripper {
	t.Helper()
	v, err := sharedValidator()
	if err != nil {
		t.Fatal(err)
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{t: t, v: v, next: next}
}

// sharedValidator parses the document and builds its router once per test
// binary: they never change, and building them for every client made a
// test of 200 requests take minutes under -race.
var sharedValidator = sync.OnceValues(NewValidator)

// Client is an HTTP client whose answers are validated (see Transport),
// with apiclient's timeout.
func Client(t testing.TB) *http.Client {
	t.Helper()
	return &http.Client{Timeout: 5 * time.Minute, Transport: Transport(t, nil)}
}

type transport struct {
	t    testing.TB
	v    *Validator
	next http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tr.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read the answer to %s %s: %w", req.Method, req.URL.Path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := tr.v.Check(req.Context(), req, resp.StatusCode, resp.Header, body); err != nil {
		// Errorf, not Fatalf: RoundTrip may run outside the test's goroutine.
		tr.t.Errorf("%s %s answered %d, which /api/openapi.json does not allow: %v\nbody: %s",
			req.Method, req.URL.RequestURI(), resp.StatusCode, err, clip(body))
	}
	return resp, nil
}

func clip(b []byte) []byte {
	if len(b) > 2000 {
		return append(b[:2000:2000], "…"...)
	}
	return b
}
