// Package api serves Steward's JSON API under /api/v1, its OpenAPI document
// and the health endpoints. Every failure answers with one JSON shape,
// {"error":{"code":"...","message":"..."}}, its status taken from one
// code→status table.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/collector"
	"github.com/stewardhq/steward/internal/ingest"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/logthrottle"
	"github.com/stewardhq/steward/internal/notify"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// Config holds the API's limits and places. Zero values take the defaults.
type Config struct {
	// SpoolDir holds uploaded import files until their job has applied them.
	SpoolDir string
	// MaxBodyBytes bounds JSON request bodies (default 16 MiB), including
	// POST /api/v1/assessments batches.
	MaxBodyBytes int64
	// MaxImportBytes bounds one uploaded import file (default 4 GiB).
	MaxImportBytes int64
	// UploadMinRate and UploadRateWindow: an upload must average at least
	// UploadMinRate bytes per second over every UploadRateWindow (defaults
	// 1 KiB/s over 10 s), or it is cut off.
	UploadMinRate    int64
	UploadRateWindow time.Duration
	// PublicURL, when set, is Steward's base URL as ServiceNow and users
	// reach it (STEWARD_PUBLIC_URL); otherwise URLs Steward shows, such as
	// an integration's webhook URL, follow the request's host.
	PublicURL string
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 16 << 20
	}
	if c.MaxImportBytes <= 0 {
		c.MaxImportBytes = 4 << 30
	}
}

// Deps are the services the API calls.
type Deps struct {
	DB       *store.DB
	Ingester *ingest.Ingester
	Queue    *jobs.Queue
	Tickets  *ticketsync.Service
	// Sources manages and runs live sources (nil: the sources routes
	// answer unavailable).
	Sources *collector.Service
	// Notify plans, previews and sends e-mail notifications (nil: the
	// notification routes answer unavailable).
	Notify *notify.Service
	// Auth authenticates every route that is not public.
	Auth *auth.Authenticator
	// Metrics serves /metrics (Prometheus); nil answers 404.
	Metrics http.Handler
}

// API is the HTTP API. It is safe for concurrent use.
type API struct {
	cfg     Config
	db      *store.DB
	ingest  *ingest.Ingester
	queue   *jobs.Queue
	tickets *ticketsync.Service
	sources *collector.Service
	notify  *notify.Service
	auth    *auth.Authenticator
	prom    http.Handler
	logger  *slog.Logger
	metrics *metrics
	now     func() time.Time
	mux     *http.ServeMux
	routes  []route
	// refusalLog bounds the "webhook refused" log lines per integration.
	refusalLog *logthrottle.Limiter
}

// access is who may call a route (auth.Access): a positional field of
// route, so a route that does not say does not compile.
type access = auth.Access

var (
	public        = auth.Public
	reader        = auth.Reader
	contributor   = auth.Contributor
	securityAdmin = auth.SecurityAdmin
	owner         = auth.Owner
)

// standardMethods are the methods a known path answers 405 to when its
// routes do not take them.
var standardMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace}

// route is one endpoint; the table drives the mux, authorization, and the
// OpenAPI and route × role tests.
type route struct {
	Method  string
	Pattern string
	Access  access
	Handler func(w http.ResponseWriter, r *http.Request) error
}

