package servicenow

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/netpolicy"
)

// call is one logical Table API request; send may make several attempts.
type call struct {
	op     string // for errors: "create", "get", "update", "list", "lookup user", "validate"
	table  string // for errors and metrics
	method string
	path   string // below the instance root, e.g. /api/now/table/incident
	query  url.Values
	body   []byte // JSON, or nil
	// idempotent calls are sent again after any retryable failure. Others
	// (POST) only when the request provably did not reach the server or
	// was refused with 429; send reports the ambiguous cases instead.
	idempotent bool
	// noRetry makes the first failure final (validation probes: the user
	// waits for the answer).
	noRetry bool
	// noEcho keeps the instance's own error text out of the error's
	// message and detail (validation probes): whoever can type an instance
	// URL must not be able to make Steward relay what an arbitrary server
	// answers. The status and a fixed interpretation remain.
	noEcho bool
	// auth overrides the client's authenticator (validation probes).
	auth authenticator
}

// reply is a successful answer.
type reply struct {
	status int
	header http.Header
	result json.RawMessage
}

// send runs c with retries. ambiguous reports a failure after which a
// non-idempotent request may or may not have been applied.
func (cl *Client) send(ctx context.Context, c call) (rep *reply, err *itsm.Error, ambiguous bool) {
	maxRetries := cl.cfg.MaxRetries
	if c.noRetry {
		maxRetries = 0
	}
	reauthed := false
	for attempt := 0; ; attempt++ {
		if err := cl.wait(ctx, c.table); err != nil {
			return nil, err, false
		}
		rep, ierr, sent := cl.attempt(ctx, c)
		if ierr == nil {
			return rep, nil, false
		}
		if ierr.Status == http.StatusTooManyRequests && ierr.RetryAfter > 0 {
			cl.delayLimiter(ctx, c.table, ierr.RetryAfter)
		}
		auth := c.auth
		if auth == nil {
			auth = cl.auth
		}
		// Reference §1.2: on a 401, re-authenticate once and retry once.
		if ierr.Status == http.StatusUnauthorized && ierr.Op != "token" && !reauthed && auth.invalidate() {
			reauthed = true
			attempt--
			cl.log.DebugContext(ctx, "servicenow answered 401, re-authenticating", slog.String("table", c.table))
			continue
		}
		if !ierr.Retryable {
			return nil, ierr, false
		}
		if !c.idempotent && sent && ierr.Kind != itsm.KindRateLimited {
			return nil, ierr, true
		}
		if attempt >= maxRetries {
			return nil, ierr, false
		}
		delay, ok := cl.retryDelay(ctx, attempt, ierr)
		if !ok {
			return nil, ierr, false
		}
		cl.metrics.retry(cl.cfg.Name, c.table, string(ierr.Kind))
		cl.log.WarnContext(ctx, "servicenow request failed, retrying",
			slog.String("op", c.op), slog.String("table", c.table), slog.String("kind", string(ierr.Kind)),
			slog.Int("status", ierr.Status), slog.Int("attempt", attempt+1), slog.Duration("delay", delay))
		if !sleep(ctx, delay) {
			return nil, ierr, false // the caller's context ended: report the real failure
		}
	}
}

// retryDelay is the wait before retry number attempt+1: the server's
// Retry-After when it gave one, else exponential backoff with jitter
// between MinRetryDelay and MaxRetryDelay. ok is false when the wait is
// longer than MaxRetryDelay or would outlast the context's deadline.
func (cl *Client) retryDelay(ctx context.Context, attempt int, ierr *itsm.Error) (time.Duration, bool) {
	d := ierr.RetryAfter
	if d == 0 {
		d = cl.cfg.MinRetryDelay << min(attempt, 20)
		d = min(d, cl.cfg.MaxRetryDelay)
		d = d/2 + rand.N(d/2+1) // jitter in [d/2, d]
	}
	if d > cl.cfg.MaxRetryDelay {
		return d, false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return d, false
	}
	return d, true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// wait takes a token from the integration's rate limiter.
func (cl *Client) wait(ctx context.Context, table string) *itsm.Error {
	if cl.limiter == nil {
		return nil
	}
	if err := cl.limiter.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return cl.networkError(ctx, "wait", table, ctx.Err())
		}
		msg := "the integration's request rate limit leaves no room before the deadline"
		if _, local := cl.limiter.(*rate.Limiter); !local {
			// A shared budget: the wait would outlast the deadline, or the
			// budget could not be reached; its error says which.
			msg = "the integration's request budget gave no slot: " + steward.ErrorMessage(err)
		}
		return &itsm.Error{Op: "wait", Table: table, Kind: itsm.KindRateLimited, Retryable: true, Message: msg, Err: err}
	}
	return nil
}

