package web

// Sign-in through an OpenID Connect provider: the authorization code flow
// with PKCE (S256), state and nonce. The provider is discovered at the
// first sign-in, not at start, so Steward starts (and token sign-in works)
// while the provider is down; a failed discovery is retried at the next
// sign-in. A signed-in user gets a session like a token's, with the name
// "oidc:<email>" (token names cannot contain ':', so no token can spell
// it), the highest role their role claim maps to, and optionally a scope.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/config"
)

// oidcAttemptTTL bounds the time between the click on the sign-in button
// and the provider sending the browser back.
const oidcAttemptTTL = 10 * time.Minute

// The cookie that carries one sign-in attempt from the button to the
// callback. __Host- (when Secure) pins it to this host.
const (
	oidcCookie       = "steward_oidc"
	secureOIDCCookie = "__Host-steward_oidc"
)

type oidcProvider struct {
	cfg         config.OIDC
	displayName string
	// client talks to the provider: discovery, keys, code exchange.
	client *http.Client

	mu       sync.Mutex
	oauth    *oauth2.Config // nil until discovered
	verifier *oidc.IDTokenVerifier
}

func newOIDCProvider(cfg config.OIDC) (*oidcProvider, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("OpenID Connect: no issuer")
	case cfg.ClientID == "":
		return nil, errors.New("OpenID Connect: no client ID")
	case cfg.RedirectURL == "":
		return nil, errors.New("OpenID Connect: no redirect URL")
	case cfg.RoleClaim == "" || len(cfg.Roles) == 0:
		return nil, errors.New("OpenID Connect: no role mapping")
	}
	for v, role := range cfg.Roles {
		if !role.Valid() {
			return nil, fmt.Errorf("OpenID Connect: %q maps to unknown role %q", v, role)
		}
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	name := cfg.DisplayName
	if name == "" {
		name = "your identity provider"
	}
	return &oidcProvider{cfg: cfg, displayName: name, client: &http.Client{Timeout: 15 * time.Second}}, nil
}

// discover returns the OAuth client and the ID token verifier, reading the
// provider's discovery document the first time it succeeds.
func (p *oidcProvider) discover(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.oauth != nil {
		return p.oauth, p.verifier, nil
	}
	prov, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), p.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("discover OpenID Connect provider %s: %w", p.cfg.Issuer, err)
	}
	p.oauth = &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret.Reveal(),
		Endpoint: prov.Endpoint(), RedirectURL: p.cfg.RedirectURL, Scopes: p.cfg.Scopes}
	// Verify checks the signature against the provider's keys, the issuer,
	// the audience (our client ID) and the expiry.
	p.verifier = prov.Verifier(&oidc.Config{ClientID: p.cfg.ClientID})
	return p.oauth, p.verifier, nil
}

// oidcPages are served whether or not OpenID Connect is configured, so the
// page table is the same on every server; without it they answer 404.
func (h *Handler) oidcPages() []page {
	return []page{
		{"GET", "/signin/oidc", public, h.requireOIDC(h.oidcStart)},
		{"GET", "/signin/oidc/callback", public, h.requireOIDC(h.oidcCallback)},
	}
}

func (h *Handler) requireOIDC(fn func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if h.oidc == nil {
			return steward.Errorf(steward.CodeNotFound, "sign-in through an identity provider is not set up on this server; sign in with an API token")
		}
		return fn(w, r)
	}
}

