// Package logthrottle keeps a repeated log line (a refused token, a refused
// webhook) from flooding the log: per key, at most burst lines in each
// interval. Each line that gets through says how many were left out before
// it, so the count is never lost while the log stays bounded.
package logthrottle

import (
	"sync"
	"time"
)

// maxKeys bounds the state: past it, every new key shares one budget, so a
// spray of keys (addresses, integration IDs) cannot grow memory.
const maxKeys = 1024

// Limiter decides which lines to write. Its methods are safe for
// concurrent use.
type Limiter struct {
	burst    int
	interval time.Duration

	mu   sync.Mutex
	keys map[any]*window
}

type window struct {
	start      time.Time
	written    int
	suppressed int // lines left out since the last one written
}

// New allows burst lines per key in each interval.
func New(burst int, interval time.Duration) *Limiter {
	return &Limiter{burst: max(burst, 1), interval: interval, keys: map[any]*window{}}
}

// overflowKey is the shared key once maxKeys distinct keys are tracked.
type overflowKey struct{}

// Allow reports whether a line for key may be written at now and, if so,
// how many lines for that key were suppressed before it.
func (l *Limiter) Allow(key any, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.keys[key]
	if w == nil {
		if len(l.keys) >= maxKeys {
			l.forgetIdle(now)
		}
		if len(l.keys) >= maxKeys {
			key = overflowKey{}
			w = l.keys[key]
		}
		if w == nil {
			w = &window{start: now}
			l.keys[key] = w
		}
	}
	if now.Sub(w.start) >= l.interval || now.Before(w.start) {
		w.start, w.written = now, 0
	}
	if w.written >= l.burst {
		w.suppressed++
		return false, 0
	}
	w.written++
	suppressed, w.suppressed = w.suppressed, 0
	return true, suppressed
}

// forgetIdle drops windows that ended with nothing left to report; l.mu is
// held.
func (l *Limiter) forgetIdle(now time.Time) {
	for k, w := range l.keys {
		if now.Sub(w.start) >= l.interval && w.suppressed == 0 {
			delete(l.keys, k)
		}
	}
}