// delayLimiter passes a 429's Retry-After on to a shared limiter, so that
// the other processes using the instance back off too. The delay is capped
// at MaxRetryDelay: a longer one (up to a day) would stall every process's
// requests on one answer's say-so, where each of them can be told the same
// by its own 429. A failure only costs that: this client still waits
// before its own retry.
func (cl *Client) delayLimiter(ctx context.Context, table string, d time.Duration) {
	dl, ok := cl.limiter.(Delayer)
	if !ok {
		return
	}
	d = min(d, cl.cfg.MaxRetryDelay)
	if err := dl.Delay(ctx, d); err != nil && ctx.Err() == nil {
		cl.log.WarnContext(ctx, "servicenow throttled: could not delay the shared request budget",
			slog.String("table", table), slog.Duration("retry_after", d), slog.Any("err", err))
	}
}

// attempt sends c once. sent reports whether the request may have reached
// the server.
func (cl *Client) attempt(ctx context.Context, c call) (rep *reply, ierr *itsm.Error, sent bool) {
	actx, cancel := context.WithTimeout(ctx, cl.cfg.Timeout)
	defer cancel()
	var wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	u := cl.base + c.path
	if len(c.query) > 0 {
		u += "?" + c.query.Encode()
	}
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(actx, c.method, u, body)
	if err != nil {
		return nil, &itsm.Error{Op: c.op, Table: c.table, Kind: itsm.KindInvalid, Message: "cannot build the request", Err: itsm.RedactError(err)}, false
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "steward")
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	auth := c.auth
	if auth == nil {
		auth = cl.auth
	}
	if aerr := auth.apply(ctx, req); aerr != nil {
		return nil, aerr, false
	}

	start := time.Now()
	resp, err := cl.http.Do(req)
	if err != nil {
		cl.metrics.request(cl.cfg.Name, c.table, c.method, 0)
		e := cl.networkError(ctx, c.op, c.table, err)
		if actx.Err() != nil && ctx.Err() == nil {
			e.Message = fmt.Sprintf("no answer from %s within %s", cl.host, cl.cfg.Timeout)
		}
		return nil, e, wrote.Load()
	}
	defer itsm.DrainBody(resp.Body, 4<<10)
	data, err := io.ReadAll(io.LimitReader(resp.Body, cl.cfg.MaxResponseBytes+1))
	cl.metrics.request(cl.cfg.Name, c.table, c.method, resp.StatusCode)
	cl.metrics.observe(cl.cfg.Name, c.table, c.method, time.Since(start))
	txn := resp.Header.Get("X-Transaction-ID")
	if err != nil {
		e := cl.networkError(ctx, c.op, c.table, err)
		if !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			e.Message = fmt.Sprintf("the connection to %s dropped while the answer was being read", cl.host)
		}
		e.Status, e.TransactionID = resp.StatusCode, txn
		return nil, e, true
	}
	if int64(len(data)) > cl.cfg.MaxResponseBytes {
		return nil, &itsm.Error{Op: c.op, Table: c.table, Status: resp.StatusCode, TransactionID: txn, Kind: itsm.KindBadResponse,
			Message: fmt.Sprintf("the answer is larger than %d bytes (use a smaller PageSize)", cl.cfg.MaxResponseBytes)}, true
	}
	cl.log.DebugContext(ctx, "servicenow request", slog.String("method", c.method), slog.String("path", c.path),
		slog.Int("status", resp.StatusCode), slog.String("transaction", txn), slog.Duration("took", time.Since(start)))

	if resp.StatusCode < 200 || resp.StatusCode > 299 || resp.StatusCode == http.StatusAccepted {
		return nil, cl.statusError(c, resp, data), true
	}
	if resp.StatusCode == http.StatusNoContent {
		return &reply{status: resp.StatusCode, header: resp.Header}, nil, true
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil || env.Result == nil {
		e := &itsm.Error{Op: c.op, Table: c.table, Status: resp.StatusCode, TransactionID: txn, Kind: itsm.KindBadResponse,
			Message: "ServiceNow's answer is not a Table API JSON result" + htmlHint(resp), Err: err}
		return nil, e, true
	}
	if len(env.Error) > 0 && string(env.Error) != "null" {
		// Reference §7.3: a transaction cancelled while streaming yields a
		// truncated result followed by an error; the result is not whole.
		var eb errorBody
		_ = json.Unmarshal(env.Error, &eb)
		e := &itsm.Error{Op: c.op, Table: c.table, Status: resp.StatusCode, TransactionID: txn, Kind: itsm.KindBadResponse,
			Retryable: true, Message: "ServiceNow's answer holds both a result and an error (the transaction was cancelled part-way)"}
		if !c.noEcho {
			e.Message += ": " + cl.scrub(eb.Message)
			e.Detail = cl.scrub(eb.detail())
		}
		return nil, e, true
	}
	return &reply{status: resp.StatusCode, header: resp.Header, result: env.Result}, nil, true
}

