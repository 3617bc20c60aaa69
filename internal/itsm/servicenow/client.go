package servicenow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
)

var _ itsm.Provider = (*Client)(nil)

// Client is a ServiceNow Table API client implementing itsm.Provider for
// one instance. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    string // https://host[:port], no trailing slash
	host    string // host[:port], for messages
	log     *slog.Logger
	http    *http.Client
	auth    authenticator
	limiter Limiter // nil: no limit
	metrics *Metrics
	// newLimiter, when set, builds the limiter in place of the in-process
	// token bucket (WithLimiter).
	newLimiter func(requestsPerSecond float64, burst int) Limiter

	usersMu    sync.Mutex
	userFlight singleflight.Group
	users      map[string]userEntry
}

type userEntry struct {
	user    *itsm.User
	expires time.Time
}

// Option configures optional parts of a Client.
type Option func(*Client)

// WithMetrics makes the client count its requests in m.
func WithMetrics(m *Metrics) Option { return func(c *Client) { c.metrics = m } }

// Limiter paces the client's requests: Wait returns when the next request
// may be sent, or an error when the context ends first or the wait would
// outlast its deadline. *rate.Limiter is one.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Delayer is implemented by a Limiter shared with other clients of the
// same instance (other processes): Delay tells it that the instance asked
// for no requests within d (a 429 with Retry-After), so that all of them
// back off, not only the client that was told.
type Delayer interface {
	Delay(ctx context.Context, d time.Duration) error
}

// WithLimiter replaces the client's in-process token bucket by the limiter
// newLimiter builds from the configured rate and burst (after defaults),
// e.g. a budget shared by several processes. With the limit disabled
// (negative RequestsPerSecond) it is not called.
func WithLimiter(newLimiter func(requestsPerSecond float64, burst int) Limiter) Option {
	return func(c *Client) { c.newLimiter = newLimiter }
}

// New returns a client for cfg. It checks cfg (Config.Validate) but does
// not contact the instance; call Validate for that.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := cfg.instanceURL()
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:   cfg,
		base:  u.Scheme + "://" + u.Host,
		host:  u.Host,
		log:   logger,
		users: make(map[string]userEntry),
	}
	// A copy of the caller's client: no cookie jar, so concurrent requests
	// are not funnelled through one ServiceNow session (reference §0), and
	// no redirects, which would resend requests (and POSTs) elsewhere.
	hc := http.Client{}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	hc.Jar = nil
	hc.Timeout = 0 // per attempt, through the context
	if cfg.Policy != nil {
		base, _ := hc.Transport.(*http.Transport) // Validate refused any other kind
		hc.Transport = cfg.Policy.Transport(base)
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	if cfg.RequestsPerSecond > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), cfg.Burst)
	}
	switch cfg.AuthMode {
	case AuthBasic:
		c.auth = basicAuth{c: c}
	default:
		c.auth = newOAuth(c)
	}
	for _, o := range opts {
		o(c)
	}
	if c.newLimiter != nil && c.limiter != nil {
		c.limiter = c.newLimiter(cfg.RequestsPerSecond, cfg.Burst)
	}
	return c, nil
}

func (c *Client) now() time.Time { return c.cfg.Now() }

func tablePath(table string) string { return "/api/now/table/" + table }

func recordPath(table, sysID string) string {
	return "/api/now/table/" + table + "/" + url.PathEscape(sysID)
}

func (c *Client) checkTable(op, table string) *itsm.Error {
	if !tableName.MatchString(table) {
		return &itsm.Error{Op: op, Table: table, Kind: itsm.KindInvalid, Message: fmt.Sprintf("%q is not a table name", table)}
	}
	return nil
}

// checkQueryValue rejects values that would change the meaning of an
// encoded query (reference §3.1: ^ separates terms, "," separates IN
// values) or that ServiceNow cannot store in correlation_id (100
// characters).
func checkQueryValue(op, table, what, v string) *itsm.Error {
	switch {
	case v == "":
		return &itsm.Error{Op: op, Table: table, Kind: itsm.KindInvalid, Message: what + " is empty"}
	case len(v) > 100:
		return &itsm.Error{Op: op, Table: table, Kind: itsm.KindInvalid, Message: fmt.Sprintf("%s %q is longer than 100 characters", what, v)}
	case strings.ContainsAny(v, "^,\r\n\x00"):
		return &itsm.Error{Op: op, Table: table, Kind: itsm.KindInvalid, Message: fmt.Sprintf("%s %q contains '^', ',' or a line break", what, v)}
	}
	return nil
}

