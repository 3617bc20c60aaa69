package web_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/config"
)

// testIdP is a small OpenID Connect provider on loopback: discovery, keys,
// an authorization endpoint that signs in whoever the test says at once
// (no login page), and a token endpoint that checks the client, the code
// and its PKCE verifier before answering with a signed ID token.
type testIdP struct {
	t            *testing.T
	url          string // the issuer
	addr         string
	mux          *http.ServeMux
	key          *rsa.PrivateKey
	clientID     string
	clientSecret string

	mu sync.Mutex
	// user is who the next /authorize signs in: claims beyond the standard
	// ones (email, groups, ...).
	user map[string]any
	// deny makes /authorize answer error=access_denied; hold makes it
	// show a page instead of redirecting back (the code is still minted).
	deny, hold bool
	// otherKey signs ID tokens with a key the provider does not publish;
	// badNonce puts another nonce in them.
	otherKey, badNonce bool
	codes              map[string]idpCode
	authorize          []url.Values
	lastCode           string
	tokenCalls         int
}

type idpCode struct {
	challenge, nonce, redirectURI string
	claims                        map[string]any
}

// newTestIdP starts a provider on a free loopback port.
func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	p := newUnstartedIdP(t)
	p.start()
	return p
}

// newUnstartedIdP picks the provider's address, and so its issuer URL,
// but nothing listens there until start.
func newUnstartedIdP(t *testing.T) *testIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	addr := freeAddr(t)
	p := &testIdP{t: t, url: "http://" + addr, addr: addr, key: key, clientID: "steward-ui", clientSecret: "idp-client-secret",
		codes: map[string]idpCode{}, mux: http.NewServeMux()}
	p.mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	p.mux.HandleFunc("GET /jwks", p.jwks)
	p.mux.HandleFunc("GET /authorize", p.authorizeHandler)
	p.mux.HandleFunc("POST /token", p.token)
	return p
}

func (p *testIdP) start() {
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: p.mux}}
	srv.Start()
	p.t.Cleanup(srv.Close)
}

func (p *testIdP) setUser(claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user, p.deny, p.hold, p.otherKey, p.badNonce = claims, false, false, false, false
}

// set changes the provider's behaviour under its lock.
func (p *testIdP) set(f func(*testIdP)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *testIdP) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.url,
		"authorization_endpoint":                p.url + "/authorize",
		"token_endpoint":                        p.url + "/token",
		"jwks_uri":                              p.url + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

func (p *testIdP) jwks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

