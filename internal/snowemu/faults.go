package snowemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Faults are failures injected into API answers (Table API and
// /oauth_token.do; never the admin API or the UI). Fractions are
// probabilities in [0,1], drawn per request from the emulator's random
// source (deterministic when Options.Seed is set). The zero value injects
// nothing.
type Faults struct {
	// Latency delays every answer; Jitter adds a random extra delay in
	// [0, Jitter).
	Latency time.Duration
	Jitter  time.Duration

	// Error500 and Error503 are the fractions answered 500 / 503 without
	// touching the store.
	Error500 float64
	Error503 float64

	// Drop is the fraction of connections closed without an answer and
	// without touching the store.
	Drop float64
	// DropAfterCommit is the fraction of requests that are fully applied
	// (the write commits, webhooks fire) and then have their connection
	// closed without an answer: the client cannot tell whether the create
	// happened (§2.6).
	DropAfterCommit float64

	// Storm429 is the fraction of requests answered 429 with Retry-After:
	// StormRetryAfter seconds (default 1), for StormDuration after SetFaults
	// (0 = until changed). These capacity 429s carry no rate-limit headers
	// (§7.2).
	Storm429        float64
	StormDuration   time.Duration
	StormRetryAfter int

	// SlowBodyChunk > 0 writes bodies in chunks of that many bytes with
	// SlowBodyDelay between them.
	SlowBodyChunk int
	SlowBodyDelay time.Duration

	// PathPrefix and Methods restrict the faults to matching requests
	// (empty matches all).
	PathPrefix string
	Methods    []string
}

// faultsJSON is the admin API's wire form of Faults; durations are in
// milliseconds.
type faultsJSON struct {
	LatencyMS       int64    `json:"latency_ms"`
	JitterMS        int64    `json:"jitter_ms"`
	Error500        float64  `json:"error_500"`
	Error503        float64  `json:"error_503"`
	Drop            float64  `json:"drop"`
	DropAfterCommit float64  `json:"drop_after_commit"`
	Storm429        float64  `json:"storm_429"`
	StormDurationMS int64    `json:"storm_duration_ms"`
	StormRetryAfter int      `json:"storm_retry_after"`
	SlowBodyChunk   int      `json:"slow_body_chunk"`
	SlowBodyDelayMS int64    `json:"slow_body_delay_ms"`
	PathPrefix      string   `json:"path_prefix"`
	Methods         []string `json:"methods"`
}

// MarshalJSON encodes the admin API form (durations in milliseconds).
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		LatencyMS: f.Latency.Milliseconds(), JitterMS: f.Jitter.Milliseconds(),
		Error500: f.Error500, Error503: f.Error503, Drop: f.Drop, DropAfterCommit: f.DropAfterCommit,
		Storm429: f.Storm429, StormDurationMS: f.StormDuration.Milliseconds(), StormRetryAfter: f.StormRetryAfter,
		SlowBodyChunk: f.SlowBodyChunk, SlowBodyDelayMS: f.SlowBodyDelay.Milliseconds(),
		PathPrefix: f.PathPrefix, Methods: f.Methods,
	})
}

// UnmarshalJSON decodes the admin API form.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode faults: %w", err)
	}
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
	*f = Faults{
		Latency: ms(j.LatencyMS), Jitter: ms(j.JitterMS),
		Error500: j.Error500, Error503: j.Error503, Drop: j.Drop, DropAfterCommit: j.DropAfterCommit,
		Storm429: j.Storm429, StormDuration: ms(j.StormDurationMS), StormRetryAfter: j.StormRetryAfter,
		SlowBodyChunk: j.SlowBodyChunk, SlowBodyDelay: ms(j.SlowBodyDelayMS),
		PathPrefix: j.PathPrefix, Methods: j.Methods,
	}
	return nil
}

// SetFaults replaces the injected faults; the zero Faults turns them off.
func (e *Emulator) SetFaults(f Faults) {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	e.faults = f
	e.faultAt = e.now()
}

// CurrentFaults returns the injected faults.
func (e *Emulator) CurrentFaults() Faults {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	return e.faults
}

// withFaults wraps an API handler with fault injection.
func (e *Emulator) withFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.faultMu.Lock()
		f, at := e.faults, e.faultAt
		e.faultMu.Unlock()
		if f.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, f.PathPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		if len(f.Methods) > 0 && !slices.ContainsFunc(f.Methods, func(m string) bool { return strings.EqualFold(m, r.Method) }) {
			next.ServeHTTP(w, r)
			return
		}
		if d := f.Latency + e.randDuration(f.Jitter); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		storming := f.Storm429 > 0 && (f.StormDuration == 0 || e.now().Before(at.Add(f.StormDuration)))
		switch {
		case storming && e.chance(f.Storm429):
			retry := f.StormRetryAfter
			if retry <= 0 {
				retry = 1
			}
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			e.writeError(w, r, errNullDetail(http.StatusTooManyRequests, "Too Many Requests"))
			return
		case e.chance(f.Error503):
			e.writeError(w, r, errNullDetail(http.StatusServiceUnavailable, "Service Unavailable"))
			return
		case e.chance(f.Error500):
			e.writeError(w, r, errBody(http.StatusInternalServerError, "Internal Server Error", "injected fault"))
			return
		case e.chance(f.Drop):
			dropConn(w)
			return
		case e.chance(f.DropAfterCommit):
			next.ServeHTTP(newBufferedWriter(), r) // the write commits; the answer is lost
			dropConn(w)
			return
		case f.SlowBodyChunk > 0:
			bw := newBufferedWriter()
			next.ServeHTTP(bw, r)
			bw.slowCopy(w, r, f.SlowBodyChunk, f.SlowBodyDelay)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// dropConn closes the client connection without writing a response.
func dropConn(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2 or wrapped writers: abort the stream
}

// bufferedWriter captures a response so faults can replay or discard it.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedWriter() *bufferedWriter { return &bufferedWriter{header: http.Header{}} }

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(s int) {
	if b.status == 0 {
		b.status = s
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// slowCopy replays the captured answer in chunks with delays, flushing
// each chunk so the client sees a slow body.
func (b *bufferedWriter) slowCopy(w http.ResponseWriter, r *http.Request, chunk int, delay time.Duration) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	fl, _ := w.(http.Flusher)
	data := b.body.Bytes()
	for len(data) > 0 {
		n := min(chunk, len(data))
		if _, err := w.Write(data[:n]); err != nil {
			return
		}
		data = data[n:]
		if fl != nil {
			fl.Flush()
		}
		if len(data) > 0 && delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
	}
}
