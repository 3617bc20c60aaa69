package servicenow_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/itsm/servicenow"
)

// sharedLimiter stands in for a budget shared by several processes: it
// counts waits and records the delays it is told of.
type sharedLimiter struct {
	waits   atomic.Int64
	err     error
	mu      sync.Mutex
	delays  []time.Duration
	rate    float64
	burst   int
	created atomic.Int64
}

func (l *sharedLimiter) Wait(context.Context) error {
	l.waits.Add(1)
	return l.err
}

func (l *sharedLimiter) Delay(_ context.Context, d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.delays = append(l.delays, d)
	return nil
}

func (l *sharedLimiter) option() servicenow.Option {
	return servicenow.WithLimiter(func(rps float64, burst int) servicenow.Limiter {
		l.created.Add(1)
		l.rate, l.burst = rps, burst
		return l
	})
}

const notFoundBody = `{"error":{"message":"No Record found","detail":"Record doesn't exist or ACL restricts the record retrieval"},"status":"failure"}`

func limitedClient(t *testing.T, h http.HandlerFunc, rps float64, l *sharedLimiter) *servicenow.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := fastConfig(srv.URL)
	cfg.RequestsPerSecond = rps
	logger, _ := newLogger(t)
	c, err := servicenow.New(cfg, logger, l.option())
	require.NoError(t, err)
	return c
}

var unknownRecord = itsm.Ref{Table: "incident", SysID: "0123456789abcdef0123456789abcdef"}

// TestWithLimiter: the limiter WithLimiter builds replaces the token
// bucket, gets the configured rate with its default burst, and is asked
// before every attempt; with the limit disabled it is not built.
func TestWithLimiter(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	h := func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			writeJSON(w, http.StatusServiceUnavailable, `{"error":{"message":"busy"},"status":"failure"}`)
			return
		}
		writeJSON(w, http.StatusNotFound, notFoundBody)
	}
	l := &sharedLimiter{}
	c := limitedClient(t, h, 7, l)
	_, err := c.Ticket(t.Context(), unknownRecord)
	require.True(t, itsm.IsKind(err, itsm.KindNotFound), "%v", err)
	require.EqualValues(t, 1, l.created.Load())
	require.Equal(t, 7.0, l.rate)
	require.Equal(t, 7, l.burst, "default burst")
	require.EqualValues(t, 2, requests.Load())
	require.EqualValues(t, 2, l.waits.Load(), "one wait per attempt, the retry included")
	require.Empty(t, l.delays, "a 503 does not delay the budget")

	off := &sharedLimiter{}
	c = limitedClient(t, h, -1, off)
	_, err = c.Ticket(t.Context(), unknownRecord)
	require.True(t, itsm.IsKind(err, itsm.KindNotFound), "%v", err)
	require.Zero(t, off.created.Load())
	require.Zero(t, off.waits.Load())
}

// TestLimiterRetryAfter: a 429's Retry-After is passed on to a shared
// limiter (the other processes back off too), and the client's own retry
// behaviour is unchanged: a Retry-After within MaxRetryDelay is waited
// for and retried, a longer one is handed back in the error.
func TestLimiterRetryAfter(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	retryAfter := atomic.Value{}
	retryAfter.Store("0")
	h := func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			w.Header().Set("Retry-After", retryAfter.Load().(string))
			writeJSON(w, http.StatusTooManyRequests, `{"error":{"message":"Rate limit exceeded"},"status":"failure"}`)
			return
		}
		writeJSON(w, http.StatusNotFound, notFoundBody)
	}
	// Retry-After: 0 is no delay to pass on.
	l := &sharedLimiter{}
	c := limitedClient(t, h, 10, l)
	_, err := c.Ticket(t.Context(), unknownRecord)
	require.True(t, itsm.IsKind(err, itsm.KindNotFound), "%v", err)
	require.Empty(t, l.delays)

	// Retry-After: 3 is longer than MaxRetryDelay (20 ms here): the error
	// carries it for the job queue, and the shared budget is delayed by
	// MaxRetryDelay only (one answer does not stall every process for
	// longer than a retry would wait).
	requests.Store(0)
	retryAfter.Store("3")
	l = &sharedLimiter{}
	c = limitedClient(t, h, 10, l)
	_, err = c.Ticket(t.Context(), unknownRecord)
	ierr, ok := errors.AsType[*itsm.Error](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, itsm.KindRateLimited, ierr.Kind)
	require.Equal(t, 3*time.Second, ierr.RetryAfter)
	require.Equal(t, []time.Duration{20 * time.Millisecond}, l.delays)
	require.EqualValues(t, 1, requests.Load())
}

// TestLimiterError: a shared budget that cannot give a slot (its database
// is unreachable, or the slot is past the deadline) fails the request as
// rate limited and retryable, with the budget's reason, and sends nothing.
func TestLimiterError(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	h := func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		writeJSON(w, http.StatusNotFound, notFoundBody)
	}
	l := &sharedLimiter{err: errors.New("database is unavailable")}
	c := limitedClient(t, h, 10, l)
	_, err := c.Ticket(t.Context(), unknownRecord)
	ierr, ok := errors.AsType[*itsm.Error](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, itsm.KindRateLimited, ierr.Kind)
	require.True(t, ierr.Retryable)
	require.Contains(t, ierr.Error(), "database is unavailable")
	require.Zero(t, requests.Load())
}
