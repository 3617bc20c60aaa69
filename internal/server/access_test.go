package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api/apitest"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
)

// wantAccess is who may call each route, written down independently of the
// route table: a route added without an entry here fails
// TestRouteRoleMatrix, and so does a route whose enforced role differs.
var wantAccess = map[string]string{
	"GET /{$}":              "public",
	"GET /healthz":          "public",
	"GET /readyz":           "public",
	"GET /api/openapi.json": "public",
	"GET /metrics":          "reader",

	"GET /api/v1/me":             "reader",
	"GET /api/v1/overview":       "reader",
	"POST /api/v1/tokens":        "owner",
	"GET /api/v1/tokens":         "owner",
	"DELETE /api/v1/tokens/{id}": "owner",

	"POST /api/v1/assessments":     "contributor",
	"GET /api/v1/assessments":      "reader",
	"GET /api/v1/assessments/{id}": "reader",

	"POST /api/v1/imports":     "contributor",
	"GET /api/v1/imports":      "reader",
	"GET /api/v1/imports/{id}": "reader",

	"GET /api/v1/recommendations":       "reader",
	"GET /api/v1/recommendations/{key}": "reader",
	"GET /api/v1/resources":             "reader",
	"GET /api/v1/resources/{id...}":     "reader",

	"POST /api/v1/assignments":                   "contributor",
	"GET /api/v1/assignments":                    "reader",
	"GET /api/v1/assignments/{id}":               "reader",
	"PATCH /api/v1/assignments/{id}":             "contributor",
	"DELETE /api/v1/assignments/{id}":            "contributor",
	"GET /api/v1/assignments/{id}/history":       "reader",
	"POST /api/v1/assignments/{id}/ticket/retry": "contributor",

	"POST /api/v1/integrations":                    "security-admin",
	"GET /api/v1/integrations":                     "reader",
	"GET /api/v1/integrations/{id}":                "reader",
	"PATCH /api/v1/integrations/{id}":              "security-admin",
	"DELETE /api/v1/integrations/{id}":             "security-admin",
	"GET /api/v1/integrations/{id}/delete-preview": "reader",
	"POST /api/v1/integrations/{id}/validate":      "security-admin",
	"POST /api/v1/integrations/{id}/events":        "public",
	"GET /api/v1/integrations/{id}/sync":           "reader",
	"POST /api/v1/integrations/{id}/sync":          "security-admin",

	"GET /api/v1/rules":                 "reader",
	"POST /api/v1/rules":                "security-admin",
	"GET /api/v1/rules/{id}":            "reader",
	"PUT /api/v1/rules/{id}":            "security-admin",
	"PATCH /api/v1/rules/{id}":          "security-admin",
	"DELETE /api/v1/rules/{id}":         "security-admin",
	"POST /api/v1/rules/{id}/run":       "security-admin",
	"GET /api/v1/rules/{id}/runs":       "reader",
	"GET /api/v1/rules/{id}/runs/{run}": "reader",
	"POST /api/v1/ruleset/plan":         "reader",
	"POST /api/v1/ruleset/apply":        "security-admin",
	"GET /api/v1/scope-tags":            "reader",
	"PUT /api/v1/scope-tags":            "security-admin",

	"POST /api/v1/sources":                "security-admin",
	"GET /api/v1/sources":                 "reader",
	"GET /api/v1/sources/{id}":            "reader",
	"PATCH /api/v1/sources/{id}":          "security-admin",
	"DELETE /api/v1/sources/{id}":         "security-admin",
	"POST /api/v1/sources/{id}/run":       "security-admin",
	"GET /api/v1/sources/{id}/runs":       "reader",
	"GET /api/v1/sources/{id}/runs/{run}": "reader",

	"GET /api/v1/reports/governance": "reader",

	"GET /api/v1/tickets":      "reader",
	"GET /api/v1/tickets/{id}": "reader",
	"GET /api/v1/audit":        "reader",

	"GET /api/v1/notifications":              "security-admin",
	"GET /api/v1/notifications/status":       "security-admin",
	"GET /api/v1/notifications/preview":      "security-admin",
	"POST /api/v1/notifications/test":        "security-admin",
	"GET /api/v1/notifications/{id}":         "security-admin",
	"POST /api/v1/notifications/{id}/resend": "security-admin",
	"GET /api/v1/managers":                   "security-admin",
	"PUT /api/v1/managers/{owner}":           "security-admin",
	"DELETE /api/v1/managers/{owner}":        "security-admin",
}

var roleRank = map[string]int{"reader": 1, "contributor": 2, "security-admin": 3, "owner": 4}