// New builds the API. reg receives the HTTP metrics.
func New(cfg Config, deps Deps, logger *slog.Logger, reg prometheus.Registerer) *API {
	cfg.setDefaults()
	a := &API{cfg: cfg, db: deps.DB, ingest: deps.Ingester, queue: deps.Queue, tickets: deps.Tickets, sources: deps.Sources, notify: deps.Notify,
		auth: deps.Auth, prom: deps.Metrics, refusalLog: logthrottle.New(5, time.Minute),
		logger: logger, metrics: newMetrics(reg), now: func() time.Time { return time.Now().UTC() }}
	a.routes = []route{
		{"GET", "/{$}", public, a.root},
		{"GET", "/healthz", public, a.healthz},
		{"GET", "/readyz", public, a.readyz},
		{"GET", "/api/openapi.json", public, a.openAPI},
		{"GET", "/metrics", reader, a.servePrometheus},

		{"GET", "/api/v1/me", reader, a.me},
		{"GET", "/api/v1/overview", reader, a.overview},
		{"GET", "/api/v1/reports/governance", reader, a.governanceReport},
		{"POST", "/api/v1/tokens", owner, a.createToken},
		{"GET", "/api/v1/tokens", owner, a.listTokens},
		{"DELETE", "/api/v1/tokens/{id}", owner, a.revokeToken},

		{"POST", "/api/v1/assessments", contributor, a.postAssessments},
		{"GET", "/api/v1/assessments", reader, a.listAssessments},
		{"GET", "/api/v1/assessments/{id}", reader, a.getAssessment},

		{"POST", "/api/v1/imports", contributor, a.postImport},
		{"GET", "/api/v1/imports", reader, a.listImports},
		{"GET", "/api/v1/imports/{id}", reader, a.getImport},

		{"GET", "/api/v1/recommendations", reader, a.listRecommendations},
		{"GET", "/api/v1/recommendations/{key}", reader, a.getRecommendation},

		{"GET", "/api/v1/resources", reader, a.listResources},
		{"GET", "/api/v1/resources/{id...}", reader, a.getResource},

		{"POST", "/api/v1/assignments", contributor, a.createAssignment},
		{"GET", "/api/v1/assignments", reader, a.listAssignments},
		{"GET", "/api/v1/assignments/{id}", reader, a.getAssignment},
		{"PATCH", "/api/v1/assignments/{id}", contributor, a.updateAssignment},
		{"DELETE", "/api/v1/assignments/{id}", contributor, a.deleteAssignment},
		{"GET", "/api/v1/assignments/{id}/history", reader, a.assignmentHistory},
		{"POST", "/api/v1/assignments/{id}/ticket/retry", contributor, a.retryTicket},

		{"POST", "/api/v1/integrations", securityAdmin, a.createIntegration},
		{"GET", "/api/v1/integrations", reader, a.listIntegrations},
		{"GET", "/api/v1/integrations/{id}", reader, a.getIntegration},
		{"PATCH", "/api/v1/integrations/{id}", securityAdmin, a.updateIntegration},
		{"DELETE", "/api/v1/integrations/{id}", securityAdmin, a.deleteIntegration},
		{"GET", "/api/v1/integrations/{id}/delete-preview", reader, a.integrationDeletePreview},
		{"POST", "/api/v1/integrations/{id}/validate", securityAdmin, a.validateIntegration},
		{"POST", "/api/v1/integrations/{id}/events", public, a.postEvent},
		{"GET", "/api/v1/integrations/{id}/sync", reader, a.getSync},
		{"POST", "/api/v1/integrations/{id}/sync", securityAdmin, a.postSync},

		{"GET", "/api/v1/rules", reader, a.listRules},
		{"POST", "/api/v1/rules", securityAdmin, a.createRule},
		{"GET", "/api/v1/rules/{id}", reader, a.getRule},
		{"PUT", "/api/v1/rules/{id}", securityAdmin, a.putRule},
		{"PATCH", "/api/v1/rules/{id}", securityAdmin, a.patchRule},
		{"DELETE", "/api/v1/rules/{id}", securityAdmin, a.deleteRule},
		{"POST", "/api/v1/rules/{id}/run", securityAdmin, a.runRule},
		{"GET", "/api/v1/rules/{id}/runs", reader, a.listRuleRuns},
		{"GET", "/api/v1/rules/{id}/runs/{run}", reader, a.getRuleRun},
		{"POST", "/api/v1/ruleset/plan", reader, a.planRules},
		{"POST", "/api/v1/ruleset/apply", securityAdmin, a.applyRules},
		{"GET", "/api/v1/scope-tags", reader, a.listScopeTags},
		{"PUT", "/api/v1/scope-tags", securityAdmin, a.putScopeTags},

		{"POST", "/api/v1/sources", securityAdmin, a.createSource},
		{"GET", "/api/v1/sources", reader, a.listSources},
		{"GET", "/api/v1/sources/{id}", reader, a.getSource},
		{"PATCH", "/api/v1/sources/{id}", securityAdmin, a.patchSource},
		{"DELETE", "/api/v1/sources/{id}", securityAdmin, a.deleteSource},
		{"POST", "/api/v1/sources/{id}/run", securityAdmin, a.runSource},
		{"GET", "/api/v1/sources/{id}/runs", reader, a.listSourceRuns},
		{"GET", "/api/v1/sources/{id}/runs/{run}", reader, a.getSourceRun},

		{"GET", "/api/v1/notifications", securityAdmin, a.listNotifications},
		{"GET", "/api/v1/notifications/status", securityAdmin, a.notificationStatus},
		{"GET", "/api/v1/notifications/preview", securityAdmin, a.previewNotification},
		{"POST", "/api/v1/notifications/test", securityAdmin, a.sendTestMail},
		{"GET", "/api/v1/notifications/{id}", securityAdmin, a.getNotification},
		{"POST", "/api/v1/notifications/{id}/resend", securityAdmin, a.resendNotification},
		{"GET", "/api/v1/managers", securityAdmin, a.listManagers},
		{"PUT", "/api/v1/managers/{owner}", securityAdmin, a.putManager},
		{"DELETE", "/api/v1/managers/{owner}", securityAdmin, a.deleteManager},

		{"GET", "/api/v1/tickets", reader, a.listTickets},
		{"GET", "/api/v1/tickets/{id}", reader, a.getTicket},
		{"GET", "/api/v1/audit", reader, a.listAudit},
	}
	a.mux = http.NewServeMux()
	allowed := map[string][]string{}
	for _, rt := range a.routes {
		if !rt.Access.Valid() {
			panic("api: route " + rt.Method + " " + rt.Pattern + " does not say which role may call it")
		}
		a.mux.Handle(rt.Method+" "+rt.Pattern, a.wrap(rt.Pattern, a.authorize(rt.Access, rt.Handler)))
		allowed[rt.Pattern] = append(allowed[rt.Pattern], rt.Method)
	}
	// A path that exists with other methods answers 405 in the JSON shape,
	// not the mux's plain-text one. The answer is registered per method
	// left out, not for the bare path: a bare "/api/v1/notifications/status"
	// would conflict in the mux with "GET /api/v1/notifications/{id}"
	// (each is more specific in one way).
	for pattern, methods := range allowed {
		sort.Strings(methods)
		notAllowed := a.wrap(pattern, func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Allow", strings.Join(methods, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{Code: codeMethodNotAllowed,
				Message: "method " + r.Method + " is not allowed here; use " + strings.Join(methods, " or ")}})
			return nil
		})
		for _, m := range standardMethods {
			// A GET pattern also serves HEAD.
			if slices.Contains(methods, m) || m == http.MethodHead && slices.Contains(methods, http.MethodGet) {
				continue
			}
			a.mux.Handle(m+" "+pattern, notAllowed)
		}
	}
	a.mux.Handle("/api/", a.wrap("/api/", func(w http.ResponseWriter, r *http.Request) error {
		return notFound("no API endpoint at %s; see /api/openapi.json", r.URL.Path)
	}))
	// Off the API too, an unknown path answers the JSON error shape rather
	// than the mux's plain text.
	a.mux.Handle("/", a.wrap("/", func(w http.ResponseWriter, r *http.Request) error {
		return notFound("nothing at %s; Steward's API is under /api/v1, described by /api/openapi.json", r.URL.Path)
	}))
	return a
}