func readQuery(extra url.Values) url.Values {
	q := url.Values{
		"sysparm_exclude_reference_link": {"true"},
		"sysparm_fields":                 {ticketFields},
	}
	for k, v := range extra {
		q[k] = v
	}
	return q
}

// CreateTicket opens a record, idempotently on req.CorrelationID.
//
// Requests on the happy path: one POST when req.FirstAttempt is set,
// otherwise a correlation_id lookup and then the POST (plus one cached
// lookup per distinct user e-mail). A POST is never resent blindly: after
// an ambiguous failure (timeout, 5xx, 202, connection dropped after the
// request was written) the correlation ID is looked up first and the
// record found is returned (reference §2.6). A 429 or a connection that
// never carried the request is retried directly.
func (c *Client) CreateTicket(ctx context.Context, req itsm.CreateRequest) (*itsm.Ticket, error) {
	table := req.Table
	if table == "" {
		table = itsm.DefaultTable(req.Type)
	}
	if table == "" {
		return nil, &itsm.Error{Op: "create", Kind: itsm.KindInvalid, Message: fmt.Sprintf("unknown ticket type %q and no table", req.Type)}
	}
	if err := c.checkTable("create", table); err != nil {
		return nil, err
	}
	if err := checkQueryValue("create", table, "correlation ID", req.CorrelationID); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.ShortDescription) == "" {
		return nil, &itsm.Error{Op: "create", Table: table, Kind: itsm.KindInvalid, Message: "short description is empty"}
	}
	base := c.baseTable(table)

	body := make(map[string]string, len(req.Fields)+10)
	for k, v := range req.Fields {
		body[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			body[k] = v
		}
	}
	set("short_description", req.ShortDescription)
	set("description", req.Description)
	set("correlation_id", req.CorrelationID)
	set("correlation_display", req.CorrelationDisplay)
	set("impact", req.Impact)
	set("urgency", req.Urgency)
	if req.AssignedToEmail != "" {
		u, err := c.LookupUser(ctx, req.AssignedToEmail)
		if err != nil {
			return nil, withOp(err, "create", table, "assignee")
		}
		body["assigned_to"] = u.SysID
	}
	if f := callerField(base); f != "" && req.CallerEmail != "" {
		u, err := c.LookupUser(ctx, req.CallerEmail)
		if err != nil {
			return nil, withOp(err, "create", table, "caller")
		}
		body[f] = u.SysID
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, &itsm.Error{Op: "create", Table: table, Kind: itsm.KindInvalid, Message: "cannot encode the record", Err: err}
	}

	fill := func(t *itsm.Ticket) *itsm.Ticket {
		if t.AssignedToEmail == "" && t.AssignedToSysID != "" && t.AssignedToSysID == body["assigned_to"] {
			t.AssignedToEmail = req.AssignedToEmail
		}
		return t
	}
	if !req.FirstAttempt {
		t, err := c.findCorrelation(ctx, table, req.CorrelationID)
		if err != nil {
			return nil, err
		}
		if t != nil {
			c.log.InfoContext(ctx, "servicenow ticket already exists", slog.String("table", table), slog.String("number", t.Number))
			return c.withEmail(ctx, t)
		}
	}
	cl := call{op: "create", table: table, method: http.MethodPost, path: tablePath(table), body: payload,
		query: url.Values{"sysparm_exclude_reference_link": {"true"}, "sysparm_fields": {ticketFields}}}
	for attempt := 0; ; attempt++ {
		rep, ierr, ambiguous := c.send(ctx, cl)
		if ierr == nil {
			r, derr := c.decodeOne(cl, rep)
			if derr != nil {
				return nil, derr
			}
			t := fill(c.ticketFromRecord(table, r))
			c.log.InfoContext(ctx, "servicenow ticket created", slog.String("table", table), slog.String("number", t.Number))
			return c.withEmail(ctx, t)
		}
		if !ambiguous {
			return nil, ierr
		}
		c.log.WarnContext(ctx, "servicenow create outcome unknown, looking up its correlation ID",
			slog.String("table", table), slog.String("kind", string(ierr.Kind)), slog.Int("status", ierr.Status))
		if attempt >= c.cfg.MaxRetries {
			return nil, ierr
		}
		delay, ok := c.retryDelay(ctx, attempt, ierr)
		if !ok || !sleep(ctx, delay) {
			return nil, ierr
		}
		t, lerr := c.findCorrelation(ctx, table, req.CorrelationID)
		if lerr != nil {
			// Cannot tell whether the create happened: report the create's
			// failure; the next attempt (FirstAttempt false) looks up again.
			c.log.WarnContext(ctx, "servicenow correlation lookup after ambiguous create failed", slog.String("error", lerr.Error()))
			return nil, ierr
		}
		if t != nil {
			c.log.InfoContext(ctx, "servicenow ticket was created despite the failure", slog.String("table", table), slog.String("number", t.Number))
			return c.withEmail(ctx, fill(t))
		}
		c.metrics.retry(c.cfg.Name, table, string(ierr.Kind))
	}
}

