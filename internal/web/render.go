package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth"
)

// view is what every template receives: the signed-in user, the page's
// title and its own data.
type view struct {
	Title string
	User  *auth.Identity
	Path  string
	Data  any
}

// Can reports whether the signed-in user has at least role, so templates
// show only the actions the user may take (the API enforces it anyway).
func (v view) Can(role string) bool {
	return v.User != nil && v.User.Role.Allows(steward.Role(role))
}

var funcs = template.FuncMap{
	"date": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return ""
			}
			return v.UTC().Format("2006-01-02")
		case *time.Time:
			if v == nil || v.IsZero() {
				return ""
			}
			return v.UTC().Format("2006-01-02")
		}
		return ""
	},
	"datetime": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil || v.IsZero() {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
	"lower": strings.ToLower,
	// cloudName spells a cloud the way its vendor does.
	"cloudName": func(c any) string {
		s := fmt.Sprint(c)
		switch strings.ToLower(s) {
		case "aws":
			return "AWS"
		case "azure":
			return "Azure"
		case "gcp":
			return "GCP"
		}
		return s
	},
	"query": func(pairs ...string) template.URL {
		q := url.Values{}
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i+1] != "" {
				q.Set(pairs[i], pairs[i+1])
			}
		}
		return template.URL("?" + q.Encode())
	},
	"pathEscape": url.PathEscape,
}

// parseTemplates parses each page template together with the layout, so
// every page defines its own "content" block.
func parseTemplates() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", base, err)
		}
		out[base] = t
	}
	return out, nil
}

// render writes a page. It renders into a buffer first, so a template
// error becomes an error page rather than half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) error {
	t, ok := h.tmpl[name]
	if !ok {
		return fmt.Errorf("render: no template %s", name)
	}
	v := view{Title: title, Path: r.URL.Path, Data: data}
	if id, ok := auth.FromContext(r.Context()); ok {
		v.User = &id
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	setSecurityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
	return nil
}

type errorView struct {
	Status  int
	Heading string
	Message string
}

// statusOf maps an error from the API (in process) or from the UI itself
// to an HTTP status and a message safe to show.
func statusOf(err error) (int, string) {
	var apiErr *apiclient.Error
	if errors.As(err, &apiErr) {
		return apiErr.Status, apiErr.Message
	}
	switch steward.ErrorCode(err) {
	case steward.CodeInvalid:
		return http.StatusBadRequest, steward.ErrorMessage(err)
	case steward.CodeNotFound:
		return http.StatusNotFound, steward.ErrorMessage(err)
	case steward.CodeUnauthorized:
		return http.StatusUnauthorized, steward.ErrorMessage(err)
	case steward.CodeForbidden:
		return http.StatusForbidden, steward.ErrorMessage(err)
	case steward.CodeConflict:
		return http.StatusConflict, steward.ErrorMessage(err)
	case steward.CodeRateLimited:
		return http.StatusTooManyRequests, steward.ErrorMessage(err)
	case steward.CodeUnavailable:
		return http.StatusServiceUnavailable, steward.ErrorMessage(err)
	}
	return http.StatusInternalServerError, "Something went wrong on our side; it has been logged."
}

// renderError shows err as a page with its status. Internal errors are
// logged with their cause and shown generically.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusOf(err)
	if status >= 500 {
		h.logger.ErrorContext(r.Context(), "page failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	heading := http.StatusText(status)
	switch status {
	case http.StatusForbidden:
		heading = "Not allowed"
	case http.StatusNotFound:
		heading = "Not found"
	}
	if rerr := h.render(w, r, status, "error.html", heading, errorView{Status: status, Heading: heading, Message: msg}); rerr != nil {
		h.logger.ErrorContext(r.Context(), "render error page", "err", rerr)
		http.Error(w, msg, status)
	}
}

// fieldError is a form error shown at its field; Field is empty for an
// error about the whole form.
type fieldError struct {
	Field   string
	Message string
}

// formError turns an API error into the message shown on a form, at the
// field it names when the API named one.
func formError(err error) fieldError {
	var apiErr *apiclient.Error
	if errors.As(err, &apiErr) {
		return fieldError{Field: apiErr.Field, Message: apiErr.Message}
	}
	_, msg := statusOf(err)
	return fieldError{Message: msg}
}
