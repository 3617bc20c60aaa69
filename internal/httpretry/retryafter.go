// Package httpretry reads what an HTTP answer says about retrying it. The
// ServiceNow client and the live-source providers share it.
package httpretry

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps a delay-seconds value, so a hostile or broken header
// cannot overflow a time.Duration.
const maxRetryAfter = 24 * time.Hour

// RetryAfter reads a Retry-After header value: delay-seconds or an
// HTTP-date, relative to now. ok is false when the value is absent or
// malformed (the caller then uses its own backoff); a date in the past or
// "0" means "now" (0, true). Delays are capped at 24 hours.
func RetryAfter(value string, now time.Time) (d time.Duration, ok bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(value, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(value); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}