// callerField is the field that names the person a ticket is for.
func callerField(base string) string {
	switch base {
	case "incident":
		return "caller_id"
	case "change_request":
		return "requested_by"
	}
	return ""
}

// withOp re-labels a lookup error with the operation it was part of.
func withOp(err error, op, table, what string) error {
	if e, ok := errors.AsType[*itsm.Error](err); ok {
		cp := *e
		cp.Op, cp.Table = op, table
		cp.Message = what + ": " + e.Message
		return &cp
	}
	return err
}

// findCorrelation returns the oldest record of table with correlation ID
// id, or nil.
func (c *Client) findCorrelation(ctx context.Context, table, id string) (*itsm.Ticket, *itsm.Error) {
	cl := call{op: "find", table: table, method: http.MethodGet, path: tablePath(table), idempotent: true,
		query: readQuery(url.Values{
			"sysparm_query":    {"correlation_id=" + id + "^ORDERBYsys_created_on^ORDERBYsys_id"},
			"sysparm_limit":    {"2"},
			"sysparm_no_count": {"true"},
		})}
	rep, err, _ := c.send(ctx, cl)
	if err != nil {
		return nil, err
	}
	recs, derr := c.decodeList(cl, rep)
	if derr != nil {
		return nil, derr
	}
	if len(recs) == 0 {
		return nil, nil
	}
	if len(recs) > 1 {
		c.log.WarnContext(ctx, "servicenow has several records with one correlation ID; using the oldest",
			slog.String("table", table), slog.String("correlation_id", id))
	}
	return c.ticketFromRecord(table, recs[0]), nil
}

// withEmail fills AssignedToEmail from the user cache when the instance
// did not dot-walk assigned_to.email.
func (c *Client) withEmail(ctx context.Context, t *itsm.Ticket) (*itsm.Ticket, error) {
	if t.AssignedToSysID == "" || t.AssignedToEmail != "" {
		return t, nil
	}
	u, err := c.LookupUser(ctx, t.AssignedToSysID)
	if err != nil {
		if itsm.IsKind(err, itsm.KindNotFound) {
			return t, nil // assignee deleted: the ticket is still valid
		}
		return nil, withOp(err, "get", t.Table, "assignee")
	}
	t.AssignedToEmail = u.Email
	return t, nil
}

// Ticket returns one record by sys_id.
func (c *Client) Ticket(ctx context.Context, ref itsm.Ref) (*itsm.Ticket, error) {
	if err := c.checkTable("get", ref.Table); err != nil {
		return nil, err
	}
	if ref.SysID == "" {
		return nil, &itsm.Error{Op: "get", Table: ref.Table, Kind: itsm.KindInvalid, Message: "sys_id is empty"}
	}
	cl := call{op: "get", table: ref.Table, method: http.MethodGet, path: recordPath(ref.Table, ref.SysID), idempotent: true, query: readQuery(nil)}
	rep, err, _ := c.send(ctx, cl)
	if err != nil {
		if err.Kind == itsm.KindNotFound {
			err.Message = fmt.Sprintf("%s record %s not found (deleted, or hidden by an ACL)", ref.Table, ref.SysID)
		}
		return nil, err
	}
	r, derr := c.decodeOne(cl, rep)
	if derr != nil {
		return nil, derr
	}
	return c.withEmail(ctx, c.ticketFromRecord(ref.Table, r))
}

