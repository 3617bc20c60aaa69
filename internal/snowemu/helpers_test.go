package snowemu_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/snowemu"
)

// fakeClock is a settable clock for Options.Clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testBundle struct {
	emu   *snowemu.Emulator
	srv   *httptest.Server
	clock *fakeClock
}

// setup starts an emulator behind a real HTTP server. The clock starts at a
// fixed instant so dates are predictable.
func setup(t *testing.T, opts snowemu.Options) *testBundle {
	t.Helper()
	clk := &fakeClock{now: time.Date(2024, 3, 5, 14, 2, 10, 0, time.UTC)}
	if opts.Clock == nil {
		opts.Clock = clk.Now
	}
	if opts.Seed == 0 {
		opts.Seed = 42
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	emu := snowemu.New(opts, logger)
	srv := httptest.NewServer(emu)
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, emu.Close())
	})
	return &testBundle{emu: emu, srv: srv, clock: clk}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

func (r *response) result(t *testing.T) map[string]any {
	t.Helper()
	res, ok := r.json(t)["result"].(map[string]any)
	require.True(t, ok, "result is not an object: %s", r.body)
	return res
}

func (r *response) results(t *testing.T) []any {
	t.Helper()
	res, ok := r.json(t)["result"].([]any)
	require.True(t, ok, "result is not an array: %s", r.body)
	return res
}

// reqOpt modifies a request.
type reqOpt func(*http.Request)

func withBasic(user, pass string) reqOpt {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func withHeader(k, v string) reqOpt {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

func noAuth() reqOpt { return func(r *http.Request) { r.Header.Del("Authorization") } }

// do sends a request as admin unless an option changes the credentials.
func (b *testBundle) do(t *testing.T, method, path, body string, opts ...reqOpt) *response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, b.srv.URL+path, rd)
	require.NoError(t, err)
	req.SetBasicAuth("admin", "admin")
	req.Header.Set("Accept", "application/json")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return &response{status: resp.StatusCode, header: resp.Header, body: data}
}

// create posts a record and returns its raw fields (links excluded).
func (b *testBundle) create(t *testing.T, table, body string) map[string]any {
	t.Helper()
	r := b.do(t, http.MethodPost, "/api/now/table/"+table+"?sysparm_exclude_reference_link=true", body)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	return r.result(t)
}

func (b *testBundle) patch(t *testing.T, table, id, body string, opts ...reqOpt) *response {
	t.Helper()
	return b.do(t, http.MethodPatch, "/api/now/table/"+table+"/"+id+"?sysparm_exclude_reference_link=true", body, opts...)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