type answer struct {
	status int
	code   string
	header http.Header
}

func call(t *testing.T, method, url, token string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := apitest.Client(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct{ Error struct{ Code string } }
	_ = json.Unmarshal(raw, &e)
	return answer{status: resp.StatusCode, code: e.Error.Code, header: resp.Header}
}

// TestRouteRoleMatrix walks every route of the route table with no token
// and with a token of each role, over real HTTP, and checks allow or deny:
// no token → 401 with WWW-Authenticate, too weak a role → 403, enough →
// the handler runs (whatever it then answers, never 401 or 403).
func TestRouteRoleMatrix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Hundreds of refusals from one address on purpose: lift the limit.
	b.srv.Auth.SetFailureLimit(10000, time.Millisecond)
	tokens := map[string]string{}
	for _, role := range steward.Roles {
		tokens[string(role)] = authtest.Token(t, b.srv.DB, "matrix-"+string(role), role)
	}

	served := b.srv.RouteAccess()
	var routes []string
	for r := range served {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	for _, r := range routes {
		want, ok := wantAccess[r]
		require.True(t, ok, "route %s is not in wantAccess: decide who may call it", r)
		require.Equal(t, want, served[r], "route %s enforces %s", r, served[r])
	}
	require.Len(t, wantAccess, len(served), "wantAccess names routes that are not served")

	for _, r := range routes {
		method, pattern, _ := strings.Cut(r, " ")
		// IDs that exist nowhere, so allowed calls change nothing.
		path := strings.NewReplacer("{$}", "", "{id...}", "subscriptions/none", "{id}", "999999", "{key}", "none").Replace(pattern)
		var body []byte
		if method != http.MethodGet && method != http.MethodDelete {
			body = []byte(`{}`)
		}
		want := wantAccess[r]
		t.Run(r, func(t *testing.T) {
			got := call(t, method, b.url+path, "", body)
			if want == "public" {
				require.Empty(t, got.header.Get("WWW-Authenticate"), "public route asks for a token")
				require.NotEqual(t, http.StatusForbidden, got.status)
				return
			}
			require.Equal(t, http.StatusUnauthorized, got.status, "no token")
			require.Equal(t, "unauthorized", got.code)
			require.Equal(t, `Bearer realm="steward"`, got.header.Get("WWW-Authenticate"))

			for _, role := range steward.Roles {
				got := call(t, method, b.url+path, tokens[string(role)], body)
				if roleRank[string(role)] >= roleRank[want] {
					require.NotContains(t, []int{401, 403}, got.status, "%s may call %s", role, r)
				} else {
					require.Equal(t, http.StatusForbidden, got.status, "%s may not call %s", role, r)
					require.Equal(t, "forbidden", got.code)
				}
			}
		})
	}
}

// TestTokenLifecycle: a token works until it expires or is revoked, and
// then answers 401 naming why; its last use is recorded.
func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()

	issued, err := b.client.CreateToken(ctx, steward.TokenCreate{Name: "ci-import", Role: steward.RoleContributor, Expires: "1h"})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(issued.Secret, "stw_"))
	require.True(t, strings.HasPrefix(issued.Secret, issued.Prefix))
	require.NotNil(t, issued.ExpiresAt)

	c, err := apiclient.New(b.url, issued.Secret)
	require.NoError(t, err)
	c.WithHTTPClient(b.http)
	me, err := c.Me(ctx)
	require.NoError(t, err)
	require.Equal(t, "ci-import", me.Name)
	require.Equal(t, steward.RoleContributor, me.Role)
	require.NotNil(t, me.LastUsedAt, "last use recorded")

	// A second active token of the same name is refused.
	_, err = b.client.CreateToken(ctx, steward.TokenCreate{Name: "ci-import", Role: steward.RoleReader})
	require.ErrorContains(t, err, "already exists")
	// Names that could pass for Steward's own actors are refused.
	for _, name := range []string{"integration:prod", "servicenow", "system", "cli:alice", "", "-x"} {
		_, err = b.client.CreateToken(ctx, steward.TokenCreate{Name: name, Role: steward.RoleReader})
		require.Error(t, err, "name %q", name)
	}

	// Expiry: move the authenticator's clock past it.
	b.srv.Auth.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
	_, err = c.Me(ctx)
	requireRefused(t, err, 401, "expired")
	b.srv.Auth.SetClock(time.Now)
	_, err = c.Me(ctx)
	require.NoError(t, err)

	// Revocation takes effect on the next request.
	_, err = b.client.RevokeToken(ctx, issued.ID)
	require.NoError(t, err)
	_, err = c.Me(ctx)
	requireRefused(t, err, 401, "revoked")

	// Unknown and malformed tokens.
	for _, tok := range []string{"stw_unknown", "not-a-steward-token"} {
		c, err := apiclient.New(b.url, tok)
		require.NoError(t, err)
		_, err = c.Me(ctx)
		requireRefused(t, err, 401, "")
	}

	// The list shows the revoked token, never a secret.
	list, err := b.client.ListTokens(ctx)
	require.NoError(t, err)
	found := false
	for _, tok := range list.Items {
		if tok.ID == issued.ID {
			found = true
			require.NotNil(t, tok.RevokedAt)
		}
	}
	require.True(t, found)
	status, body := b.rawRequest(t, "GET", "/api/v1/tokens", "", nil)
	require.Equal(t, 200, status)
	raw, _ := json.Marshal(body)
	require.NotContains(t, string(raw), issued.Secret)
	require.NotContains(t, string(raw), b.token)
	// Creating and revoking are audited under the caller's name.
	events, err := b.client.ListAudit(ctx, map[string][]string{"action": {"token."}})
	require.NoError(t, err)
	var actions []string
	for _, e := range events.Items {
		if e.Details["name"] == "ci-import" {
			actions = append(actions, e.Action)
			require.Equal(t, "tester@example.com", e.Actor)
		}
	}
	require.Equal(t, []string{"token.revoked", "token.created"}, actions)
}

