package web

import (
	"bytes"
	"io"
	"net/http"

	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth"
)

// inProcessBase is the base URL of the in-process API client; requests
// never leave the process, so the host is a placeholder.
const inProcessBase = "http://steward.internal"

// apiFor returns an API client that calls the API in process as the
// signed-in user: the API checks that identity's role and scope and
// records it in history and the audit log, exactly as for a token.
func (h *Handler) apiFor(w http.ResponseWriter, r *http.Request) *apiclient.Client {
	c, err := apiclient.New(inProcessBase, "")
	if err != nil {
		panic(err) // the constant base URL is valid
	}
	return c.WithHTTPClient(&http.Client{Transport: &inProcess{api: h.api, id: identity(r), outer: w, remoteAddr: r.RemoteAddr}})
}

// inProcess is an http.RoundTripper that serves requests with the API
// handler, the caller's identity already in the request's context.
type inProcess struct {
	api        http.Handler
	id         auth.Identity
	outer      http.ResponseWriter
	remoteAddr string
}

func (t *inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.WithContext(auth.WithIdentity(req.Context(), t.id))
	req.RemoteAddr = t.remoteAddr
	req.RequestURI = req.URL.RequestURI()
	rec := &recorder{header: http.Header{}, outer: t.outer}
	t.api.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status: http.StatusText(rec.status), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len()),
		Request: req,
	}, nil
}

// recorder buffers the API's answer. Unwrap exposes the browser's
// connection, so an upload streamed through (an import) keeps the API's
// read deadlines on the connection it is read from.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	outer  http.ResponseWriter
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.outer }