func (p *testIdP) authorizeHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.authorize = append(p.authorize, q)
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("client_id") != p.clientID || q.Get("response_type") != "code" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	back := url.Values{"state": {q.Get("state")}}
	if p.deny {
		back.Set("error", "access_denied")
		back.Set("error_description", "the user said no")
	} else {
		code := rand.Text()
		p.codes[code] = idpCode{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirectURI: q.Get("redirect_uri"), claims: p.user}
		p.lastCode = code
		back.Set("code", code)
	}
	if p.hold {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, `<!doctype html><title>IdP</title><h1 id="idp">Test identity provider</h1>`)
		return
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (p *testIdP) token(w http.ResponseWriter, r *http.Request) {
	require.NoError(p.t, r.ParseForm())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenCalls++
	id, sec, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		sec, _ = url.QueryUnescape(sec)
	} else {
		id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.clientID || sec != p.clientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	c, found := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code")) // a code is used once
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if r.PostForm.Get("grant_type") != "authorization_code" || !found || r.PostForm.Get("redirect_uri") != c.redirectURI ||
		c.challenge == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	claims := map[string]any{"iss": p.url, "sub": "sub-" + rand.Text()[:8], "aud": p.clientID, "nonce": c.nonce,
		"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix()}
	if p.badNonce {
		claims["nonce"] = "another-nonce"
	}
	for k, v := range c.claims {
		claims[k] = v
	}
	key := p.key
	if p.otherKey {
		var err error
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(p.t, err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 300,
		"id_token": p.sign(key, claims)})
}

func (p *testIdP) sign(key *rsa.PrivateKey, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(p.t, err)
	payload, err := json.Marshal(claims)
	require.NoError(p.t, err)
	obj, err := signer.Sign(payload)
	require.NoError(p.t, err)
	s, err := obj.CompactSerialize()
	require.NoError(p.t, err)
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// freeAddr finds a free loopback port, so the server's public URL (the
// provider's redirect target) is known before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startOIDCUI starts Steward with sign-in through idp.
func startOIDCUI(t *testing.T, idp *testIdP, edit ...func(*config.Config)) *uiBundle {
	t.Helper()
	secretFile := filepath.Join(t.TempDir(), "oidc-client-secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(idp.clientSecret+"\n"), 0o600))
	addr := freeAddr(t)
	return startUI(t, append([]func(*config.Config){func(c *config.Config) {
		c.Addr = addr
		c.PublicURL = "http://" + addr
		c.OIDCIssuer = idp.url
		c.OIDCClientID = idp.clientID
		c.OIDCClientSecretFile = secretFile
		c.OIDCName = "Example SSO"
		c.OIDCRoles = "steward-owners=owner,secops=security-admin,engineering=contributor"
	}}, edit...)...)
}

// TestOIDCSignInInBrowser: the sign-in page offers the provider; clicking
// it signs alice in through the provider (PKCE, state, nonce) with the
// highest role her groups map to, back at the page she asked for; a user
// whose groups map to nothing, a denial at the provider and a forged state
// are refused with a message and leave the browser signed out.
func TestOIDCSignInInBrowser(t *testing.T) {
	idp := newTestIdP(t)
	b := startOIDCUI(t, idp)
	ctx := newBrowser(t)

	idp.setUser(map[string]any{"email": "Alice@Example.com", "email_verified": true, "groups": []string{"engineering", "steward-owners", "other"}})
	var loc string
	run(t, ctx, chromedp.Navigate(b.url+"/?from=oidc"), chromedp.WaitVisible(`#oidc-signin`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, "#oidc-signin"), "Sign in with Example SSO")
	checkA11y(t, ctx, "sign-in with OpenID Connect")
	screenshot(t, ctx, "signin-oidc")
	run(t, ctx, chromedp.Click(`#oidc-signin`, chromedp.ByID), chromedp.WaitVisible(`.who`, chromedp.ByQuery), chromedp.Location(&loc))
	require.Equal(t, b.url+"/?from=oidc", loc, "back at the page asked for")
	require.Contains(t, textOf(t, ctx, ".who"), "oidc:alice@example.com · owner")

	idp.mu.Lock()
	authz := idp.authorize[len(idp.authorize)-1]
	idp.mu.Unlock()
	require.Equal(t, "S256", authz.Get("code_challenge_method"))
	require.NotEmpty(t, authz.Get("code_challenge"))
	require.NotEmpty(t, authz.Get("nonce"))
	require.NotEmpty(t, authz.Get("state"))
	require.Equal(t, b.url+"/signin/oidc/callback", authz.Get("redirect_uri"))
	require.ElementsMatch(t, []string{"openid", "email", "profile"}, strings.Fields(authz.Get("scope")))

	// What alice does is recorded as hers: she creates a token.
	run(t, ctx, chromedp.Navigate(b.url+"/settings/tokens"), chromedp.WaitVisible(`#name`, chromedp.ByID),
		chromedp.SendKeys(`#name`, "made-by-alice", chromedp.ByID), chromedp.Submit(`#name`, chromedp.ByID))
	waitText(t, ctx, "main", "made-by-alice", 20*time.Second)
	events, err := b.client.ListAudit(t.Context(), url.Values{})
	require.NoError(t, err)
	var found bool
	for _, e := range events.Items {
		if e.Action == "token.created" && e.Details["name"] == "made-by-alice" {
			require.Equal(t, "oidc:alice@example.com", e.Actor)
			found = true
		}
	}
	require.True(t, found, "the token's creation is in the audit log")
	var createdBy string
	for _, tok := range mustTokens(t, b) {
		if tok.Name == "made-by-alice" {
			createdBy = tok.CreatedBy
		}
	}
	require.Equal(t, "oidc:alice@example.com", createdBy)

	// bob's groups map to no role: refused, with a message.
	ctx2 := newBrowser(t)
	idp.setUser(map[string]any{"email": "bob@example.com", "groups": []string{"marketing"}})
	run(t, ctx2, chromedp.Navigate(b.url+"/signin"), chromedp.WaitVisible(`#oidc-signin`, chromedp.ByID),
		chromedp.Click(`#oidc-signin`, chromedp.ByID), chromedp.WaitVisible(`#signin-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx2, "#signin-error"), "You (bob@example.com) have no role in Steward")
	checkA11y(t, ctx2, "sign-in refused")
	require.Contains(t, b.logs.String(), `no value of claim \"groups\" maps to a role for bob@example.com`)
	requireSignedOut(t, ctx2, b)

	// A denial at the provider.
	idp.set(func(p *testIdP) { p.deny = true })
	run(t, ctx2, chromedp.Navigate(b.url+"/signin"), chromedp.WaitVisible(`#oidc-signin`, chromedp.ByID),
		chromedp.Click(`#oidc-signin`, chromedp.ByID), chromedp.WaitVisible(`#signin-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx2, "#signin-error"), "Sign-in at Example SSO was cancelled or refused")
	require.Contains(t, b.logs.String(), "access_denied: the user said no")
	requireSignedOut(t, ctx2, b)

	// A forged state: the browser started a sign-in (the attempt cookie is
	// set) and the code is good, but the state is not the one it was sent.
	idp.setUser(map[string]any{"email": "alice@example.com", "groups": []string{"steward-owners"}})
	idp.set(func(p *testIdP) { p.hold = true })
	run(t, ctx2, chromedp.Navigate(b.url+"/signin"), chromedp.WaitVisible(`#oidc-signin`, chromedp.ByID),
		chromedp.Click(`#oidc-signin`, chromedp.ByID), chromedp.WaitVisible(`#idp`, chromedp.ByID))
	idp.mu.Lock()
	code := idp.lastCode
	calls := idp.tokenCalls
	idp.mu.Unlock()
	run(t, ctx2, chromedp.Navigate(b.url+"/signin/oidc/callback?"+url.Values{"code": {code}, "state": {"forged"}}.Encode()),
		chromedp.WaitVisible(`#signin-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx2, "#signin-error"), "This sign-in was not started here")
	require.Contains(t, b.logs.String(), "the state does not match the sign-in started in this browser")
	idp.mu.Lock()
	require.Equal(t, calls, idp.tokenCalls, "a forged state never reaches the token endpoint")
	idp.mu.Unlock()
	requireSignedOut(t, ctx2, b)
}

func requireSignedOut(t *testing.T, ctx context.Context, b *uiBundle) {
	t.Helper()
	var loc string
	run(t, ctx, chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(`#token`, chromedp.ByID), chromedp.Location(&loc))
	require.True(t, strings.HasPrefix(loc, b.url+"/signin"), "signed out, got %s", loc)
}

// oidcSignIn runs the sign-in flow without a browser (an http.Client with
// a cookie jar follows the redirects) and returns the client, now holding
// the session cookie when it worked, and the last answer.
func oidcSignIn(t *testing.T, b *uiBundle, next string) (*http.Client, int, string, string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}
	status, body, loc := getHTML(t, c, b.url+"/signin/oidc?"+url.Values{"next": {next}}.Encode())
	return c, status, body, loc
}

// getHTML GETs a page as a browser would and returns the status, body and
// the URL it ended at.
func getHTML(t *testing.T, c *http.Client, u string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", u, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body), resp.Request.URL.String()
}

// who signs in through the provider and returns what the page header
// says about the signed-in user ("name · role[ · scope]").
func who(t *testing.T, b *uiBundle) string {
	t.Helper()
	c, status, body, _ := oidcSignIn(t, b, "/")
	require.Equal(t, http.StatusOK, status, body)
	_, body, _ = getHTML(t, c, b.url+"/")
	_, rest, ok := strings.Cut(body, `<span class="who">`)
	require.True(t, ok, "signed in: %s", body)
	name, _, _ := strings.Cut(rest, "</span>")
	return name
}

// TestOIDCClaims: how ID token claims become a session: the highest
// mapped role, "*" for everyone, a role claim that is a string, a
// lower-cased email; refusals for an unverified or missing email, a token
// signed with a key the provider does not publish, a wrong nonce, and a
// replayed callback. The attempt cookie is HttpOnly, SameSite=Lax and
// short-lived, and an off-site next is dropped.
func TestOIDCClaims(t *testing.T) {
	idp := newTestIdP(t)
	b := startOIDCUI(t, idp, func(c *config.Config) {
		c.OIDCRoleClaim = "roles"
		c.OIDCRoles = "steward-owners=owner,secops=security-admin,engineering=contributor,*=reader"
	})

	idp.setUser(map[string]any{"email": "Dana@Example.com", "email_verified": "true", "roles": "secops"})
	require.Equal(t, "oidc:dana@example.com · security-admin", who(t, b))
	idp.setUser(map[string]any{"email": "erin@example.com", "roles": []string{"engineering", "secops", "unknown"}})
	require.Equal(t, "oidc:erin@example.com · security-admin", who(t, b), "the highest mapped role wins")
	idp.setUser(map[string]any{"email": "frank@example.com"})
	require.Equal(t, "oidc:frank@example.com · reader", who(t, b), "* gives everyone reader")

	refused := func(wantStatus int, wantMsg, wantLog string) {
		t.Helper()
		_, status, body, _ := oidcSignIn(t, b, "/")
		require.Equal(t, wantStatus, status, body)
		require.Contains(t, body, `id="signin-error"`)
		require.Contains(t, body, wantMsg)
		require.Contains(t, b.logs.String(), wantLog)
	}
	idp.setUser(map[string]any{"email": "gina@example.com", "email_verified": false, "roles": "steward-owners"})
	refused(http.StatusForbidden, "is not verified at Example SSO", "email gina@example.com is not verified")
	idp.setUser(map[string]any{"roles": "steward-owners"})
	refused(http.StatusForbidden, "has no email address Steward can use", "has no usable email claim")
	idp.setUser(map[string]any{"email": "mallory@example.com", "roles": "steward-owners"})
	idp.set(func(p *testIdP) { p.otherKey = true })
	refused(http.StatusUnauthorized, "could not verify the answer from Example SSO", "OpenID Connect ID token refused")
	idp.setUser(map[string]any{"email": "mallory@example.com", "roles": "steward-owners"})
	idp.set(func(p *testIdP) { p.badNonce = true })
	refused(http.StatusUnauthorized, "could not verify the answer from Example SSO", "nonce does not match")

	// A callback works once: replaying it (the attempt cookie is spent) is
	// refused.
	idp.setUser(map[string]any{"email": "dana@example.com", "roles": "secops"})
	var callback string
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/signin/oidc/callback" {
			callback = req.URL.String()
		}
		return nil
	}}
	status, _, loc := getHTML(t, c, b.url+"/signin/oidc?next=%2F%2Fevil.example%2Fx")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, b.url+"/", loc, "an off-site next is dropped")
	require.NotEmpty(t, callback)
	status, body, _ := getHTML(t, c, callback)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "This sign-in was not started here")

	// The attempt cookie.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(t.Context(), "GET", b.url+"/signin/oidc?next=%2Fsettings%2Ftokens", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html")
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), idp.url+"/authorize?"), resp.Header.Get("Location"))
	require.Len(t, resp.Cookies(), 1)
	ck := resp.Cookies()[0]
	require.Equal(t, "steward_oidc", ck.Name)
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, ck.SameSite)
	require.Equal(t, 600, ck.MaxAge)
	require.NotContains(t, b.logs.String(), idp.clientSecret, "the client secret is never logged")
}