// oidcAttempt is one sign-in in flight, kept in an HttpOnly cookie until
// the provider sends the browser back: a callback is accepted only from
// the browser that started it and only once.
type oidcAttempt struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"next"`
}

func (h *Handler) oidcCookieName() string {
	if h.cfg.SecureCookies {
		return secureOIDCCookie
	}
	return oidcCookie
}

func randomString() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// oidcStart sends the browser to the provider's authorization endpoint.
func (h *Handler) oidcStart(w http.ResponseWriter, r *http.Request) error {
	next := localPath(r.URL.Query().Get("next"))
	if len(next) > 1000 { // the cookie must stay small
		next = "/"
	}
	oc, _, err := h.oidc.discover(r.Context())
	if err != nil {
		return h.oidcFailed(w, r, next, http.StatusBadGateway, "OpenID Connect provider unreachable", err,
			fmt.Sprintf("Steward cannot reach %s right now. Try again in a minute, or sign in with an API token.", h.oidc.displayName))
	}
	a := oidcAttempt{Verifier: oauth2.GenerateVerifier(), Next: next}
	if a.State, err = randomString(); err != nil {
		return err
	}
	if a.Nonce, err = randomString(); err != nil {
		return err
	}
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: h.oidcCookieName(), Value: base64.RawURLEncoding.EncodeToString(raw), Path: "/",
		MaxAge: int(oidcAttemptTTL.Seconds()), HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, oc.AuthCodeURL(a.State, oidc.Nonce(a.Nonce), oauth2.S256ChallengeOption(a.Verifier)), http.StatusSeeOther)
	return nil
}

// readOIDCAttempt reads and clears the attempt cookie: each is used once.
func (h *Handler) readOIDCAttempt(w http.ResponseWriter, r *http.Request) (oidcAttempt, bool) {
	var a oidcAttempt
	c, err := r.Cookie(h.oidcCookieName())
	if err != nil {
		return a, false
	}
	http.SetCookie(w, &http.Cookie{Name: h.oidcCookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || json.Unmarshal(raw, &a) != nil || a.State == "" || a.Nonce == "" || a.Verifier == "" {
		return oidcAttempt{}, false
	}
	a.Next = localPath(a.Next)
	return a, true
}

func equalSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// oidcCallback finishes a sign-in: the provider sends the browser here
// with a code (or an error), which Steward exchanges for an ID token.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	name := h.oidc.displayName
	a, ok := h.readOIDCAttempt(w, r)
	next := "/"
	if ok {
		next = a.Next
	}
	if e := q.Get("error"); e != "" {
		cause := e
		if d := q.Get("error_description"); d != "" {
			cause += ": " + d
		}
		return h.oidcFailed(w, r, next, http.StatusUnauthorized, "OpenID Connect sign-in refused by the provider", errors.New(cause),
			fmt.Sprintf("Sign-in at %s was cancelled or refused, so you are not signed in.", name))
	}
	if !ok || !equalSecret(a.State, q.Get("state")) {
		cause := "the state does not match the sign-in started in this browser (forged, reused, or older than 10 minutes)"
		if !ok {
			cause = "no sign-in was started in this browser (no attempt cookie, or it expired after 10 minutes)"
		}
		return h.oidcFailed(w, r, next, http.StatusBadRequest, "OpenID Connect callback refused", errors.New(cause),
			"This sign-in was not started here or took too long. Sign in again.")
	}
	code := q.Get("code")
	if code == "" {
		return h.oidcFailed(w, r, next, http.StatusBadRequest, "OpenID Connect callback refused", errors.New("no code in the callback"),
			fmt.Sprintf("%s sent no sign-in code. Sign in again.", name))
	}
	oc, verifier, err := h.oidc.discover(r.Context())
	if err != nil {
		return h.oidcFailed(w, r, next, http.StatusBadGateway, "OpenID Connect provider unreachable", err,
			fmt.Sprintf("Steward cannot reach %s right now. Try again in a minute, or sign in with an API token.", name))
	}
	ctx := oidc.ClientContext(r.Context(), h.oidc.client)
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(a.Verifier))
	if err != nil {
		return h.oidcFailed(w, r, next, http.StatusBadGateway, "OpenID Connect code exchange failed", err,
			fmt.Sprintf("Steward could not complete the sign-in with %s. Sign in again.", name))
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return h.oidcFailed(w, r, next, http.StatusBadGateway, "OpenID Connect code exchange failed", errors.New("the token response has no id_token"),
			fmt.Sprintf("Steward could not complete the sign-in with %s. Sign in again.", name))
	}
	idt, err := verifier.Verify(ctx, rawID)
	if err == nil && !equalSecret(a.Nonce, idt.Nonce) {
		err = errors.New("the ID token's nonce does not match the sign-in attempt")
	}
	if err != nil {
		return h.oidcFailed(w, r, next, http.StatusUnauthorized, "OpenID Connect ID token refused", err,
			fmt.Sprintf("Steward could not verify the answer from %s. Sign in again.", name))
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return h.oidcFailed(w, r, next, http.StatusBadGateway, "OpenID Connect ID token refused", err,
			fmt.Sprintf("Steward could not read the answer from %s. Sign in again.", name))
	}
	id, refusal := h.oidc.identity(claims)
	if refusal != nil {
		return h.oidcFailed(w, r, next, http.StatusForbidden, "OpenID Connect sign-in refused", errors.New(refusal.cause), refusal.message)
	}
	if err := h.setSession(w, r, id); err != nil {
		return err
	}
	h.logger.InfoContext(r.Context(), "signed in with OpenID Connect", "name", id.Name, "role", id.Role, "scope", id.Scope)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// oidcFailed logs why a sign-in failed and shows the sign-in page with a
// message for the user, which names no internals.
func (h *Handler) oidcFailed(w http.ResponseWriter, r *http.Request, next string, status int, logMsg string, cause error, userMsg string) error {
	h.logger.WarnContext(r.Context(), logMsg, "issuer", h.oidc.cfg.Issuer, "err", cause)
	return h.render(w, r, status, "signin.html", "Sign in", signInView{Next: next, Error: userMsg, OIDC: h.oidc.displayName})
}

// oidcRefusal is why a verified user may not sign in: message for them,
// cause for the log.
type oidcRefusal struct {
	message, cause string
}

// identity maps a verified ID token's claims to a Steward identity.
func (p *oidcProvider) identity(claims map[string]any) (auth.Identity, *oidcRefusal) {
	email, _ := claims["email"].(string)
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || len(email) > 254 || strings.ContainsAny(email, " \t\r\n\x00") || !strings.Contains(email, "@") {
		return auth.Identity{}, &oidcRefusal{
			message: fmt.Sprintf("Your account at %s has no email address Steward can use. Ask your administrator to release the email claim to Steward.", p.displayName),
			cause:   fmt.Sprintf("the ID token of subject %v has no usable email claim", claims["sub"])}
	}
	if v, present := claims["email_verified"]; present && v != true && v != "true" {
		return auth.Identity{}, &oidcRefusal{
			message: fmt.Sprintf("Your email address %s is not verified at %s. Verify it there, then sign in again.", email, p.displayName),
			cause:   fmt.Sprintf("email %s is not verified (email_verified %v)", email, v)}
	}
	values := claimStrings(lookupClaim(claims, p.cfg.RoleClaim))
	role, matched := p.cfg.Roles["*"]
	for _, v := range values {
		if r, ok := p.cfg.Roles[v]; ok && (!role.Valid() || r.Allows(role)) {
			role, matched = r, true
		}
	}
	if !matched {
		return auth.Identity{}, &oidcRefusal{
			message: fmt.Sprintf("You (%s) have no role in Steward: none of your groups at %s is given one. Ask a Steward owner for access.", email, p.displayName),
			cause:   fmt.Sprintf("no value of claim %q maps to a role for %s (values: %q)", p.cfg.RoleClaim, email, values)}
	}
	id := auth.Identity{Name: "oidc:" + email, Role: role}
	if p.cfg.ScopeClaim != "" {
		scopes := claimStrings(lookupClaim(claims, p.cfg.ScopeClaim))
		var scope steward.Scope
		if len(scopes) == 1 {
			scope = steward.Scope(scopes[0])
		}
		if scope == "" || scope.Validate() != nil {
			return auth.Identity{}, &oidcRefusal{
				message: fmt.Sprintf("Your account at %s does not say which resources you may see in Steward. Ask a Steward owner for access.", p.displayName),
				cause:   fmt.Sprintf("claim %q of %s is not one scope (values: %q)", p.cfg.ScopeClaim, email, scopes)}
		}
		id.Scope = scope.Normalize()
	}
	return id, nil
}

// lookupClaim finds a claim by name, or by a dotted path into nested
// objects (realm_access.roles) when no claim has the whole name.
func lookupClaim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[part]; !ok {
			return nil
		}
	}
	return cur
}

// claimStrings reads a claim that is a string or a list of strings.
func claimStrings(v any) []string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
