package scc

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	securitycenter "cloud.google.com/go/securitycenter/apiv2"
	"cloud.google.com/go/securitycenter/apiv2/securitycenterpb"
	"github.com/googleapis/gax-go/v2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/httpretry"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/source/pull"
)

// Settings configure an SCC source (kind "scc").
//
// Pull contract for SCC: the source lists the findings of Parent (all SCC
// sources, location global) whose state is ACTIVE, 1,000 a page. Each GCP
// project a finding belongs to is a unit (ID the project ID, scope
// /gcp/projects/<project ID>); resources outside any project (an
// organization) make a unit "organizations/<number>" with scope
// /gcp/organizations/<number>. Every unit is Done only when the whole
// listing completed: the listing is not ordered by project, so any project
// may still have findings on the next page. A page that fails (past the
// retries) ends every unit seen so far with Failed; projects not seen yet
// get no unit, so nothing of theirs is marked gone.
//
// Inactive findings are not listed: a finding that turned INACTIVE since
// the last pull is gone from its project's unit and the runner marks it
// Healthy. A project whose last active finding was fixed no longer appears
// at all; list it in Projects (or make it the Parent) so that it is a unit
// on every pull and its findings are marked gone.
type Settings struct {
	// Parent is what to list: "organizations/<number>", "folders/<number>"
	// or "projects/<project ID>", optionally with "/sources/<id or ->" and
	// "/locations/<location>". The short forms mean all sources in location
	// global ("organizations/123/sources/-/locations/global").
	Parent string `json:"parent"`
	// Projects, when set, keeps only findings of these project IDs, and
	// makes each of them a unit on every pull, found or not.
	Projects []string `json:"projects,omitempty"`
	// Filter is an SCC filter expression (e.g. `category="OPEN_FIREWALL"`)
	// ANDed with state="ACTIVE". It narrows the pull, so its units end
	// Failed and nothing is marked gone.
	Filter string `json:"filter,omitempty"`
	// Endpoint overrides the SCC API endpoint for a local test server. It
	// is accepted only with Local: true and a loopback host.
	Endpoint string `json:"endpoint,omitempty"`
	Local    bool   `json:"local,omitempty"`
}

// Secrets are the sealed credentials of an SCC source.
type Secrets struct {
	// CredentialsJSON is a service account key file (JSON). Without it the
	// source uses Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS,
	// gcloud's application-default login, or the metadata server of the
	// machine Steward runs on (GCE, GKE workload identity, Cloud Run).
	CredentialsJSON secret.String `json:"credentials_json"`
}

// Scope is the OAuth scope the source asks for.
const Scope = "https://www.googleapis.com/auth/cloud-platform"

