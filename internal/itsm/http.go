package itsm

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/httpretry"
)

// RetryableStatus reports whether an HTTP answer with this status may
// succeed when the same request is sent again:
//
//   - 429: rate limited (reference §7.1, §7.2);
//   - 500, 502, 503, 504: server or gateway failure (§7.2, §7.3);
//   - 202: ServiceNow queued and then dropped the request because its
//     session was busy (reference §0, session serialization); the Table API
//     never answers 202 otherwise.
//
// Every other status is final: 2xx succeeded, 3xx is a misconfigured URL,
// 4xx says the request itself is wrong and sending it again cannot help
// (401 is retried once by providers after re-authenticating, which is a
// different request).
func RetryableStatus(status int) bool {
	switch status {
	case http.StatusAccepted, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date relative to now. It returns 0 when the header is absent,
// malformed or in the past.
func ParseRetryAfter(h string, now time.Time) time.Duration {
	d, _ := httpretry.RetryAfter(h, now)
	return d
}

// RedactURL returns raw without user info, query and fragment, so it can go
// into errors and logs: query strings may hold tokens or API keys, user
// info a password. A query or user info that was removed is marked
// "[redacted]". Unparsable input is replaced entirely.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[redacted URL]"
	}
	if u.User != nil {
		u.User = url.User("[redacted]")
	}
	hadQuery := u.RawQuery != "" || u.ForceQuery
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	s := u.String()
	s = strings.Replace(s, "%5Bredacted%5D@", "[redacted]@", 1)
	if hadQuery {
		s += "?[redacted]"
	}
	return s
}

// RedactError returns err with the URL of the first *url.Error in its
// chain replaced by RedactURL of it. It returns a redacted copy of that
// *url.Error (dropping any wrapper, whose text may quote the URL) and
// leaves err itself unmodified.
func RedactError(err error) error {
	ue, ok := errors.AsType[*url.Error](err)
	if !ok || ue.URL == RedactURL(ue.URL) {
		return err
	}
	cp := *ue
	cp.URL = RedactURL(ue.URL)
	return &cp
}

// DrainBody reads at most limit bytes of rc and closes it, so the
// connection can be reused.
func DrainBody(rc io.ReadCloser, limit int64) {
	if rc == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, limit))
	_ = rc.Close()
}