// UpdateTicket applies upd in one PATCH. Resolving or closing an incident,
// and closing a change request, needs CloseCode and CloseNotes in the same
// update (the data policy of reference §5.1); a problem's close code goes
// to resolution_code, and cancelling a problem closes it with
// resolution_code "canceled" (§5.2). After a state change the returned
// state is compared with the requested one (§5.2, §5.3).
func (c *Client) UpdateTicket(ctx context.Context, ref itsm.Ref, upd itsm.TicketUpdate) (*itsm.Ticket, error) {
	if err := c.checkTable("update", ref.Table); err != nil {
		return nil, err
	}
	if ref.SysID == "" {
		return nil, &itsm.Error{Op: "update", Table: ref.Table, Kind: itsm.KindInvalid, Message: "sys_id is empty"}
	}
	base := c.baseTable(ref.Table)
	invalid := func(format string, args ...any) error {
		return &itsm.Error{Op: "update", Table: ref.Table, Kind: itsm.KindInvalid, Message: fmt.Sprintf(format, args...)}
	}
	body := map[string]string{}
	closeCodeField := "close_code"
	if base == "problem" {
		closeCodeField = "resolution_code"
	}
	if upd.CloseCode != nil {
		body[closeCodeField] = *upd.CloseCode
	}
	if upd.CloseNotes != nil {
		body["close_notes"] = *upd.CloseNotes
	}
	if upd.WorkNote != nil && *upd.WorkNote != "" {
		body["work_notes"] = *upd.WorkNote
	}
	if base == "problem" && upd.CauseNotes != nil {
		body["cause_notes"] = *upd.CauseNotes
	}
	if base == "problem" && upd.FixNotes != nil {
		body["fix_notes"] = *upd.FixNotes
	}
	wantRaw := ""
	if upd.State != nil {
		raw, err := itsm.RawState(base, *upd.State)
		if err != nil {
			return nil, invalid("%s", steward.ErrorMessage(err))
		}
		wantRaw = raw
		body["state"] = raw
		closing := *upd.State == steward.TicketResolved || *upd.State == steward.TicketClosed
		needClose := (base == "incident" && closing) || (base == "change_request" && *upd.State == steward.TicketClosed)
		if needClose && (upd.CloseCode == nil || *upd.CloseCode == "" || upd.CloseNotes == nil || *upd.CloseNotes == "") {
			return nil, invalid("setting a %s to %s needs a close code and close notes in the same update (data policy, reference §5)", base, *upd.State)
		}
		if base == "problem" && *upd.State == steward.TicketCanceled && upd.CloseCode == nil {
			body["resolution_code"] = "canceled"
		}
	}
	if upd.AssignedToEmail != nil {
		if *upd.AssignedToEmail == "" {
			body["assigned_to"] = ""
		} else {
			u, err := c.LookupUser(ctx, *upd.AssignedToEmail)
			if err != nil {
				return nil, withOp(err, "update", ref.Table, "assignee")
			}
			body["assigned_to"] = u.SysID
		}
	}
	if len(body) == 0 {
		return c.Ticket(ctx, ref)
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, invalid("cannot encode the update: %v", err)
	}
	// PATCH sets fields, so resending it is harmless; only a work note
	// could be appended twice after an ambiguous failure, which is
	// preferable to losing the update.
	cl := call{op: "update", table: ref.Table, method: http.MethodPatch, path: recordPath(ref.Table, ref.SysID),
		body: payload, idempotent: true, query: readQuery(nil)}
	rep, ierr, _ := c.send(ctx, cl)
	if ierr != nil {
		if ierr.Kind == itsm.KindNotFound {
			ierr.Message = fmt.Sprintf("%s record %s not found (deleted, or hidden by an ACL)", ref.Table, ref.SysID)
		}
		return nil, ierr
	}
	r, derr := c.decodeOne(cl, rep)
	if derr != nil {
		return nil, derr
	}
	t := c.ticketFromRecord(ref.Table, r)
	if wantRaw != "" && t.RawState != wantRaw {
		return nil, &itsm.Error{Op: "update", Table: ref.Table, Status: rep.status, TransactionID: rep.header.Get("X-Transaction-ID"),
			Kind: itsm.KindTransitionRefused,
			Message: fmt.Sprintf("ServiceNow kept %s %s in state %s instead of %s: its state model refused the transition (approvals or mandatory steps pending); the other fields were updated",
				ref.Table, t.Number, stateText(base, t.RawState), stateText(base, wantRaw))}
	}
	if upd.AssignedToEmail != nil && t.AssignedToEmail == "" && t.AssignedToSysID == body["assigned_to"] {
		t.AssignedToEmail = *upd.AssignedToEmail
	}
	return c.withEmail(ctx, t)
}

func stateText(table, raw string) string {
	if l := itsm.StateLabel(table, raw); l != "" {
		return fmt.Sprintf("%s (%s)", l, raw)
	}
	return fmt.Sprintf("%q", raw)
}

