package web_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

// wantPageAccess is who may open each page, written down independently of
// the page table: a page added without an entry here fails
// TestPageRoleMatrix, and so does a page whose enforced role differs.
var wantPageAccess = map[string]string{
	"GET /signin":   "public",
	"POST /signin":  "public",
	"POST /signout": "reader",
	"GET /{$}":      "reader",
	// Recommendations.
	"GET /recommendations":                           "reader",
	"GET /recommendations/{key}":                     "reader",
	"GET /recommendations/{key}/assign":              "contributor",
	"POST /recommendations/{key}/assign":             "contributor",
	"POST /recommendations/{key}/retry/{assignment}": "contributor",
	"GET /recommendations/{key}/rows/{assessment}":   "reader",
	// Imports, audit log, tokens.
	"GET /imports":                      "reader",
	"POST /imports":                     "contributor",
	"GET /imports/{id}":                 "reader",
	"GET /audit":                        "reader",
	"GET /settings/tokens":              "owner",
	"POST /settings/tokens":             "owner",
	"POST /settings/tokens/{id}/revoke": "owner",
	// Assignments.
	"GET /assignments":             "reader",
	"GET /assignments/{id}":        "reader",
	"POST /assignments/{id}/owner": "contributor",
	"POST /assignments/{id}/eta":   "contributor",
	"POST /assignments/{id}/due":   "contributor",
	"POST /assignments/{id}/end":   "contributor",
	"POST /assignments/{id}/retry": "contributor",
	// Integrations.
	"GET /settings/integrations":                "reader",
	"GET /settings/integrations/new":            "security-admin",
	"POST /settings/integrations":               "security-admin",
	"GET /settings/integrations/{id}":           "reader",
	"GET /settings/integrations/{id}/edit":      "security-admin",
	"POST /settings/integrations/{id}":          "security-admin",
	"POST /settings/integrations/{id}/sync":     "security-admin",
	"POST /settings/integrations/{id}/validate": "security-admin",
	"GET /settings/integrations/{id}/delete":    "security-admin",
	"POST /settings/integrations/{id}/delete":   "security-admin",
	// Governance rules.
	"GET /settings/rules":              "reader",
	"GET /settings/rules/new":          "security-admin",
	"POST /settings/rules":             "security-admin",
	"POST /settings/rules/preview":     "reader",
	"GET /settings/rules/{id}":         "reader",
	"GET /settings/rules/{id}/edit":    "security-admin",
	"POST /settings/rules/{id}":        "security-admin",
	"POST /settings/rules/{id}/run":    "security-admin",
	"POST /settings/rules/{id}/delete": "security-admin",
	// Sources.
	"GET /settings/sources":           "reader",
	"POST /settings/sources/{id}/run": "security-admin",
	// OpenID Connect sign-in.
	"GET /signin/oidc":          "public",
	"GET /signin/oidc/callback": "public",
}

var roleRank = map[string]int{"reader": 1, "contributor": 2, "security-admin": 3, "owner": 4}

// pageClient is a browser-like HTTP client signed in with token.
func pageClient(t *testing.T, b *uiBundle, token string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if token != "" {
		resp, err := c.PostForm(b.url+"/signin", url.Values{"token": {token}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "sign in")
	}
	return c
}

func openPage(t *testing.T, c *http.Client, method, u string) (int, string, string) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(raw)
}

// TestPageRoleMatrix walks every page of the page table signed out and
// signed in with each role: signed out → the sign-in page (GET) or 401,
// too weak a role → 403, enough → the page's handler runs.
func TestPageRoleMatrix(t *testing.T) {
	b := startUI(t)
	b.srv.Auth.SetFailureLimit(10000, 1)

	served := b.srv.PageAccess()
	var pages []string
	for p := range served {
		pages = append(pages, p)
	}
	sort.Strings(pages)
	for _, p := range pages {
		want, ok := wantPageAccess[p]
		require.True(t, ok, "page %s is not in wantPageAccess: decide who may open it", p)
		require.Equal(t, want, served[p], "page %s enforces %s", p, served[p])
	}
	for p := range wantPageAccess {
		_, ok := served[p]
		require.True(t, ok, "wantPageAccess names %s, which is not served", p)
	}

	clients := map[string]*http.Client{"": pageClient(t, b, "")}
	for _, role := range steward.Roles {
		clients[string(role)] = pageClient(t, b, b.tokenFor(t, "matrix-"+string(role), role))
	}
	for _, p := range pages {
		method, pattern, _ := strings.Cut(p, " ")
		if pattern == "/signout" {
			continue // would end the session the other pages use; TestSignInInBrowser covers it
		}
		path := strings.NewReplacer("{$}", "", "{id}", "999999", "{key}", "none", "{run}", "999999", "{assignment}", "999999", "{assessment}", "999999").Replace(pattern)
		want := wantPageAccess[p]
		t.Run(p, func(t *testing.T) {
			status, loc, _ := openPage(t, clients[""], method, b.url+path)
			if want == "public" {
				require.NotEqual(t, http.StatusForbidden, status)
				require.False(t, strings.HasPrefix(loc, "/signin?"), "a public page sends to sign-in")
				return
			}
			if method == http.MethodGet {
				require.Equal(t, http.StatusSeeOther, status, "signed out")
				require.True(t, strings.HasPrefix(loc, "/signin"), "signed out goes to sign-in, got %s", loc)
			} else {
				require.Equal(t, http.StatusUnauthorized, status, "signed out")
			}
			for _, role := range steward.Roles {
				status, _, body := openPage(t, clients[string(role)], method, b.url+path)
				if roleRank[string(role)] >= roleRank[want] {
					require.NotContains(t, []int{401, 403}, status, "%s may open %s: %s", role, p, body)
				} else {
					require.Equal(t, http.StatusForbidden, status, "%s may not open %s", role, p)
					require.Contains(t, body, "needs the "+want+" role")
				}
			}
		})
	}
}
