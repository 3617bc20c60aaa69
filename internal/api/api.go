// Package api serves Steward's JSON API under /api/v1, its OpenAPI document
// and the health endpoints. Every failure answers with one JSON shape,
// {"error":{"code":"...","message":"..."}}, its status taken from one
// code→status table.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/ingest"
	"github.com/stewardhq/steward/internal/jobs"
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
}

// API is the HTTP API. It is safe for concurrent use.
type API struct {
	cfg     Config
	db      *store.DB
	ingest  *ingest.Ingester
	queue   *jobs.Queue
	tickets *ticketsync.Service
	logger  *slog.Logger
	metrics *metrics
	now     func() time.Time
	mux     *http.ServeMux
	routes  []route
}

// route is one endpoint; the table drives both the mux and the OpenAPI
// consistency test.
type route struct {
	Method  string
	Pattern string
	Handler func(w http.ResponseWriter, r *http.Request) error
}

// New builds the API. reg receives the HTTP metrics.
func New(cfg Config, deps Deps, logger *slog.Logger, reg prometheus.Registerer) *API {
	cfg.setDefaults()
	a := &API{cfg: cfg, db: deps.DB, ingest: deps.Ingester, queue: deps.Queue, tickets: deps.Tickets,
		logger: logger, metrics: newMetrics(reg), now: func() time.Time { return time.Now().UTC() }}
	a.routes = []route{
		{"GET", "/healthz", a.healthz},
		{"GET", "/readyz", a.readyz},
		{"GET", "/api/openapi.json", a.openAPI},

		{"POST", "/api/v1/assessments", a.postAssessments},
		{"GET", "/api/v1/assessments", a.listAssessments},
		{"GET", "/api/v1/assessments/{id}", a.getAssessment},

		{"POST", "/api/v1/imports", a.postImport},
		{"GET", "/api/v1/imports", a.listImports},
		{"GET", "/api/v1/imports/{id}", a.getImport},

		{"GET", "/api/v1/recommendations", a.listRecommendations},
		{"GET", "/api/v1/recommendations/{key}", a.getRecommendation},

		{"GET", "/api/v1/resources", a.listResources},
		{"GET", "/api/v1/resources/{id...}", a.getResource},

		{"POST", "/api/v1/assignments", a.createAssignment},
		{"GET", "/api/v1/assignments", a.listAssignments},
		{"GET", "/api/v1/assignments/{id}", a.getAssignment},
		{"PATCH", "/api/v1/assignments/{id}", a.updateAssignment},
		{"DELETE", "/api/v1/assignments/{id}", a.deleteAssignment},
		{"GET", "/api/v1/assignments/{id}/history", a.assignmentHistory},
		{"POST", "/api/v1/assignments/{id}/ticket/retry", a.retryTicket},

		{"POST", "/api/v1/integrations", a.createIntegration},
		{"GET", "/api/v1/integrations", a.listIntegrations},
		{"GET", "/api/v1/integrations/{id}", a.getIntegration},
		{"PATCH", "/api/v1/integrations/{id}", a.updateIntegration},
		{"DELETE", "/api/v1/integrations/{id}", a.deleteIntegration},
		{"GET", "/api/v1/integrations/{id}/delete-preview", a.integrationDeletePreview},
		{"POST", "/api/v1/integrations/{id}/validate", a.validateIntegration},
		{"POST", "/api/v1/integrations/{id}/events", a.postEvent},
		{"GET", "/api/v1/integrations/{id}/sync", a.getSync},
		{"POST", "/api/v1/integrations/{id}/sync", a.postSync},

		{"GET", "/api/v1/tickets", a.listTickets},
		{"GET", "/api/v1/audit", a.listAudit},
	}
	a.mux = http.NewServeMux()
	allowed := map[string][]string{}
	for _, rt := range a.routes {
		a.mux.Handle(rt.Method+" "+rt.Pattern, a.wrap(rt.Pattern, rt.Handler))
		allowed[rt.Pattern] = append(allowed[rt.Pattern], rt.Method)
	}
	// A path that exists with other methods answers 405 in the JSON shape,
	// not the mux's plain-text one.
	for pattern, methods := range allowed {
		sort.Strings(methods)
		a.mux.Handle(pattern, a.wrap(pattern, func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Allow", strings.Join(methods, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{Code: codeMethodNotAllowed,
				Message: "method " + r.Method + " is not allowed here; use " + strings.Join(methods, " or ")}})
			return nil
		}))
	}
	a.mux.Handle("/api/", a.wrap("/api/", func(w http.ResponseWriter, r *http.Request) error {
		return notFound("no API endpoint at %s; see /api/openapi.json", r.URL.Path)
	}))
	return a
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

// actor names who made a change. Until access control exists the caller
// declares it in X-Steward-Actor (the CLI sends the OS user); it is recorded,
// not trusted.
func actor(r *http.Request) string {
	if v := strings.TrimSpace(r.Header.Get("X-Steward-Actor")); v != "" && len(v) <= 256 {
		return v
	}
	return "api"
}