// batchSize bounds the values of one IN query, keeping URLs short.
const batchSize = 100

// Tickets returns the records of table with the given sys_ids.
func (c *Client) Tickets(ctx context.Context, table string, sysIDs []string) ([]*itsm.Ticket, error) {
	for _, id := range sysIDs {
		if err := checkQueryValue("list", table, "sys_id", id); err != nil {
			return nil, err
		}
	}
	return c.batch(ctx, table, "sys_id", sysIDs)
}

// FindByCorrelationIDs returns the records of table whose correlation ID
// is one of ids.
func (c *Client) FindByCorrelationIDs(ctx context.Context, table string, ids []string) ([]*itsm.Ticket, error) {
	for _, id := range ids {
		if err := checkQueryValue("list", table, "correlation ID", id); err != nil {
			return nil, err
		}
	}
	return c.batch(ctx, table, "correlation_id", ids)
}

func (c *Client) batch(ctx context.Context, table, field string, values []string) ([]*itsm.Ticket, error) {
	if err := c.checkTable("list", table); err != nil {
		return nil, err
	}
	values = slices.Compact(slices.Sorted(slices.Values(values)))
	var out []*itsm.Ticket
	seen := map[string]bool{}
	for chunk := range slices.Chunk(values, batchSize) {
		cl := call{op: "list", table: table, method: http.MethodGet, path: tablePath(table), idempotent: true,
			query: readQuery(url.Values{"sysparm_query": {field + "IN" + strings.Join(chunk, ",") + "^ORDERBYsys_id"}})}
		err := c.list(ctx, cl, func(r record) error {
			t := c.ticketFromRecord(table, r)
			if !seen[t.SysID] {
				seen[t.SysID] = true
				out = append(out, t)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for i, t := range out {
		t, err := c.withEmail(ctx, t)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

// ChangedSince yields the records of table updated at or after since.
//
// Pages are read by keyset, not by offset: each page asks for records
// after the last one seen in (sys_updated_on, sys_id) order. Offset paging
// over a result ordered by update time skips records when one already
// read is updated meanwhile (it moves to the end and every later record
// shifts one place forward); keyset paging cannot skip, it can only yield
// an updated record again. X-Total-Count ends the loop without an extra
// empty page when the rest fits in one page; a page that ACLs emptied
// entirely is stepped over by offset (reference §2.5).
func (c *Client) ChangedSince(ctx context.Context, table string, since time.Time, correlationPrefix string) iter.Seq2[*itsm.Ticket, error] {
	return func(yield func(*itsm.Ticket, error) bool) {
		if err := c.checkTable("list changes", table); err != nil {
			yield(nil, err)
			return
		}
		if correlationPrefix != "" {
			if err := checkQueryValue("list changes", table, "correlation prefix", correlationPrefix); err != nil {
				yield(nil, err)
				return
			}
		}
		filter := ""
		if correlationPrefix != "" {
			filter = "^correlation_idSTARTSWITH" + correlationPrefix
		}
		const order = "^ORDERBYsys_updated_on^ORDERBYsys_id"
		query := "sys_updated_on>=" + since.UTC().Format(timeLayout) + filter + order
		limit := c.cfg.PageSize
		offset := 0
		for {
			cl := call{op: "list changes", table: table, method: http.MethodGet, path: tablePath(table), idempotent: true,
				query: readQuery(url.Values{
					"sysparm_query":  {query},
					"sysparm_limit":  {fmt.Sprint(limit)},
					"sysparm_offset": {fmt.Sprint(offset)},
				})}
			rep, err, _ := c.send(ctx, cl)
			if err != nil {
				yield(nil, err)
				return
			}
			recs, derr := c.decodeList(cl, rep)
			if derr != nil {
				yield(nil, derr)
				return
			}
			for _, r := range recs {
				t, err := c.withEmail(ctx, c.ticketFromRecord(table, r))
				if !yield(t, err) || err != nil {
					return
				}
			}
			total, hasTotal := totalCount(rep)
			switch {
			case hasTotal && offset+limit >= total:
				return
			case len(recs) == 0 && (!hasTotal || offset+limit >= total):
				return
			case len(recs) == 0:
				offset += limit // a page ACLs emptied: step over it
			default:
				last := recs[len(recs)-1]
				ts, id := last.get("sys_updated_on"), last.get("sys_id")
				query = "sys_updated_on>" + ts + filter + "^NQsys_updated_on=" + ts + "^sys_id>" + id + filter + order
				offset = 0
			}
		}
	}
}

// LookupUser resolves a user by e-mail (active users only, limit 2 to
// detect duplicates, reference §6) or by sys_id, caching results for
// Config.UserCacheTTL.
func (c *Client) LookupUser(ctx context.Context, emailOrSysID string) (*itsm.User, error) {
	key := strings.TrimSpace(emailOrSysID)
	byEmail := strings.Contains(key, "@")
	if err := checkQueryValue("lookup user", "sys_user", "user", key); err != nil {
		return nil, err
	}
	cacheKey := "id:" + key
	if byEmail {
		cacheKey = "email:" + strings.ToLower(key)
	}
	if u := c.cachedUser(cacheKey); u != nil {
		return u, nil
	}
	// Concurrent workers assigning tickets to the same owner share one
	// request instead of each missing the cache at once.
	v, err, _ := c.userFlight.Do(cacheKey, func() (any, error) {
		u, err := c.fetchUser(ctx, key, byEmail)
		if err != nil {
			return nil, err
		}
		c.cacheUser(u)
		return u, nil
	})
	if err != nil {
		return nil, err
	}
	u := *v.(*itsm.User) // each caller gets its own copy, as from the cache
	return &u, nil
}

// fetchUser reads one user from the instance.
func (c *Client) fetchUser(ctx context.Context, key string, byEmail bool) (*itsm.User, error) {
	var u *itsm.User
	if byEmail {
		cl := call{op: "lookup user", table: "sys_user", method: http.MethodGet, path: tablePath("sys_user"), idempotent: true,
			query: url.Values{
				"sysparm_query":                  {"email=" + key + "^active=true^ORDERBYsys_id"},
				"sysparm_fields":                 {userFields},
				"sysparm_limit":                  {"2"},
				"sysparm_no_count":               {"true"},
				"sysparm_exclude_reference_link": {"true"},
			}}
		rep, err, _ := c.send(ctx, cl)
		if err != nil {
			return nil, err
		}
		recs, derr := c.decodeList(cl, rep)
		if derr != nil {
			return nil, derr
		}
		switch len(recs) {
		case 0:
			return nil, &itsm.Error{Op: "lookup user", Table: "sys_user", Kind: itsm.KindNotFound,
				Message: fmt.Sprintf("no active ServiceNow user has the e-mail address %s", key)}
		case 1:
			u = userFromRecord(recs[0])
			if !recs[0].has("active") {
				u.Active = true // the query asked for active users
			}
		default:
			return nil, &itsm.Error{Op: "lookup user", Table: "sys_user", Kind: itsm.KindAmbiguous,
				Message: fmt.Sprintf("several active ServiceNow users have the e-mail address %s (sys_ids %s, %s): make it unique in ServiceNow",
					key, recs[0].get("sys_id"), recs[1].get("sys_id"))}
		}
	} else {
		cl := call{op: "lookup user", table: "sys_user", method: http.MethodGet, path: recordPath("sys_user", key), idempotent: true,
			query: url.Values{"sysparm_fields": {userFields}, "sysparm_exclude_reference_link": {"true"}}}
		rep, err, _ := c.send(ctx, cl)
		if err != nil {
			if err.Kind == itsm.KindNotFound {
				err.Message = fmt.Sprintf("no ServiceNow user has the sys_id %s", key)
			}
			return nil, err
		}
		r, derr := c.decodeOne(cl, rep)
		if derr != nil {
			return nil, derr
		}
		u = userFromRecord(r)
	}
	return u, nil
}

func (c *Client) cachedUser(key string) *itsm.User {
	if c.cfg.UserCacheTTL < 0 {
		return nil
	}
	c.usersMu.Lock()
	defer c.usersMu.Unlock()
	e, ok := c.users[key]
	if !ok || !c.now().Before(e.expires) {
		delete(c.users, key)
		return nil
	}
	u := *e.user
	return &u
}

func (c *Client) cacheUser(u *itsm.User) {
	if c.cfg.UserCacheTTL < 0 || u.SysID == "" {
		return
	}
	cp := *u
	e := userEntry{user: &cp, expires: c.now().Add(c.cfg.UserCacheTTL)}
	c.usersMu.Lock()
	defer c.usersMu.Unlock()
	if len(c.users) > 10000 { // bound memory; a full reset is cheap
		clear(c.users)
	}
	c.users["id:"+u.SysID] = e
	if u.Email != "" && u.Active {
		c.users["email:"+strings.ToLower(u.Email)] = e
	}
}
