package servicenow_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/itsm/servicenow"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/testlog"
)

// Credentials of the fake-server tests. The leak checks grep for them.
const (
	testUser     = "svc.steward"
	testPassword = "pw-Must-Not-Leak-7"
	testClientID = "steward-client"
	testSecret   = "cs-Must-Not-Leak-9"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = testlog.Buffer

// newLogger returns a debug logger writing to both the test output and a
// buffer the leak checks read.
func newLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	h := slog.NewTextHandler(multiWriter{t.Output(), buf}, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h), buf
}

type multiWriter []interface{ Write([]byte) (int, error) }

func (m multiWriter) Write(p []byte) (int, error) {
	for _, w := range m {
		_, _ = w.Write(p)
	}
	return len(p), nil
}

// fastConfig is a basic-auth config against url with millisecond retry
// delays and no client-side rate limit.
func fastConfig(url string) servicenow.Config {
	return servicenow.Config{
		Name:                  "test",
		InstanceURL:           url,
		AllowInsecureLoopback: true,
		Username:              testUser,
		Password:              secret.New(testPassword),
		RequestsPerSecond:     -1,
		MinRetryDelay:         time.Millisecond,
		MaxRetryDelay:         20 * time.Millisecond,
		Timeout:               5 * time.Second,
	}
}

// newFakeServer starts h on loopback and returns a basic-auth client for
// it; mutate may change the config first.
func newFakeServer(t *testing.T, h http.HandlerFunc, mutate func(*servicenow.Config)) (*servicenow.Client, *httptest.Server, *syncBuffer) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := fastConfig(srv.URL)
	if mutate != nil {
		mutate(&cfg)
	}
	logger, logs := newLogger(t)
	c, err := servicenow.New(cfg, logger)
	require.NoError(t, err)
	return c, srv, logs
}

// writeJSON answers like an instance (reference §0).
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("X-Transaction-ID", "0a1b2c3d4e5f")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
