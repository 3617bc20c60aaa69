// Package web serves Steward's browser UI at /: server-rendered pages over
// the same API the CLI uses. Every page reads and writes through the JSON
// API in process (client.go) as the signed-in identity, so the UI cannot do
// or see anything the API would refuse that identity; the page table's
// roles only decide what is shown and give a friendly 403 first.
package web

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/config"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config holds the UI's settings.
type Config struct {
	// SecureCookies marks the session cookie Secure; set when Steward is
	// served over TLS (directly or behind a TLS-terminating proxy).
	SecureCookies bool
	// OIDC, when set, offers sign-in through an OpenID Connect provider.
	OIDC *config.OIDC
}

// Deps are what the UI calls.
type Deps struct {
	// API is Steward's JSON API; pages call it in process.
	API http.Handler
	// Auth checks sign-in tokens and keeps sessions.
	Auth   *auth.Authenticator
	Logger *slog.Logger
}

// Handler serves the UI, and hands every request that is not a page (the
// API, health, metrics, and anything a non-browser asks for) to the API.
type Handler struct {
	cfg    Config
	api    http.Handler
	auth   *auth.Authenticator
	logger *slog.Logger
	oidc   *oidcProvider
	pages  []page
	mux    *http.ServeMux
	tmpl   map[string]*template.Template
	now    func() time.Time
	// crossOrigin refuses state-changing requests a browser sends from
	// another origin (Sec-Fetch-Site / Origin), the CSRF defence.
	crossOrigin *http.CrossOriginProtection
}

// access is who may open a page (auth.Access): a positional field of
// page, so a page that does not say does not compile.
type access = auth.Access

var (
	public        = auth.Public
	reader        = auth.Reader
	contributor   = auth.Contributor
	securityAdmin = auth.SecurityAdmin
	owner         = auth.Owner
)

// page is one UI route.
type page struct {
	Method  string
	Pattern string
	Access  access
	Handler func(w http.ResponseWriter, r *http.Request) error
}

// New builds the UI handler.
func New(cfg Config, deps Deps) (*Handler, error) {
	h := &Handler{cfg: cfg, api: deps.API, auth: deps.Auth, logger: deps.Logger,
		now: time.Now, crossOrigin: http.NewCrossOriginProtection()}
	h.crossOrigin.SetDenyHandler(http.HandlerFunc(h.crossOriginDenied))
	if cfg.OIDC != nil {
		p, err := newOIDCProvider(*cfg.OIDC)
		if err != nil {
			return nil, err
		}
		h.oidc = p
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	h.tmpl = tmpl
	h.pages = h.routes()
	h.mux = http.NewServeMux()
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	staticHandler := http.StripPrefix("/static/", http.FileServerFS(static))
	for _, p := range h.pages {
		if !p.Access.Valid() {
			panic("web: page " + p.Method + " " + p.Pattern + " does not say which role may open it")
		}
		h.mux.Handle(p.Method+" "+p.Pattern, h.wrap(p.Access, p.Handler))
	}
	h.mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		staticHandler.ServeHTTP(w, r)
	}))
	return h, nil
}

// RouteAccess lists "METHOD PATTERN" → who may open it, for the route ×
// role test.
func (h *Handler) RouteAccess() map[string]string {
	out := make(map[string]string, len(h.pages))
	for _, p := range h.pages {
		out[p.Method+" "+p.Pattern] = p.Access.String()
	}
	return out
}

// ServeHTTP serves pages to browsers and everything else through the API,
// so API clients keep their JSON answers (GET / included).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		h.api.ServeHTTP(w, r)
		return
	}
	_, pattern := h.mux.Handler(r)
	switch {
	case pattern == "" && !acceptsHTML(r),
		r.URL.Path == "/" && !acceptsHTML(r):
		h.api.ServeHTTP(w, r)
	case pattern == "":
		if _, other := h.mux.Handler(withMethod(r, http.MethodGet)); other == "" && !isAPIPath(r.URL.Path) {
			h.renderError(w, r, steward.Errorf(steward.CodeNotFound, "There is no page at %s", r.URL.Path))
			return
		}
		h.api.ServeHTTP(w, r)
	default:
		h.mux.ServeHTTP(w, r)
	}
}

func isAPIPath(p string) bool {
	return p == "/healthz" || p == "/readyz" || p == "/metrics"
}

func withMethod(r *http.Request, m string) *http.Request {
	r2 := *r
	r2.Method = m
	return &r2
}

// acceptsHTML reports whether the request is a browser's: navigations and
// form posts ask for text/html.
func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// wrap authenticates the session, checks the page's role, refuses
// cross-origin writes and renders a returned error as a page.
func (h *Handler) wrap(ac access, fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w)
		defer func() {
			if p := recover(); p != nil {
				h.logger.ErrorContext(r.Context(), "page panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
				h.renderError(w, r, steward.Errorf(steward.CodeInternal, "internal error"))
			}
		}()
		if !ac.IsPublic() {
			id, sessionID, err := h.sessionIdentity(r)
			if err != nil {
				h.signInRedirect(w, r, err)
				return
			}
			if !ac.Allows(id) {
				h.renderError(w, r, steward.Errorf(steward.CodeForbidden, "this page needs the %s role; you (%s) have the %s role", ac.Role(), id.Name, id.Role))
				return
			}
			r = r.WithContext(withSession(auth.WithIdentity(r.Context(), id), sessionID))
		}
		if err := fn(w, r); err != nil {
			h.renderError(w, r, err)
		}
	})
	return h.crossOrigin.Handler(inner)
}

func setSecurityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
}

func (h *Handler) crossOriginDenied(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	h.logger.WarnContext(r.Context(), "cross-origin form post refused", "method", r.Method, "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	h.renderError(w, r, steward.Errorf(steward.CodeForbidden, "this form was sent from another site; nothing was changed. Open Steward directly and try again"))
}
