package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth"
)

// sessionCookie holds the session secret. The __Host- prefix (when
// Secure) pins it to this host and path /.
const (
	sessionCookie       = "steward_session"
	secureSessionCookie = "__Host-steward_session"
)

func (h *Handler) cookieName() string {
	if h.cfg.SecureCookies {
		return secureSessionCookie
	}
	return sessionCookie
}

type sessionKey struct{}

func withSession(ctx context.Context, id int64) context.Context {
	return context.WithValue(ctx, sessionKey{}, id)
}

func sessionID(ctx context.Context) int64 {
	id, _ := ctx.Value(sessionKey{}).(int64)
	return id
}

// identity is the signed-in user of a page request.
func identity(r *http.Request) auth.Identity {
	id, _ := auth.FromContext(r.Context())
	return id
}

func (h *Handler) sessionIdentity(r *http.Request) (auth.Identity, int64, error) {
	c, err := r.Cookie(h.cookieName())
	if err != nil {
		return auth.Identity{}, 0, steward.Errorf(steward.CodeUnauthorized, "sign in to continue")
	}
	return h.auth.Session(r.Context(), c.Value)
}

// setSession starts a session for id and hands its cookie to the browser.
func (h *Handler) setSession(w http.ResponseWriter, r *http.Request, id auth.Identity) error {
	secret, err := h.auth.StartSession(r.Context(), id)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(), Value: secret, Path: "/",
		MaxAge: int(auth.SessionTTL.Seconds()), HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	return nil
}

func (h *Handler) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// signInRedirect sends a signed-out browser to the sign-in page, back to
// where it was going afterwards. A script's request gets a plain 401.
func (h *Handler) signInRedirect(w http.ResponseWriter, r *http.Request, err error) {
	if steward.ErrorCode(err) != steward.CodeUnauthorized {
		h.renderError(w, r, err)
		return
	}
	if r.Method != http.MethodGet || !acceptsHTML(r) {
		h.renderError(w, r, err)
		return
	}
	target := "/signin"
	if next := r.URL.RequestURI(); next != "/" {
		target += "?next=" + url.QueryEscape(next)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// localPath keeps a post-sign-in redirect on this site: a path, never a
// scheme, host or protocol-relative //host.
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

type signInView struct {
	Next  string
	Error string
	OIDC  string // the identity provider's display name, when configured
}

func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request) error {
	v := signInView{Next: localPath(r.URL.Query().Get("next"))}
	if h.oidc != nil {
		v.OIDC = h.oidc.displayName
	}
	if msg := r.URL.Query().Get("error"); msg != "" {
		v.Error = "Sign-in through your identity provider failed; try again or use an API token."
	}
	return h.render(w, r, http.StatusOK, "signin.html", "Sign in", v)
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return steward.Errorf(steward.CodeInvalid, "could not read the form")
	}
	next := localPath(r.PostForm.Get("next"))
	token := strings.TrimSpace(r.PostForm.Get("token"))
	id, err := h.auth.SignInWithToken(r, token)
	if err != nil {
		v := signInView{Next: next, Error: steward.ErrorMessage(err)}
		if h.oidc != nil {
			v.OIDC = h.oidc.displayName
		}
		status := http.StatusUnauthorized
		if steward.ErrorCode(err) == steward.CodeRateLimited {
			status = http.StatusTooManyRequests
			w.Header().Set("Retry-After", "60")
		}
		return h.render(w, r, status, "signin.html", "Sign in", v)
	}
	if err := h.setSession(w, r, id); err != nil {
		return err
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) error {
	if err := h.auth.EndSession(r.Context(), sessionID(r.Context())); err != nil {
		return err
	}
	h.clearSession(w)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
	return nil
}