func requireRefused(t *testing.T, err error, status int, contains string) {
	t.Helper()
	require.Error(t, err)
	apiErr, ok := err.(*apiclient.Error)
	require.True(t, ok, "want an API error, got %v", err)
	require.Equal(t, status, apiErr.Status, apiErr.Message)
	require.Contains(t, apiErr.Message, contains)
}

// TestActorIsTheToken: history records the token's name; a self-declared
// X-Steward-Actor (which once let any caller pose as ServiceNow) is
// ignored.
func TestActorIsTheToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.client.PostAssessments(t.Context(), bytes.NewReader(batch(row("rec-a", "High", "/subscriptions/s1/vm1", "Unhealthy"))))
	require.NoError(t, err)
	page, err := b.client.ListAssessments(t.Context(), nil)
	require.NoError(t, err)
	a, err := b.client.CreateAssignment(t.Context(), apiclient.AssignmentRequest{AssessmentID: page.Items[0].ID, Owner: "alice@example.com", RemediationTimeframeDays: 7})
	require.NoError(t, err)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, fmt.Sprintf("%s/api/v1/assignments/%d", b.url, a.ID),
		strings.NewReader(`{"owner":"mallory@example.com"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Steward-Actor", "servicenow")
	b.authorize(req)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	d, err := b.client.GetAssignment(t.Context(), a.ID)
	require.NoError(t, err)
	for _, e := range d.History {
		require.Equal(t, "tester@example.com", e.Actor, "history names the token, never a header")
	}
}

// TestFailedAuthenticationsAreLimited: one address that keeps failing is
// answered 429 with Retry-After, and the log holds a bounded number of
// lines however long it keeps trying.
func TestFailedAuthenticationsAreLimited(t *testing.T) {
	t.Parallel()
	b := setupLogged(t)
	// A frozen clock: the log's per-minute budget cannot roll over while a
	// loaded machine takes its time over 200 requests.
	frozen := time.Now()
	b.srv.Auth.SetClock(func() time.Time { return frozen })
	var statuses []int
	for range 200 {
		statuses = append(statuses, call(t, "GET", b.url+"/api/v1/assessments", "stw_guess", nil).status)
	}
	require.Equal(t, http.StatusUnauthorized, statuses[0])
	require.Equal(t, http.StatusTooManyRequests, statuses[199])
	got := call(t, "GET", b.url+"/api/v1/assessments", "stw_guess", nil)
	require.Equal(t, "60", got.header.Get("Retry-After"))
	require.Equal(t, "rate_limited", got.code)
	lines := strings.Count(b.logs.String(), "authentication refused")
	require.GreaterOrEqual(t, lines, 1)
	require.LessOrEqual(t, lines, 10, "refusals are logged at a bounded rate")
	require.NotContains(t, b.logs.String(), "stw_guess", "the token is never logged")
}

// setupLogged is setup with the server's log (warnings and up, JSON) in a
// buffer the test reads.
func setupLogged(t *testing.T) loggedBundle {
	t.Helper()
	logs := &syncBuffer{}
	b, _ := startInbound(t, nil, logs)
	return loggedBundle{testBundle: b, logs: logs}
}

type loggedBundle struct {
	*testBundle
	logs *syncBuffer
}

// TestScopedTokens: a token limited to a scope sees and changes only what
// is inside it; everything else answers as if it did not exist.
func TestScopedTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	_, err := b.client.PostAssessments(ctx, bytes.NewReader(batch(
		row("rec-a", "High", "/subscriptions/s1/vm1", "Unhealthy"),
		row("rec-a", "High", "/subscriptions/s2/vm2", "Unhealthy"),
		row("rec-b", "Low", "/subscriptions/s2/vm3", "Unhealthy"),
		row("rec-a", "High", "/subscriptions/s10/vm4", "Unhealthy"), // a sibling, not inside s1
	)))
	require.NoError(t, err)
	all, err := b.client.ListAssessments(ctx, nil)
	require.NoError(t, err)
	idOf := map[string]int64{}
	for _, a := range all.Items {
		idOf[a.ResourceID] = a.ID
	}
	outside, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: idOf["/subscriptions/s2/vm2"], Owner: "bob@example.com", RemediationTimeframeDays: 7})
	require.NoError(t, err)
	otherIn, err := b.client.CreateIntegration(ctx, apiclient.IntegrationRequest{Name: ptrTo("s2-instance"), Scope: ptrTo("/subscriptions/s2"),
		InstanceURL: ptrTo("https://s2.service-now.example"), AuthMode: ptrTo("basic"), Username: ptrTo("svc"), Password: ptrTo("pw"), SkipValidation: true})
	require.NoError(t, err)

	reader, err := apiclient.New(b.url, authtest.ScopedToken(t, b.srv.DB, "s1-reader", steward.RoleReader, "/SUBSCRIPTIONS/s1"))
	require.NoError(t, err)
	reader.WithHTTPClient(b.http)
	contrib, err := apiclient.New(b.url, authtest.ScopedToken(t, b.srv.DB, "s1-contrib", steward.RoleContributor, "/subscriptions/s1"))
	require.NoError(t, err)
	contrib.WithHTTPClient(b.http)
	owner, err := apiclient.New(b.url, authtest.ScopedToken(t, b.srv.DB, "s1-owner", steward.RoleOwner, "/subscriptions/s1"))
	require.NoError(t, err)
	owner.WithHTTPClient(b.http)

	// Recommendation counts, scoped ones too, are recomputed by a job after
	// the batch; wait for them.
	require.Eventually(t, func() bool {
		recs, err := b.client.ListRecommendations(ctx, nil)
		return err == nil && len(recs.Items) == 2 && recs.Items[0].Unhealthy == 3
	}, 10*time.Second, 20*time.Millisecond)

	// Lists hold only what is inside the scope, whatever filter is asked.
	page, err := reader.ListAssessments(ctx, nil)
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.Equal(t, "/subscriptions/s1/vm1", page.Items[0].ResourceID)
	page, err = reader.ListAssessments(ctx, map[string][]string{"scope": {"/subscriptions/s2"}})
	require.NoError(t, err)
	require.Empty(t, page.Items)
	page, err = reader.ListAssessments(ctx, map[string][]string{"resource": {"/subscriptions/s2/vm2"}})
	require.NoError(t, err)
	require.Empty(t, page.Items)
	res, err := reader.ListResources(ctx, nil)
	require.NoError(t, err)
	require.Len(t, res.Items, 1)
	recs, err := reader.ListRecommendations(ctx, nil)
	require.NoError(t, err)
	require.Len(t, recs.Items, 1, "rec-b has nothing in s1")
	require.Equal(t, 1, recs.Items[0].Unhealthy, "counts cover the scope only")
	rec, err := reader.GetRecommendation(ctx, "rec-a", nil)
	require.NoError(t, err)
	require.Equal(t, 1, rec.Unhealthy)
	require.Len(t, rec.Affected.Items, 1)
	_, err = reader.GetRecommendation(ctx, "rec-b", nil)
	requireRefused(t, err, 404, "")
	assignments, err := reader.ListAssignments(ctx, map[string][]string{"state": {"all"}})
	require.NoError(t, err)
	require.Empty(t, assignments.Items)
	integrations, err := reader.ListIntegrations(ctx)
	require.NoError(t, err)
	require.Empty(t, integrations.Items)

	// Single records outside answer 404, for reading and for changing.
	status, _ := rawAs(t, b.url, reader, "GET", fmt.Sprintf("/api/v1/assessments/%d", idOf["/subscriptions/s2/vm2"]))
	require.Equal(t, 404, status)
	status, _ = rawAs(t, b.url, reader, "GET", "/api/v1/resources/subscriptions/s10/vm4")
	require.Equal(t, 404, status)
	_, err = reader.GetAssignment(ctx, outside.ID)
	requireRefused(t, err, 404, "")
	_, err = reader.GetIntegration(ctx, otherIn.ID)
	requireRefused(t, err, 404, "")
	_, err = contrib.UpdateAssignment(ctx, outside.ID, apiclient.AssignmentRequest{Owner: "mallory@example.com"})
	requireRefused(t, err, 404, "")
	_, err = contrib.DeleteAssignment(ctx, outside.ID, "")
	requireRefused(t, err, 404, "")
	_, err = contrib.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: idOf["/subscriptions/s2/vm3"], Owner: "mallory@example.com", RemediationTimeframeDays: 7})
	requireRefused(t, err, 404, "")
	_, err = owner.UpdateIntegration(ctx, otherIn.ID, apiclient.IntegrationRequest{Name: ptrTo("renamed")})
	requireRefused(t, err, 404, "")
	got, err := b.client.GetAssignment(ctx, outside.ID)
	require.NoError(t, err)
	require.Equal(t, "bob@example.com", got.Owner, "nothing outside changed")

	// Inside the scope, work goes on as usual.
	inside, err := contrib.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: idOf["/subscriptions/s1/vm1"], Owner: "carol@example.com", RemediationTimeframeDays: 7})
	require.NoError(t, err)
	d, err := reader.GetAssignment(ctx, inside.ID)
	require.NoError(t, err)
	require.Equal(t, "s1-contrib", d.History[0].Actor)

	// A batch with one record outside is refused whole.
	_, err = contrib.PostAssessments(ctx, bytes.NewReader(batch(
		row("rec-c", "High", "/subscriptions/s1/vm9", "Unhealthy"),
		row("rec-c", "High", "/subscriptions/s2/vm9", "Unhealthy"))))
	requireRefused(t, err, 403, "record 2")
	after, err := b.client.ListAssessments(ctx, nil)
	require.NoError(t, err)
	require.Len(t, after.Items, len(all.Items), "nothing stored")
	_, err = contrib.UploadImport(ctx, strings.NewReader(`{"assessments":[]}`), 18, "x.json", "")
	requireRefused(t, err, 403, "POST /api/v1/assessments")

	// What spans every scope is refused outright.
	_, err = owner.ListAudit(ctx, nil)
	requireRefused(t, err, 403, "audit log")
	_, err = owner.CreateToken(ctx, steward.TokenCreate{Name: "escalate", Role: steward.RoleOwner})
	requireRefused(t, err, 403, "tokens")
	_, err = owner.CreateIntegration(ctx, apiclient.IntegrationRequest{Name: ptrTo("wide"), Scope: ptrTo("/"),
		InstanceURL: ptrTo("https://wide.service-now.example"), AuthMode: ptrTo("basic"), Username: ptrTo("svc"), Password: ptrTo("pw"), SkipValidation: true})
	requireRefused(t, err, 403, "scope")
}

func ptrTo[T any](v T) *T { return &v }

// rawAs sends a bodiless request with c's token (apiclient has no call for
// every route in every shape).
func rawAs(t *testing.T, base string, c *apiclient.Client, method, path string) (int, string) {
	t.Helper()
	got := call(t, method, base+path, c.Token(), nil)
	return got.status, got.code
}

// TestRefusedWebhooksAreLimited: a sender that keeps failing the webhook
// signature is limited per address like failed authentications, so the
// signature cannot be guessed at speed either.
func TestRefusedWebhooksAreLimited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in, err := b.client.CreateIntegration(t.Context(), apiclient.IntegrationRequest{Name: ptrTo("hooked"), Scope: ptrTo("/"),
		InstanceURL: ptrTo("https://hooked.service-now.example"), AuthMode: ptrTo("basic"), Username: ptrTo("svc"), Password: ptrTo("pw"),
		WebhookSecret: ptrTo("webhook-secret"), SkipValidation: true})
	require.NoError(t, err)
	url := fmt.Sprintf("%s/api/v1/integrations/%d/events", b.url, in.ID)
	var last answer
	for range 60 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Steward-Timestamp", fmt.Sprint(time.Now().Unix()))
		req.Header.Set("X-Signature-SHA256", "Z3Vlc3M=")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		last = answer{status: resp.StatusCode, header: resp.Header}
	}
	require.Equal(t, http.StatusTooManyRequests, last.status)
	require.Equal(t, "60", last.header.Get("Retry-After"))
}