// authorize runs h only for a caller that may: public routes for anyone,
// the others for a valid token whose role allows ac. The identity travels
// in the request's context (auth.FromContext); actor(r) names it.
func (a *API) authorize(ac access, h func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	if ac.IsPublic() {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		// The web UI calls the API in process with its signed-in user's
		// identity already in the context; a context value cannot come from
		// the network, so nothing a client sends can set it.
		if id, ok := auth.FromContext(r.Context()); ok {
			if !ac.Allows(id) {
				return steward.Errorf(steward.CodeForbidden, "this needs the %s role; %q has the %s role", ac.Role(), id.Name, id.Role)
			}
			return h(w, r)
		}
		if a.auth == nil {
			return steward.Errorf(steward.CodeUnavailable, "authentication is not configured")
		}
		id, err := a.auth.Authenticate(r)
		if err != nil {
			switch steward.ErrorCode(err) {
			case steward.CodeUnauthorized:
				w.Header().Set("WWW-Authenticate", `Bearer realm="steward"`)
			case steward.CodeRateLimited:
				w.Header().Set("Retry-After", "60")
			}
			return err
		}
		if !ac.Allows(id) {
			return steward.Errorf(steward.CodeForbidden, "this needs the %s role; token %q has the %s role", ac.Role(), id.Name, id.Role)
		}
		return h(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
	}
}

// RouteAccess lists "METHOD PATTERN" → who may call it ("public" or the
// least role), for the route × role and OpenAPI tests.
func (a *API) RouteAccess() map[string]string {
	out := make(map[string]string, len(a.routes))
	for _, rt := range a.routes {
		out[rt.Method+" "+rt.Pattern] = rt.Access.String()
	}
	return out
}

// Routes lists "METHOD PATTERN" for every endpoint, for the OpenAPI test.
func (a *API) Routes() []string {
	out := make([]string, 0, len(a.routes))
	for _, rt := range a.routes {
		out = append(out, rt.Method+" "+rt.Pattern)
	}
	return out
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *API) wrap(pattern string, h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				a.logger.ErrorContext(r.Context(), "handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
				if !rec.wrote {
					writeError(rec, r, a.logger, steward.Errorf(steward.CodeInternal, "internal error"))
				}
			}
			a.metrics.observe(pattern, r.Method, rec.status, time.Since(start))
		}()
		if err := h(rec, r); err != nil {
			writeError(rec, r, a.logger, err)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// rootInfo is the answer at /: no web UI exists yet, so it points at the
// API's description.
type rootInfo struct {
	Name    string `json:"name"`
	API     string `json:"api"`
	OpenAPI string `json:"openapi"`
}

func (a *API) root(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, rootInfo{Name: "Steward", API: "/api/v1", OpenAPI: "/api/openapi.json"})
	return nil
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.db.Ready(ctx); err != nil {
		return steward.WrapError(steward.CodeUnavailable, err, "not ready: %s", steward.ErrorMessage(err))
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// actor names who made a change: the authenticated token's name, never
// anything the request says about itself.
func actor(r *http.Request) string {
	if id, ok := auth.FromContext(r.Context()); ok {
		return id.Name
	}
	return "anonymous"
}

func (a *API) servePrometheus(w http.ResponseWriter, r *http.Request) error {
	if a.prom == nil {
		return notFound("metrics are not served here")
	}
	a.prom.ServeHTTP(w, r)
	return nil
}