func htmlHint(resp *http.Response) string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "text/html" {
		return " but an HTML page (a hibernating developer instance, a login page or a proxy?)"
	}
	return ""
}

// statusError explains a non-2xx (or 202) answer from its status and the
// error envelope (reference §2.2), keeping message, detail and the
// transaction ID. Control flow keys on the status only, except the
// documented Data Policy Exception and Invalid table cases.
func (cl *Client) statusError(c call, resp *http.Response, data []byte) *itsm.Error {
	var env struct {
		Error errorBody `json:"error"`
	}
	_ = json.Unmarshal(data, &env)
	msg, detail := cl.scrub(env.Error.Message), cl.scrub(env.Error.detail())
	status := resp.StatusCode
	e := &itsm.Error{Op: c.op, Table: c.table, Status: status, TransactionID: resp.Header.Get("X-Transaction-ID"), Detail: detail}
	quoted := ""
	if msg != "" {
		quoted = fmt.Sprintf(" (%q)", msg)
	}
	if c.noEcho {
		// msg and detail still steer the interpretation below (e.g.
		// "Invalid table"), but are not repeated.
		quoted, e.Detail = "", ""
	}
	switch {
	case status == http.StatusAccepted:
		// Reference §0: a busy session queues and then drops the request.
		e.Kind, e.Retryable = itsm.KindUnavailable, true
		e.Message = "ServiceNow accepted the request without processing it (HTTP 202: its session queue was full)"
	case status >= 300 && status < 400:
		e.Kind = itsm.KindInvalid
		e.Message = cl.redirectMessage(resp)
	case status == http.StatusBadRequest && strings.HasPrefix(msg, "Invalid table"):
		e.Kind = itsm.KindInvalidTable
		e.Message = fmt.Sprintf("table %q does not exist on %s%s", c.table, cl.host, quoted)
	case status == http.StatusUnauthorized:
		e.Kind = itsm.KindAuth
		e.Message = cl.unauthorizedMessage(c) + quoted
	case status == http.StatusForbidden && strings.HasPrefix(detail, "Data Policy Exception"):
		e.Kind = itsm.KindDataPolicy
		e.Message = "ServiceNow's data policy rejected the write (a mandatory field is missing)" + quoted
	case status == http.StatusForbidden:
		e.Kind = itsm.KindForbidden
		e.Message = fmt.Sprintf("the integration user %s may not do this (missing role, ACL or a business rule refused it)%s", cl.userLabel(), quoted)
	case status == http.StatusNotFound:
		e.Kind = itsm.KindNotFound
		e.Message = "record not found (deleted, or hidden by an ACL)" + quoted
	case status == http.StatusTooManyRequests:
		e.Kind, e.Retryable = itsm.KindRateLimited, true
		e.RetryAfter = itsm.ParseRetryAfter(resp.Header.Get("Retry-After"), cl.now())
		e.Message = "ServiceNow's rate limit was exceeded" + quoted
	case itsm.RetryableStatus(status):
		e.Kind, e.Retryable = itsm.KindUnavailable, true
		e.RetryAfter = itsm.ParseRetryAfter(resp.Header.Get("Retry-After"), cl.now())
		e.Message = fmt.Sprintf("ServiceNow is unavailable (HTTP %d)%s", status, quoted)
	case status >= 500:
		e.Kind = itsm.KindUnavailable
		e.Message = fmt.Sprintf("ServiceNow failed (HTTP %d)%s", status, quoted)
	default:
		e.Kind = itsm.KindInvalid
		e.Message = "ServiceNow rejected the request" + quoted
	}
	if msg == "" && detail == "" {
		if h := htmlHint(resp); h != "" {
			e.Detail = "the answer is" + strings.TrimPrefix(h, " but")
		}
	}
	return e
}

