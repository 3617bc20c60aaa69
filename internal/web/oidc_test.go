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
	srv          *httptest.Server
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
	codes      map[string]idpCode
	authorize  []url.Values
	lastCode   string
	tokenCalls int
}

type idpCode struct {
	challenge, nonce, redirectURI string
	claims                        map[string]any
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p := &testIdP{t: t, key: key, clientID: "steward-ui", clientSecret: "idp-client-secret", codes: map[string]idpCode{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorizeHandler)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *testIdP) setUser(claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user, p.deny, p.hold = claims, false, false
}

func (p *testIdP) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.srv.URL,
		"authorization_endpoint":                p.srv.URL + "/authorize",
		"token_endpoint":                        p.srv.URL + "/token",
		"jwks_uri":                              p.srv.URL + "/jwks",
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
	claims := map[string]any{"iss": p.srv.URL, "sub": "sub-" + rand.Text()[:8], "aud": p.clientID, "nonce": c.nonce,
		"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix()}
	for k, v := range c.claims {
		claims[k] = v
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 300,
		"id_token": p.sign(claims)})
}

func (p *testIdP) sign(claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: p.key, KeyID: "k1"}},
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
		c.OIDCIssuer = idp.srv.URL
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
	idp.mu.Lock()
	idp.deny = true
	idp.mu.Unlock()
	run(t, ctx2, chromedp.Navigate(b.url+"/signin"), chromedp.WaitVisible(`#oidc-signin`, chromedp.ByID),
		chromedp.Click(`#oidc-signin`, chromedp.ByID), chromedp.WaitVisible(`#signin-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx2, "#signin-error"), "Sign-in at Example SSO was cancelled or refused")
	require.Contains(t, b.logs.String(), "access_denied: the user said no")
	requireSignedOut(t, ctx2, b)

	// A forged state: the browser started a sign-in (the attempt cookie is
	// set) and the code is good, but the state is not the one it was sent.
	idp.setUser(map[string]any{"email": "alice@example.com", "groups": []string{"steward-owners"}})
	idp.mu.Lock()
	idp.hold = true
	idp.mu.Unlock()
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