// TestOIDCScopeClaim: a scope claim limits the session to its scope (a
// dotted role claim reaches into a nested object); a user without one is
// refused.
func TestOIDCScopeClaim(t *testing.T) {
	idp := newTestIdP(t)
	b := startOIDCUI(t, idp, func(c *config.Config) {
		c.OIDCRoleClaim = "realm_access.roles"
		c.OIDCRoles = "auditors=reader,engineering=contributor"
		c.OIDCScopeClaim = "steward_scope"
	})
	idp.setUser(map[string]any{"email": "ivy@example.com", "realm_access": map[string]any{"roles": []string{"engineering"}},
		"steward_scope": "/Subscriptions/S1/"})
	require.Equal(t, "oidc:ivy@example.com · contributor · /subscriptions/s1", who(t, b))

	idp.setUser(map[string]any{"email": "jack@example.com", "realm_access": map[string]any{"roles": []string{"auditors"}}})
	_, status, body, _ := oidcSignIn(t, b, "/")
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, body, "does not say which resources you may see")
	require.Contains(t, b.logs.String(), `claim \"steward_scope\" of jack@example.com is not one scope`)
}

// TestOIDCProviderDownAtStart: Steward starts while the provider is
// unreachable; sign-in says so plainly, and works once the provider is up,
// without a restart.
func TestOIDCProviderDownAtStart(t *testing.T) {
	idp := newUnstartedIdP(t)
	b := startOIDCUI(t, idp)
	_, status, body, _ := oidcSignIn(t, b, "/")
	require.Equal(t, http.StatusBadGateway, status)
	require.Contains(t, body, "Steward cannot reach Example SSO right now")
	require.Contains(t, body, "Sign in with Example SSO", "the sign-in page, with the button to try again")
	require.Contains(t, b.logs.String(), "OpenID Connect provider unreachable")

	idp.start()
	idp.setUser(map[string]any{"email": "alice@example.com", "groups": []string{"engineering"}})
	require.Equal(t, "oidc:alice@example.com · contributor", who(t, b))
}