// redirectMessage explains a 3xx answer. Redirects are never followed:
// they would resend credentials, and POSTs, to wherever the answer
// points, past the outbound policy. Only the target's scheme and host
// are named, never its path or query.
func (cl *Client) redirectMessage(resp *http.Response) string {
	loc, err := resp.Location()
	switch {
	case err != nil || loc.Host == "" || len(loc.Host) > 260 || (loc.Scheme != "https" && loc.Scheme != "http"):
		return fmt.Sprintf("the instance answered HTTP %d, a redirect without a usable target: check the instance URL (Steward does not follow redirects)", resp.StatusCode)
	case strings.EqualFold(loc.Scheme+"://"+loc.Host, cl.base):
		return fmt.Sprintf("the instance answered HTTP %d, a redirect to another page of %s (a login or SSO page, or a hibernating developer instance?): check the instance URL and that the instance is awake", resp.StatusCode, cl.host)
	}
	return fmt.Sprintf("the instance answered with a redirect to %s://%s; use that URL as the instance URL if it is your instance (Steward does not follow redirects)", loc.Scheme, loc.Host)
}

func (cl *Client) userLabel() string {
	if cl.cfg.Username == "" {
		return "(the OAuth application user)"
	}
	return strconv.Quote(cl.cfg.Username)
}

func (cl *Client) unauthorizedMessage(c call) string {
	mode := cl.cfg.AuthMode
	if _, ok := c.auth.(basicAuth); ok {
		mode = AuthBasic
	}
	switch mode {
	case AuthBasic:
		return fmt.Sprintf("ServiceNow rejected the user name or password of %q (Basic auth; some instances also restrict Basic auth to users with a specific role)", cl.cfg.Username)
	default:
		return "ServiceNow rejected a freshly issued access token: the integration user may not use the REST API"
	}
}

