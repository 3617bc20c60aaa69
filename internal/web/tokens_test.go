package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

// tokensFill fills the create-token form and sends it.
func tokensFill(t *testing.T, ctx context.Context, b *uiBundle, name, role, expires string) {
	t.Helper()
	run(t, ctx,
		chromedp.Navigate(b.url+"/settings/tokens"),
		chromedp.WaitVisible(`#name`, chromedp.ByID),
		chromedp.SendKeys(`#name`, name, chromedp.ByID),
		chromedp.SetValue(`#role`, role, chromedp.ByID),
		chromedp.SetValue(`#expires`, expires, chromedp.ByID),
		chromedp.Click(`#token-form button[type=submit]`, chromedp.ByQuery),
	)
}

// tokensAcceptConfirm answers the next confirm() with yes, and keeps the
// question in sessionStorage (it outlives the form's navigation).
func tokensAcceptConfirm(t *testing.T, ctx context.Context) {
	t.Helper()
	run(t, ctx, chromedp.Evaluate(`window.confirm = (q) => { sessionStorage.setItem("asked", q); return true; }`, nil))
}

// TestTokensInBrowser: an owner creates a reader token and sees its secret
// once, with a copy button and a warning; the secret signs another browser
// in; the list never holds it; revoking the token ends that browser's
// session. Refusals show at their fields.
func TestTokensInBrowser(t *testing.T) {
	b := startUI(t)
	ctx := newBrowser(t)
	signIn(t, ctx, b, b.token)

	run(t, ctx, chromedp.Navigate(b.url+"/settings/tokens"), chromedp.WaitVisible(`#tokens`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, `#tokens`), "admin@example.com your sign-in", "the token this browser signed in with is marked")
	checkA11y(t, ctx, "tokens")

	tokensFill(t, ctx, b, "ci-viewer", "reader", "30d")
	run(t, ctx, chromedp.WaitVisible(`#secret`, chromedp.ByID))
	var secret string
	run(t, ctx, chromedp.Value(`#secret`, &secret, chromedp.ByID))
	require.True(t, strings.HasPrefix(secret, "stw_"), "the secret is shown: %q", secret)
	require.Contains(t, textOf(t, ctx, `#secret-warning`), "it will not be shown again")
	var copyVisible bool
	run(t, ctx, chromedp.Evaluate(`(() => { const b = document.querySelector('button[data-copy="secret"]'); return !!b && !b.hidden; })()`, &copyVisible))
	require.True(t, copyVisible, "the copy button appears with JavaScript")
	require.Contains(t, textOf(t, ctx, `main`), "reader")
	checkA11y(t, ctx, "token created")

	// The secret signs another browser in, as a reader.
	other := newBrowser(t)
	signIn(t, other, b, secret)
	require.Contains(t, textOf(t, other, `.who`), "ci-viewer · reader")

	// The list shows the token, never its secret.
	var html string
	run(t, ctx, chromedp.Navigate(b.url+"/settings/tokens"), chromedp.WaitVisible(`#tokens`, chromedp.ByID),
		chromedp.OuterHTML(`html`, &html, chromedp.ByQuery))
	require.NotContains(t, html, secret)
	require.NotContains(t, html, secret[:12], "not even most of it")
	var id int64
	for _, tok := range mustTokens(t, b) {
		if tok.Name == "ci-viewer" {
			id = tok.ID
			require.Equal(t, steward.RoleReader, tok.Role)
			require.NotNil(t, tok.ExpiresAt)
			require.WithinDuration(t, time.Now().Add(30*24*time.Hour), *tok.ExpiresAt, time.Hour)
		}
	}
	require.NotZero(t, id)
	row := textOf(t, ctx, "#token-"+strconv.FormatInt(id, 10))
	require.Contains(t, row, "ci-viewer")
	require.Contains(t, row, "reader")
	require.Contains(t, row, "every resource")
	require.Contains(t, row, "by admin@example.com")
	screenshot(t, ctx, "tokens")

	// Refusals at their fields, the entered values kept.
	tokensFill(t, ctx, b, "admin@example.com", "reader", "30d")
	run(t, ctx, chromedp.WaitVisible(`#name-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, `#name-error`), "already exists")
	var name string
	run(t, ctx, chromedp.Value(`#name`, &name, chromedp.ByID))
	require.Equal(t, "admin@example.com", name)
	checkA11y(t, ctx, "tokens with an error")

	tokensFill(t, ctx, b, "soon", "reader", "tomorrow")
	run(t, ctx, chromedp.WaitVisible(`#expires-error`, chromedp.ByID))
	require.Contains(t, textOf(t, ctx, `#expires-error`), `expiry "tomorrow"`)

	run(t, ctx,
		chromedp.Navigate(b.url+"/settings/tokens"),
		chromedp.WaitVisible(`#name`, chromedp.ByID),
		chromedp.SendKeys(`#name`, "boss", chromedp.ByID),
		chromedp.Evaluate(`document.querySelector('#role option[value="owner"]').value = "king"; document.querySelector('#role').value = "king";`, nil),
		chromedp.Click(`#token-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#role-error`, chromedp.ByID),
	)
	require.Contains(t, textOf(t, ctx, `#role-error`), `role "king" is not one of`)

	// Revoke, after the question: the other browser's session ends.
	run(t, ctx, chromedp.Navigate(b.url+"/settings/tokens"), chromedp.WaitVisible(`#tokens`, chromedp.ByID))
	tokensAcceptConfirm(t, ctx)
	run(t, ctx,
		chromedp.Click(`#token-`+strconv.FormatInt(id, 10)+` form[data-confirm] button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#token-revoked`, chromedp.ByID),
	)
	require.Contains(t, textOf(t, ctx, `#token-revoked`), "Token ci-viewer is revoked")
	var asked string
	run(t, ctx, chromedp.Evaluate(`sessionStorage.getItem("asked")`, &asked))
	require.Contains(t, asked, "Revoke token ci-viewer?")
	require.NotEmpty(t, textOf(t, ctx, "#token-"+strconv.FormatInt(id, 10)+" .bad"), "the list shows when it was revoked")
	var revokeForms int
	run(t, ctx, chromedp.Evaluate(`document.querySelectorAll('#token-`+strconv.FormatInt(id, 10)+` form').length`, &revokeForms))
	require.Zero(t, revokeForms, "a revoked token has no revoke button")
	run(t, other, chromedp.Navigate(b.url+"/"), chromedp.WaitVisible(`#token`, chromedp.ByID))
}

// TestTokensOwnersOnly: a security-admin has no Tokens link and gets the
// 403 page at /settings/tokens; a posted create is refused too.
func TestTokensOwnersOnly(t *testing.T) {
	b := startUI(t)
	ctx := newBrowser(t)
	signIn(t, ctx, b, b.tokenFor(t, "secadmin@example.com", steward.RoleSecurityAdmin))
	var links int
	run(t, ctx, chromedp.Evaluate(`document.querySelectorAll('nav a[href="/settings/tokens"]').length`, &links))
	require.Zero(t, links, "no Tokens link for a security-admin")
	run(t, ctx, chromedp.Navigate(b.url+"/settings/tokens"), chromedp.WaitVisible(`main h1`, chromedp.ByQuery))
	require.Equal(t, "Not allowed", textOf(t, ctx, `main h1`))
	require.Contains(t, textOf(t, ctx, `main`), "this page needs the owner role")
	checkA11y(t, ctx, "tokens (forbidden)")

	c := tokensPageClient(t, b, b.tokenFor(t, "secadmin2@example.com", steward.RoleSecurityAdmin))
	resp := tokensPost(t, c, b.url+"/settings/tokens", url.Values{"name": {"sneaky"}, "role": {"owner"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	for _, tok := range mustTokens(t, b) {
		require.NotEqual(t, "sneaky", tok.Name)
	}
}

// TestTokensCreatedPageNotStored: the page with the secret tells caches
// and the browser's history not to keep it, and the secret is on no URL.
func TestTokensCreatedPageNotStored(t *testing.T) {
	b := startUI(t)
	c := tokensPageClient(t, b, b.token)
	resp := tokensPost(t, c, b.url+"/settings/tokens", url.Values{"name": {"deploy"}, "role": {"contributor"}, "expires": {"never"}})
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Empty(t, resp.Header.Get("Location"))
	require.Contains(t, string(body), `value="stw_`)
	require.Contains(t, string(body), `data-copy="secret" hidden`)
}

func tokensPageClient(t *testing.T, b *uiBundle, token string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := tokensPost(t, c, b.url+"/signin", url.Values{"token": {token}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "sign in")
	return c
}

func tokensPost(t *testing.T, c *http.Client, u string, form url.Values) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