var (
	parentRE  = regexp.MustCompile(`^(organizations|folders|projects)/([a-z0-9][a-z0-9.:-]*)(/sources/(-|[0-9]+))?(/locations/([a-z0-9-]+))?$`)
	projectRE = regexp.MustCompile(`^([a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
)

// Validate checks the settings and normalizes them; errors name the field.
func (s *Settings) Validate() error {
	s.Parent = strings.Trim(strings.TrimSpace(s.Parent), "/")
	m := parentRE.FindStringSubmatch(s.Parent)
	if m == nil {
		return steward.InvalidAt("parent", "parent %q is not organizations/<number>, folders/<number> or projects/<project ID> (optionally followed by /sources/<id or -> and /locations/<location>)", s.Parent)
	}
	if m[1] != "projects" && strings.Trim(m[2], "0123456789") != "" {
		return steward.InvalidAt("parent", "parent %q: an organization or folder is named by its number", s.Parent)
	}
	parent := m[1] + "/" + m[2]
	src, loc := m[4], m[6]
	if src == "" {
		src = "-"
	}
	if loc == "" {
		loc = "global"
	}
	s.Parent = parent + "/sources/" + src + "/locations/" + loc
	seen := map[string]bool{}
	out := s.Projects[:0:0]
	for _, p := range s.Projects {
		p = strings.TrimSpace(p)
		if !projectRE.MatchString(p) {
			return steward.InvalidAt("projects", "projects: %q is not a project ID (6 to 30 lower-case letters, digits and hyphens)", p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	s.Projects = out
	s.Filter = strings.TrimSpace(s.Filter)
	if len(s.Filter) > 4096 {
		return steward.InvalidAt("filter", "filter is longer than 4096 characters")
	}
	if err := pull.CheckEndpoint(s.Endpoint, s.Local, "Google Cloud"); err != nil {
		return err
	}
	// The REST client takes a host; a path would be dropped silently.
	if u, err := url.Parse(strings.TrimSpace(s.Endpoint)); err == nil && strings.Trim(u.Path, "/") != "" {
		return steward.InvalidAt("endpoint", "endpoint must not carry a path (a local test server's base URL, like http://127.0.0.1:8443)")
	}
	return nil
}

// project is the project ID of a "projects/<id>/..." parent, "" otherwise.
func (s *Settings) project() string {
	if rest, ok := strings.CutPrefix(s.Parent, "projects/"); ok {
		p, _, _ := strings.Cut(rest, "/")
		return p
	}
	return ""
}

// Validate checks the secrets: a key, when given, is a service account key.
func (s Secrets) Validate(settings Settings) error {
	if s.CredentialsJSON.IsZero() {
		return nil
	}
	key := []byte(s.CredentialsJSON.Reveal())
	if _, err := google.CredentialsFromJSONWithType(context.Background(), key, google.ServiceAccount, Scope); err != nil {
		// The parse error may quote the input: do not pass it on.
		return steward.InvalidAt("credentials_json", "credentials_json is not a service account key file (JSON with \"type\": \"service_account\")")
	}
	cfg, err := google.JWTConfigFromJSON(key, Scope)
	if err != nil || cfg.Email == "" || cfg.TokenURL == "" {
		return steward.InvalidAt("credentials_json", "credentials_json lacks client_email or token_uri")
	}
	if !validPrivateKey(cfg.PrivateKey) {
		return steward.InvalidAt("credentials_json", "credentials_json: private_key is not a PEM-encoded RSA private key")
	}
	return nil
}

// validPrivateKey reports whether b is a PEM RSA key in PKCS#8 or PKCS#1,
// the forms Google's key files use.
func validPrivateKey(b []byte) bool {
	block, _ := pem.Decode(b)
	if block == nil {
		return false
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		_, ok := k.(*rsa.PrivateKey)
		return ok
	}
	_, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	return err == nil
}

// Retry policy: 429 and 5xx answers and network errors are retried up to
// maxAttempts attempts in all, waiting what Retry-After says (seconds or an
// HTTP date) or else exponential backoff from 1 s up to maxBackoff; a
// Retry-After longer than maxRetryAfter is not waited for and the page
// fails as unavailable.
const (
	maxAttempts   = 5
	maxBackoff    = 20 * time.Second
	maxRetryAfter = 60 * time.Second
	pageSize      = 1000 // ListFindings' maximum
)

type puller struct {
	settings Settings
	secrets  Secrets
	env      pull.Env
	logger   *slog.Logger
	// backoff, when set (tests), replaces the exponential backoff used when
	// an answer carries no Retry-After.
	backoff func(attempt int) time.Duration
}

// New returns a Puller for the settings and credentials.
func New(s Settings, sec Secrets, env pull.Env) (pull.Puller, error) {
	return newPuller(s, sec, env)
}

func newPuller(s Settings, sec Secrets, env pull.Env) (*puller, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := sec.Validate(s); err != nil {
		return nil, err
	}
	if env.HTTPClient == nil {
		env.HTTPClient = http.DefaultClient
	}
	p := &puller{settings: s, secrets: sec, env: env, logger: env.Logger}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// tokenSource returns the OAuth token source of the credentials; the token
// requests go through the Env's HTTP client too.
func (p *puller) tokenSource(ctx context.Context) (oauth2.TokenSource, error) {
	ctx = context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, p.env.HTTPClient)
	if !p.secrets.CredentialsJSON.IsZero() {
		creds, err := google.CredentialsFromJSONWithType(ctx, []byte(p.secrets.CredentialsJSON.Reveal()), google.ServiceAccount, Scope)
		if err != nil {
			return nil, steward.AtField("credentials_json", steward.Errorf(steward.CodeInvalid, "scc source: credentials_json is not a service account key file"))
		}
		return creds.TokenSource, nil
	}
	creds, err := google.FindDefaultCredentials(ctx, Scope)
	if err != nil {
		return nil, steward.Errorf(steward.CodeUnauthorized, "scc source: no credentials_json and no Application Default Credentials found (set GOOGLE_APPLICATION_CREDENTIALS, run on GCP with a service account, or give a service account key)")
	}
	return creds.TokenSource, nil
}

func (p *puller) client(ctx context.Context) (*securitycenter.Client, error) {
	ts, err := p.tokenSource(ctx)
	if err != nil {
		return nil, err
	}
	hc := *p.env.HTTPClient
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, ts), Base: base}
	opts := []option.ClientOption{option.WithHTTPClient(&hc)}
	if p.settings.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(strings.TrimRight(p.settings.Endpoint, "/")))
	}
	c, err := securitycenter.NewRESTClient(ctx, opts...)
	if err != nil {
		return nil, steward.WrapError(steward.CodeInternal, err, "scc source: cannot set up the Security Command Center client")
	}
	return c, nil
}

// Pull lists the findings and reports them per project (see Settings).
func (p *puller) Pull(ctx context.Context, sink pull.Sink) error {
	c, err := p.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	units := map[string]pull.Unit{}
	var order []string
	addUnit := func(where Container) pull.Unit {
		if u, ok := units[where.ID]; ok {
			return u
		}
		u := pull.Unit{ID: where.ID, Scope: where.Scope}
		units[where.ID] = u
		order = append(order, where.ID)
		return u
	}
	for _, proj := range p.settings.Projects {
		addUnit(Container{ID: proj, Scope: steward.Scope("/gcp/projects/" + seg(proj))})
	}
	if proj := p.settings.project(); proj != "" && len(p.settings.Projects) == 0 && projectRE.MatchString(proj) {
		addUnit(Container{ID: proj, Scope: steward.Scope("/gcp/projects/" + seg(proj))})
	}
	known := len(units)

	filter := `state="ACTIVE"`
	if p.settings.Filter != "" {
		filter += " AND (" + p.settings.Filter + ")"
	}
	req := &securitycenterpb.ListFindingsRequest{Parent: p.settings.Parent, Filter: filter, PageSize: pageSize}
	it := c.ListFindings(ctx, req, gax.WithRetry(func() gax.Retryer { return &retryer{backoff: p.backoff} }))
	it.PageInfo().MaxSize = pageSize
	skipped := 0
	// page counts the answers read (Response changes with each page), so
	// errors name the page that failed.
	page, i := 0, 0
	var last any
	fail := func(e *steward.Error) error {
		if len(order) == 0 {
			return e
		}
		for _, id := range order {
			sink.Failed(ctx, units[id], e)
		}
		return nil
	}
	for {
		r, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e, credential := p.apiError(err, page+1)
			if credential && page == 0 && len(units) == known {
				return e
			}
			return fail(e)
		}
		if it.Response != last {
			last, page, i = it.Response, page+1, 0
		}
		i++
		obs, where, skip, err := Map(r)
		if err != nil {
			return fail(steward.WrapError(steward.CodeInvalid, err, "scc source: ListFindings %s, page %d, finding %d (%s): %s",
				p.settings.Parent, page, i, r.GetFinding().GetName(), steward.ErrorMessage(err)))
		}
		if skip || (len(p.settings.Projects) > 0 && !slices.Contains(p.settings.Projects, where.ID)) {
			skipped++
			continue
		}
		if err := sink.Observe(ctx, addUnit(where), obs); err != nil {
			return err
		}
	}
	if skipped > 0 {
		p.logger.InfoContext(ctx, "scc source: findings skipped (not GCP, or a project not in projects)", "count", skipped, "parent", p.settings.Parent)
	}
	for _, id := range order {
		if p.settings.Filter != "" {
			sink.Failed(ctx, units[id], steward.Errorf(steward.CodeInvalid,
				"scc source: the filter narrows the pull (a finding that leaves it may still be active), so nothing is marked gone in %s; remove the filter to have gone findings marked Healthy", id))
			continue
		}
		if err := sink.Done(ctx, units[id]); err != nil {
			return err
		}
	}
	return nil
}

// apiError turns a ListFindings failure into a user-safe error naming the
// request and page. credential says Google refused the credentials.
func (p *puller) apiError(err error, page int) (e *steward.Error, credential bool) {
	what := fmt.Sprintf("ListFindings %s, page %d", p.settings.Parent, page)
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		code := tokenErrorCode(re)
		return steward.WrapError(steward.CodeUnauthorized, errors.New(code),
			"scc source: Google refused the credentials (token endpoint: %s) before %s; check the service account key, which may have been deleted or disabled", code, what), true
	}
	if ge, ok := errors.AsType[*googleapi.Error](err); ok {
		msg := firstLine(ge.Message)
		cause := fmt.Errorf("HTTP %d: %s", ge.Code, msg)
		switch {
		case ge.Code == http.StatusUnauthorized:
			return steward.WrapError(steward.CodeUnauthorized, cause,
				"scc source: Security Command Center refused the credentials (HTTP 401) for %s; the key or token may have expired", what), true
		case ge.Code == http.StatusForbidden:
			return steward.WrapError(steward.CodeForbidden, cause,
				"scc source: the service account may not read %s (HTTP 403: %s); it needs roles/securitycenter.findingsViewer on the parent", what, msg), true
		case ge.Code == http.StatusTooManyRequests || ge.Code >= 500:
			return steward.WrapError(steward.CodeUnavailable, cause,
				"scc source: Security Command Center did not answer %s (HTTP %d) after %d attempts", what, ge.Code, maxAttempts), false
		}
		return steward.WrapError(steward.CodeInvalid, cause, "scc source: Security Command Center refused %s (HTTP %d: %s)", what, ge.Code, msg), false
	}
	if isNetError(err) {
		return steward.WrapError(steward.CodeUnavailable, errors.New(firstLine(err.Error())), "scc source: %s failed after %d attempts: %s", what, maxAttempts, firstLine(err.Error())), false
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		// The request was not sent: e.g. the token could not be signed.
		return steward.WrapError(steward.CodeInvalid, errors.New(firstLine(err.Error())), "scc source: cannot send %s: %s", what, firstLine(err.Error())), false
	}
	// Not an HTTP error nor a network one: the answer could not be read as
	// a ListFindingsResponse.
	return steward.WrapError(steward.CodeInvalid, errors.New(firstLine(err.Error())), "scc source: the answer to %s is not a ListFindingsResponse: %s", what, firstLine(err.Error())), false
}

// tokenErrorCode names why the token endpoint refused: its OAuth "error"
// (and "error_description"), else the HTTP status. The JWT flow leaves
// RetrieveError.ErrorCode empty, so the body is read here; it holds
// Google's answer, never the key.
func tokenErrorCode(re *oauth2.RetrieveError) string {
	code, desc := re.ErrorCode, re.ErrorDescription
	if code == "" {
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(re.Body, &body) == nil {
			code, desc = body.Error, body.Description
		}
	}
	if code == "" && re.Response != nil {
		code = re.Response.Status
	}
	if desc != "" {
		code += ": " + firstLine(desc)
	}
	return code
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// retryer retries throttling, 5xx answers and network errors (see the
// retry policy constants).
type retryer struct {
	attempt int
	backoff func(attempt int) time.Duration
}

func (r *retryer) Retry(err error) (time.Duration, bool) {
	r.attempt++
	if r.attempt >= maxAttempts {
		return 0, false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0, false
	}
	if _, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		return 0, false
	}
	if ge, ok := errors.AsType[*googleapi.Error](err); ok {
		if ge.Code != http.StatusTooManyRequests && ge.Code < 500 {
			return 0, false
		}
		if d, ok := retryAfter(ge.Header, time.Now()); ok {
			if d > maxRetryAfter {
				return 0, false
			}
			return d, true
		}
	} else if !isNetError(err) {
		return 0, false
	}
	if r.backoff != nil {
		return r.backoff(r.attempt), true
	}
	return min(time.Second<<(r.attempt-1), maxBackoff), true
}

// isNetError reports a network failure (refused, reset, timed out), looking
// through the *url.Error the HTTP client wraps every error in (which is a
// net.Error itself, whatever it wraps).
func isNetError(err error) bool {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	_, ok := errors.AsType[net.Error](err)
	return ok || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// retryAfter reads an answer's Retry-After header.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	return httpretry.RetryAfter(h.Get("Retry-After"), now)
}