// networkError explains a failure where no usable answer arrived, naming
// the cause: DNS, TLS, refused connection, timeout or dropped connection.
func (cl *Client) networkError(ctx context.Context, op, table string, err error) *itsm.Error {
	err = itsm.RedactError(err)
	e := &itsm.Error{Op: op, Table: table, Kind: itsm.KindNetwork, Retryable: true, Err: err}
	host := cl.host
	var dnsErr *net.DNSError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr x509.CertificateInvalidError
	var verifyErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var alertErr tls.AlertError
	var netErr net.Error
	var refused *netpolicy.RefusedError
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		e.Kind, e.Retryable = itsm.KindCanceled, false
		e.Message = "the request was canceled"
		e.Err = ctx.Err()
	case ctx.Err() != nil:
		e.Message = fmt.Sprintf("no answer from %s before the caller's deadline", host)
		e.Err = ctx.Err()
	case errors.As(err, &refused):
		// The configuration is wrong, or the name now resolves somewhere
		// it must not: retrying cannot help.
		e.Kind, e.Retryable = itsm.KindInvalid, false
		e.Message = fmt.Sprintf("the outbound policy refused the connection to %s: %s", host, refused)
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			e.Retryable = false
			e.Message = fmt.Sprintf("the host name %s does not exist (DNS): check the instance URL", host)
		} else {
			e.Message = fmt.Sprintf("the DNS lookup of %s failed", host)
		}
	case errors.As(err, &unknownAuth), errors.As(err, &verifyErr):
		e.Retryable = false
		e.Message = fmt.Sprintf("the TLS certificate of %s is not trusted (unknown authority or invalid chain): install its CA or check for an intercepting proxy", host)
	case errors.As(err, &hostErr):
		e.Retryable = false
		e.Message = fmt.Sprintf("the TLS certificate of %s is for another host name", host)
	case errors.As(err, &certErr):
		e.Retryable = false
		e.Message = fmt.Sprintf("the TLS certificate of %s is invalid (expired or not yet valid?)", host)
	case errors.As(err, &recErr),
		// net/http turns the tls.RecordHeaderError into this text only.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		e.Retryable = false
		e.Message = fmt.Sprintf("%s does not speak TLS on this port (an http:// server?)", host)
	case errors.As(err, &alertErr):
		e.Retryable = false
		e.Message = fmt.Sprintf("the TLS handshake with %s failed", host)
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Message = fmt.Sprintf("%s refused the connection (nothing listens there: check the URL and port)", host)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		e.Message = fmt.Sprintf("no answer from %s within %s", host, cl.cfg.Timeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		e.Message = fmt.Sprintf("the connection to %s dropped before the answer arrived", host)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		e.Message = fmt.Sprintf("%s is unreachable from here (network or firewall)", host)
	default:
		e.Message = fmt.Sprintf("cannot reach %s", host)
	}
	return e
}

// list reads every page of a list query: offset paging driven by
// X-Total-Count (reference §2.5): offset += limit until offset >= total,
// or, when the count is missing, until an empty page. A short page never
// ends the loop (ACLs filter after the limit).
func (cl *Client) list(ctx context.Context, c call, each func(record) error) *itsm.Error {
	limit := cl.cfg.PageSize
	for offset := 0; ; offset += limit {
		q := cloneValues(c.query)
		q.Set("sysparm_limit", strconv.Itoa(limit))
		q.Set("sysparm_offset", strconv.Itoa(offset))
		pc := c
		pc.query = q
		rep, err, _ := cl.send(ctx, pc)
		if err != nil {
			return err
		}
		recs, perr := cl.decodeList(c, rep)
		if perr != nil {
			return perr
		}
		for _, r := range recs {
			if err := each(r); err != nil {
				return &itsm.Error{Op: c.op, Table: c.table, Kind: itsm.KindBadResponse, Message: err.Error(), Err: err}
			}
		}
		total, hasTotal := totalCount(rep)
		if hasTotal && offset+limit >= total {
			return nil
		}
		if !hasTotal && len(recs) == 0 {
			return nil
		}
	}
}

func (cl *Client) decodeList(c call, rep *reply) ([]record, *itsm.Error) {
	var recs []record
	if err := json.Unmarshal(rep.result, &recs); err != nil {
		return nil, &itsm.Error{Op: c.op, Table: c.table, Status: rep.status, TransactionID: rep.header.Get("X-Transaction-ID"),
			Kind: itsm.KindBadResponse, Message: "ServiceNow's list result is not an array of records", Err: err}
	}
	return recs, nil
}

func (cl *Client) decodeOne(c call, rep *reply) (record, *itsm.Error) {
	var r record
	if err := json.Unmarshal(rep.result, &r); err != nil || r == nil {
		return nil, &itsm.Error{Op: c.op, Table: c.table, Status: rep.status, TransactionID: rep.header.Get("X-Transaction-ID"),
			Kind: itsm.KindBadResponse, Message: "ServiceNow's result is not a record", Err: err}
	}
	return r, nil
}

func totalCount(rep *reply) (int, bool) {
	h := rep.header.Get("X-Total-Count")
	if h == "" {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(h))
	return n, err == nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v)+2)
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
