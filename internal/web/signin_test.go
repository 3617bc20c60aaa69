package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

// TestSignInInBrowser: a signed-out browser at / lands on the sign-in page,
// a wrong token is refused with its reason, a good one reaches the
// overview, and signing out ends the session.
func TestSignInInBrowser(t *testing.T) {
	b := startUI(t)
	ctx := newBrowser(t)

	var loc string
	run(t, ctx, chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(`#token`, chromedp.ByID), chromedp.Location(&loc))
	require.True(t, strings.HasPrefix(loc, b.url+"/signin"), "signed-out / leads to sign-in, got %s", loc)
	checkA11y(t, ctx, "sign-in")
	screenshot(t, ctx, "signin")

	// Keyboard: the first Tab reaches the skip link, then the brand link,
	// then the token field.
	var focused []string
	for range 3 {
		var id string
		run(t, ctx, chromedp.KeyEvent(kb.Tab), chromedp.Evaluate(`document.activeElement.id || document.activeElement.className || document.activeElement.tagName`, &id))
		focused = append(focused, id)
	}
	require.Equal(t, []string{"skip", "brand", "token"}, focused)

	run(t, ctx, chromedp.SendKeys(`#token`, "stw_not-a-real-token", chromedp.ByID), chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`#signin-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, "#signin-error"), "unknown API token")

	signIn(t, ctx, b, b.token)
	run(t, ctx, chromedp.Location(&loc))
	require.Equal(t, b.url+"/", loc)
	require.Contains(t, textOf(t, ctx, ".who"), "admin@example.com")
	checkA11y(t, ctx, "overview")

	// A deep link survives sign-in.
	run(t, ctx, chromedp.Click(`.signout button`, chromedp.ByQuery), chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.Navigate(b.url+"/?from=deep-link"), chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.SendKeys(`#token`, b.token, chromedp.ByID), chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`.who`, chromedp.ByQuery), chromedp.Location(&loc))
	require.Equal(t, b.url+"/?from=deep-link", loc)

	// Revoking the token ends the session it signed in.
	reader := b.tokenFor(t, "viewer", steward.RoleReader)
	ctx2 := newBrowser(t)
	signIn(t, ctx2, b, reader)
	for _, tok := range mustTokens(t, b) {
		if tok.Name == "viewer" {
			_, err := b.client.RevokeToken(t.Context(), tok.ID)
			require.NoError(t, err)
		}
	}
	run(t, ctx2, chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(`#token`, chromedp.ByID))
}

func mustTokens(t *testing.T, b *uiBundle) []steward.Token {
	t.Helper()
	p, err := b.client.ListTokens(t.Context())
	require.NoError(t, err)
	return p.Items
}

// TestAPIClientsKeepJSON: a request that is not a browser's keeps the API's
// JSON answers at / and at unknown paths; a browser gets pages.
func TestAPIClientsKeepJSON(t *testing.T) {
	b := startUI(t)
	get := func(path, accept string) (*http.Response, string) {
		req, err := http.NewRequestWithContext(t.Context(), "GET", b.url+path, nil)
		require.NoError(t, err)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, body := get("/", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var root map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &root))
	require.Equal(t, "/api/v1", root["api"])

	resp, body = get("/nowhere", "application/json")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, body, `"code":"not_found"`)

	resp, body = get("/nowhere", "text/html")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	require.Contains(t, body, "There is no page at /nowhere")

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", b.url+"/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/signin", resp.Header.Get("Location"))

	resp, body = get("/api/v1/me", "text/html")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the API answers the API's way even to a browser")
	require.Contains(t, body, `"code":"unauthorized"`)
}

// TestSessionCookie: HttpOnly, SameSite=Lax, and Secure when configured.
func TestSessionCookie(t *testing.T) {
	b := startUI(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := url.Values{"token": {b.token}, "next": {"//evil.example/x"}}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", b.url+"/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/", resp.Header.Get("Location"), "a redirect off-site after sign-in is refused")
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, c.SameSite)
	require.False(t, c.Secure, "plain http on loopback")
	require.NotContains(t, c.Value, b.token, "the cookie is a session secret, not the token")
}

// TestCrossSiteFormPostRefused: a page on another origin that posts a form
// to Steward (with the victim's cookie, same site but another port) is
// refused and nothing changes.
func TestCrossSiteFormPostRefused(t *testing.T) {
	b := startUI(t)
	ctx := newBrowser(t)
	signIn(t, ctx, b, b.token)

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, `<!doctype html><html><body><form id="f" method="post" action="`+b.url+`/signout"></form>
<script>document.getElementById("f").submit()</script></body></html>`)
	}))
	t.Cleanup(evil.Close)
	// localhost vs 127.0.0.1: another origin.
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	run(t, ctx, chromedp.Navigate(evilURL), chromedp.WaitVisible(`main h1`, chromedp.ByQuery))
	require.Contains(t, textOf(t, ctx, "main"), "sent from another site")
	// Still signed in: the sign-out did not happen.
	var loc string
	run(t, ctx, chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(`.who`, chromedp.ByQuery), chromedp.Location(&loc))
	require.Equal(t, b.url+"/", loc)
	require.Contains(t, b.logs.String(), "cross-origin form post refused")
}
