package scc

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/securitycenter/apiv2/securitycenterpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/source/pull/pulltest"
)

const (
	org         = "1081635000895"
	orgParent   = "organizations/" + org + "/sources/-/locations/global"
	accessToken = "ya29.test-access-token-do-not-leak"
)

// fakeSCC is a local Security Command Center v2 REST endpoint and OAuth
// token endpoint. It answers ListFindings the way the service does: the
// state filter applied, pages with nextPageToken, enums as numbers when
// $alt asks for enum-encoding=int, errors as Google's JSON error object.
type fakeSCC struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	results  []*Result
	pageSize int
	// fault, when set, may answer a ListFindings request itself (page is
	// 1-based, attempt counts the requests for that page).
	fault      func(w http.ResponseWriter, page, attempt int) bool
	tokenFault func(w http.ResponseWriter) bool
	attempts   map[int]int
	matches    map[string][]*Result // by parent and filter; reset by mutate
	requests   []*http.Request
	tokens     int
	// cachePages keeps each encoded page (benchmarks: the timed pulls
	// measure the client; warm it with one untimed pull).
	cachePages bool
	pages      map[string][]byte
	// serverNanos is the time the handler spent answering.
	serverNanos atomic.Int64
}

func loadResults(t *testing.T) []*Result {
	t.Helper()
	f, err := os.Open(filepath.Join("../../../testdata/scc", "findings.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var out []*Result
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r Result
		require.NoError(t, protojson.Unmarshal(sc.Bytes(), &r))
		out = append(out, &r)
	}
	require.NoError(t, sc.Err())
	return out
}

func newFakeSCC(t *testing.T) *fakeSCC {
	f := &fakeSCC{t: t, results: loadResults(t), pageSize: 3, attempts: map[int]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func googleError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

func (f *fakeSCC) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { f.serverNanos.Add(int64(time.Since(start))) }()
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/token" {
		f.tokens++
		if f.tokenFault != nil && f.tokenFault(w) {
			return
		}
		require.NoError(f.t, r.ParseForm())
		if r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.Form.Get("assertion") == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, accessToken)
		return
	}
	f.requests = append(f.requests, r)
	parent, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v2/"), "/findings")
	if r.Method != http.MethodGet || !ok {
		googleError(w, http.StatusNotFound, "NOT_FOUND", "no such method")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+accessToken {
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
		return
	}
	q := r.URL.Query()
	offset := 0
	if tok := q.Get("pageToken"); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "offset-"))
		if err != nil {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "invalid page token")
			return
		}
		offset = n
	}
	page := offset/f.pageSize + 1
	f.attempts[page]++
	if f.fault != nil && f.fault(w, page, f.attempts[page]) {
		return
	}
	key := parent + "\x00" + q.Get("filter")
	match, ok := f.matches[key]
	if !ok {
		for _, res := range f.results {
			if !strings.HasPrefix(parent, "organizations/") && !strings.Contains(res.GetFinding().GetCanonicalName(), strings.Split(parent, "/sources/")[0]) {
				continue
			}
			if strings.Contains(q.Get("filter"), `state="ACTIVE"`) && res.GetFinding().GetState() != securitycenterpb.Finding_ACTIVE {
				continue
			}
			match = append(match, res)
		}
		if f.matches == nil {
			f.matches = map[string][]*Result{}
		}
		f.matches[key] = match
	}
	size := f.pageSize
	if n, _ := strconv.Atoi(q.Get("pageSize")); n > 0 && n < size {
		size = n
	}
	end := min(offset+size, len(match))
	resp := &securitycenterpb.ListFindingsResponse{TotalSize: int32(len(match))}
	if offset < len(match) {
		resp.ListFindingsResults = match[offset:end]
	}
	if end < len(match) {
		resp.NextPageToken = "offset-" + strconv.Itoa(end)
	}
	cacheKey := key + "\x00" + strconv.Itoa(offset) + "\x00" + strconv.Itoa(size) + "\x00" + q.Get("$alt")
	b, cached := f.pages[cacheKey]
	if !cached {
		mo := protojson.MarshalOptions{UseEnumNumbers: strings.Contains(q.Get("$alt"), "enum-encoding=int")}
		var err error
		b, err = mo.Marshal(resp)
		require.NoError(f.t, err)
		if f.cachePages {
			if f.pages == nil {
				f.pages = map[string][]byte{}
			}
			f.pages[cacheKey] = b
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (f *fakeSCC) setState(category string, state securitycenterpb.Finding_State) {
	f.mutate(category, func(r *Result) { r.Finding.State = state })
}

// mutate changes the findings of a category (copies: a page already
// served keeps what it said).
func (f *fakeSCC) mutate(category string, change func(*Result)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.matches = nil
	for i, r := range f.results {
		if r.GetFinding().GetCategory() == category {
			c := proto.Clone(r).(*Result)
			change(c)
			f.results[i] = c
		}
	}
}

var testKey = sync.OnceValue(func() []byte {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
})

// serviceAccountKey is a service account key file whose token_uri is the
// fake's token endpoint.
func (f *fakeSCC) serviceAccountKey() secret.String {
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "web-prod", "private_key_id": "0123456789abcdef",
		"private_key": string(testKey()), "client_email": "steward-reader@web-prod.iam.gserviceaccount.com",
		"client_id": "104857600000000000001", "token_uri": f.srv.URL + "/token",
	})
	return secret.New(string(b))
}

func (f *fakeSCC) puller(t *testing.T, s Settings) *puller {
	t.Helper()
	if s.Parent == "" {
		s.Parent = "organizations/" + org
	}
	s.Endpoint, s.Local = f.srv.URL, true
	p, err := newPuller(s, Secrets{CredentialsJSON: f.serviceAccountKey()}, pull.Env{HTTPClient: f.srv.Client()})
	require.NoError(t, err)
	p.backoff = func(int) time.Duration { return time.Millisecond }
	return p
}

func unitIDs(units []pull.Unit) []string {
	var out []string
	for _, u := range units {
		out = append(out, u.ID)
	}
	slices.Sort(out)
	return out
}

func keys(obs []steward.Observation) []string {
	var out []string
	for _, o := range obs {
		out = append(out, o.Recommendation.Key+" "+o.Resource.Name)
	}
	slices.Sort(out)
	return out
}

// requireNoSecret checks that no error text carries the key or the token.
func requireNoSecret(t *testing.T, f *fakeSCC, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err == nil {
			continue
		}
		for _, s := range []string{"PRIVATE KEY", accessToken, string(testKey()[40:80])} {
			require.NotContains(t, err.Error(), s)
			require.NotContains(t, steward.ErrorMessage(err), s)
		}
	}
}

func TestPullPages(t *testing.T) {
	t.Parallel()
	f := newFakeSCC(t)
	sink := pulltest.NewSink()
	require.NoError(t, f.puller(t, Settings{}).Pull(t.Context(), sink))
	require.Empty(t, sink.Violations)
	require.Empty(t, sink.FailedUnits)

	// 11 results: 2 INACTIVE are filtered out by the service, 1 is on AWS.
	require.Equal(t, []string{"data-staging", "organizations/" + org, "web-prod"}, unitIDs(sink.DoneUnits))
	require.Equal(t, []string{
		"scc:MFA_NOT_ENFORCED example.com",
	}, keys(sink.Observations["organizations/"+org]))
	require.Equal(t, []string{
		"scc:OPEN_FIREWALL allow-all-ingress",
		"scc:PUBLIC_BUCKET_ACL web-prod-assets",
		"scc:PUBLIC_IP_ADDRESS web-1",
		"scc:Persistence: IAM Anomalous Grant web-prod",
	}, keys(sink.Observations["web-prod"]))
	require.Equal(t, []string{
		"scc:AUDIT_LOGGING_DISABLED data-staging",
		"scc:BUCKET_LOGGING_DISABLED data-staging-exports",
		"scc:OS_VULNERABILITY etl-worker-3",
	}, keys(sink.Observations["data-staging"]))
	for _, u := range sink.DoneUnits {
		switch u.ID {
		case "web-prod":
			require.Equal(t, steward.Scope("/gcp/projects/web-prod"), u.Scope)
		case "organizations/" + org:
			require.Equal(t, steward.Scope("/gcp/organizations/"+org), u.Scope)
		}
		for _, o := range sink.Observations[u.ID] {
			require.True(t, u.Scope.Contains(o.Resource.ID), o.Resource.ID)
		}
	}

	// Three pages of 3, the state filter sent, the token fetched once
	// through the Env's client and sent on every request.
	require.Len(t, f.requests, 3)
	for i, r := range f.requests {
		require.Equal(t, "/v2/"+orgParent+"/findings", r.URL.Path)
		require.Equal(t, `state="ACTIVE"`, r.URL.Query().Get("filter"))
		require.Equal(t, "1000", r.URL.Query().Get("pageSize"))
		require.Equal(t, "json;enum-encoding=int", r.URL.Query().Get("$alt"), "enums answered as numbers")
		if i > 0 {
			require.Equal(t, "offset-"+strconv.Itoa(3*i), r.URL.Query().Get("pageToken"))
		}
	}
	require.Equal(t, 1, f.tokens)
}

func TestPullPageErrorMidRun(t *testing.T) {
	t.Parallel()
	f := newFakeSCC(t)
	f.fault = func(w http.ResponseWriter, page, attempt int) bool {
		if page == 2 {
			googleError(w, http.StatusInternalServerError, "INTERNAL", "Internal error encountered.")
			return true
		}
		return false
	}
	sink := pulltest.NewSink()
	require.NoError(t, f.puller(t, Settings{}).Pull(t.Context(), sink))
	require.Empty(t, sink.Violations)
	require.Empty(t, sink.DoneUnits)
	// Page 1 held web-prod's bucket, firewall and instance; data-staging
	// and the organization were not seen yet: no unit, nothing gone.
	require.Equal(t, []string{"web-prod"}, slices.Sorted(func(yield func(string) bool) {
		for id := range sink.FailedUnits {
			if !yield(id) {
				return
			}
		}
	}))
	err := sink.FailedUnits["web-prod"]
	require.Equal(t, steward.CodeUnavailable, steward.ErrorCode(err))
	require.Contains(t, err.Error(), "ListFindings "+orgParent+", page 2")
	require.Contains(t, err.Error(), "HTTP 500")
	require.Equal(t, maxAttempts, f.attempts[2], "retried, bounded")
	requireNoSecret(t, f, err)
}

func TestPullFirstPageErrorFailsThePull(t *testing.T) {
	t.Parallel()
	f := newFakeSCC(t)
	f.fault = func(w http.ResponseWriter, page, attempt int) bool {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid filter.")
		return true
	}
	sink := pulltest.NewSink()
	err := f.puller(t, Settings{}).Pull(t.Context(), sink)
	require.Error(t, err)
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
	require.Contains(t, err.Error(), "page 1 (HTTP 400: Invalid filter.)")
	require.Equal(t, 1, f.attempts[1], "a 400 is not retried")
	require.Empty(t, sink.DoneUnits)
	require.Empty(t, sink.FailedUnits)
}

func TestPullRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFakeSCC(t)
	f.fault = func(w http.ResponseWriter, page, attempt int) bool {
		if page == 2 && attempt == 1 {
			w.Header().Set("Retry-After", "1")
			googleError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Read requests'.")
			return true
		}
		return false
	}
	p := f.puller(t, Settings{})
	p.backoff = func(int) time.Duration { return time.Hour } // Retry-After wins
	sink := pulltest.NewSink()
	start := time.Now()
	require.NoError(t, p.Pull(t.Context(), sink))
	require.GreaterOrEqual(t, time.Since(start), time.Second, "waited what Retry-After said")
	require.Empty(t, sink.Violations)
	require.Empty(t, sink.FailedUnits)
	require.Len(t, sink.DoneUnits, 3)
	require.Equal(t, 2, f.attempts[2])
	require.Len(t, sink.All(), 8)
}

func TestPullRetryAfterTooLong(t *testing.T) {
	t.Parallel()
	f := newFakeSCC(t)
	f.fault = func(w http.ResponseWriter, page, attempt int) bool {
		if page == 2 {
			w.Header().Set("Retry-After", "3600")
			googleError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "Quota exceeded.")
			return true
		}
		return false
	}
	sink := pulltest.NewSink()
	require.NoError(t, f.puller(t, Settings{}).Pull(t.Context(), sink))
	require.Equal(t, 1, f.attempts[2], "an hour is not waited for")
	require.Equal(t, steward.CodeUnavailable, steward.ErrorCode(sink.FailedUnits["web-prod"]))
	require.Contains(t, sink.FailedUnits["web-prod"].Error(), "HTTP 429")
	require.Empty(t, sink.DoneUnits)
}

func TestPullRefusedCredentials(t *testing.T) {
	t.Parallel()
	t.Run("token endpoint", func(t *testing.T) {
		t.Parallel()
		f := newFakeSCC(t)
		f.tokenFault = func(w http.ResponseWriter) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`))
			return true
		}
		sink := pulltest.NewSink()
		err := f.puller(t, Settings{}).Pull(t.Context(), sink)
		require.Error(t, err)
		require.Equal(t, steward.CodeUnauthorized, steward.ErrorCode(err))
		require.Contains(t, err.Error(), "Google refused the credentials (token endpoint: invalid_grant: Invalid JWT Signature.)")
		require.Contains(t, err.Error(), "page 1")
		require.Equal(t, 1, f.tokens, "a refused credential is not retried")
		require.Empty(t, f.requests)
		require.Empty(t, sink.FailedUnits)
		requireNoSecret(t, f, err)
	})
	for _, tc := range []struct {
		code int
		want steward.Code
		text string
	}{
		{http.StatusUnauthorized, steward.CodeUnauthorized, "refused the credentials (HTTP 401)"},
		{http.StatusForbidden, steward.CodeForbidden, "roles/securitycenter.findingsViewer"},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			t.Parallel()
			f := newFakeSCC(t)
			f.fault = func(w http.ResponseWriter, page, attempt int) bool {
				googleError(w, tc.code, "PERMISSION_DENIED", "The caller does not have permission")
				return true
			}
			// Listed projects are units, but a credential refused before
			// anything was read fails the pull, not the units.
			sink := pulltest.NewSink()
			err := f.puller(t, Settings{Projects: []string{"web-prod"}}).Pull(t.Context(), sink)
			require.Error(t, err)
			require.Equal(t, tc.want, steward.ErrorCode(err))
			require.Contains(t, err.Error(), tc.text)
			require.Contains(t, err.Error(), "ListFindings "+orgParent+", page 1")
			require.Equal(t, 1, f.attempts[1])
			require.Empty(t, sink.FailedUnits)
			require.Empty(t, sink.DoneUnits)
			requireNoSecret(t, f, err)
		})
	}
}

// A finding that turns inactive between two pulls is not listed by the
// second; its project is still Done, so the runner marks it gone.
func TestPullFindingGoneBetweenPulls(t *testing.T) {
	t.Parallel()
	f := newFakeSCC(t)
	p := f.puller(t, Settings{})
	first := pulltest.NewSink()
	require.NoError(t, p.Pull(t.Context(), first))
	require.Contains(t, keys(first.Observations["web-prod"]), "scc:OPEN_FIREWALL allow-all-ingress")

	f.setState("OPEN_FIREWALL", securitycenterpb.Finding_INACTIVE)
	second := pulltest.NewSink()
	require.NoError(t, p.Pull(t.Context(), second))
	require.Empty(t, second.Violations)
	require.NotContains(t, keys(second.Observations["web-prod"]), "scc:OPEN_FIREWALL allow-all-ingress")
	require.Len(t, second.Observations["web-prod"], len(first.Observations["web-prod"])-1)
	require.Contains(t, unitIDs(second.DoneUnits), "web-prod")

	// When a project's last active finding goes, the project is not
	// listed at all: only a project named in projects stays a unit.
	f.setState("MFA_NOT_ENFORCED", securitycenterpb.Finding_INACTIVE)
	for _, c := range []string{"AUDIT_LOGGING_DISABLED", "BUCKET_LOGGING_DISABLED", "OS_VULNERABILITY"} {
		f.setState(c, securitycenterpb.Finding_INACTIVE)
	}
	third := pulltest.NewSink()
	require.NoError(t, f.puller(t, Settings{Projects: []string{"data-staging", "web-prod"}}).Pull(t.Context(), third))
	require.Empty(t, third.Violations)
	require.Equal(t, []string{"data-staging", "web-prod"}, unitIDs(third.DoneUnits))
	require.Empty(t, third.Observations["data-staging"])
}

func TestPullProjectsAndFilter(t *testing.T) {
	t.Parallel()
	f := newFakeSCC(t)
	sink := pulltest.NewSink()
	require.NoError(t, f.puller(t, Settings{Projects: []string{"web-prod", "quiet-project"}}).Pull(t.Context(), sink))
	require.Empty(t, sink.Violations)
	require.Equal(t, []string{"quiet-project", "web-prod"}, unitIDs(sink.DoneUnits))
	require.Len(t, sink.Observations["web-prod"], 4)
	require.Empty(t, sink.Observations["data-staging"])

	// A filter narrows the pull: units end Failed, nothing is gone.
	f.requests = nil
	sink = pulltest.NewSink()
	require.NoError(t, f.puller(t, Settings{Filter: `category="OPEN_FIREWALL"`}).Pull(t.Context(), sink))
	require.Empty(t, sink.Violations)
	require.Empty(t, sink.DoneUnits)
	require.NotEmpty(t, sink.FailedUnits)
	for _, err := range sink.FailedUnits {
		require.Contains(t, err.Error(), "the filter narrows the pull")
	}
	require.Equal(t, `state="ACTIVE" AND (category="OPEN_FIREWALL")`, f.requests[0].URL.Query().Get("filter"))

	// A project parent lists that project, which is always a unit.
	f.requests = nil
	sink = pulltest.NewSink()
	require.NoError(t, f.puller(t, Settings{Parent: "projects/quiet-project"}).Pull(t.Context(), sink))
	require.Equal(t, "/v2/projects/quiet-project/sources/-/locations/global/findings", f.requests[0].URL.Path)
	require.Equal(t, []string{"quiet-project"}, unitIDs(sink.DoneUnits))
}

func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"organizations/123":                            "organizations/123/sources/-/locations/global",
		"/folders/456/":                                "folders/456/sources/-/locations/global",
		"projects/web-prod":                            "projects/web-prod/sources/-/locations/global",
		"organizations/123/sources/-":                  "organizations/123/sources/-/locations/global",
		"organizations/123/sources/987":                "organizations/123/sources/987/locations/global",
		"organizations/123/sources/-/locations/eu":     "organizations/123/sources/-/locations/eu",
		"projects/web-prod/sources/-/locations/us":     "projects/web-prod/sources/-/locations/us",
		"organizations/123/sources/-/locations/global": "organizations/123/sources/-/locations/global",
	} {
		s := Settings{Parent: in}
		require.NoError(t, s.Validate(), in)
		require.Equal(t, want, s.Parent)
	}
	for _, tc := range []struct {
		s     Settings
		field string
		text  string
	}{
		{Settings{Parent: ""}, "parent", "is not organizations/<number>"},
		{Settings{Parent: "organizations/acme"}, "parent", "named by its number"},
		{Settings{Parent: "organizations/1/findings"}, "parent", "is not"},
		{Settings{Parent: "organizations/1", Projects: []string{"Web Prod"}}, "projects", "not a project ID"},
		{Settings{Parent: "organizations/1", Endpoint: "https://securitycenter.example.com", Local: true}, "endpoint", "loopback"},
		{Settings{Parent: "organizations/1", Endpoint: "http://127.0.0.1:8080"}, "local", "set local: true"},
		{Settings{Parent: "organizations/1", Local: true}, "local", "set endpoint or drop local"},
		{Settings{Parent: "organizations/1", Endpoint: "http://user:pw@127.0.0.1:8080", Local: true}, "endpoint", "must not carry"},
		{Settings{Parent: "organizations/1", Endpoint: "http://127.0.0.1:8080/v2", Local: true}, "endpoint", "must not carry"},
		{Settings{Parent: "organizations/1", Endpoint: "127.0.0.1:8080", Local: true}, "endpoint", "is not a URL"},
	} {
		err := tc.s.Validate()
		require.Error(t, err, "%+v", tc.s)
		require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
		require.Equal(t, tc.field, steward.ErrorField(err), err.Error())
		require.Contains(t, err.Error(), tc.text)
	}
	ok := Settings{Parent: "organizations/1", Endpoint: "http://[::1]:8080", Local: true, Projects: []string{"web-prod", "web-prod", "example.com:corp-proj"}}
	require.NoError(t, ok.Validate())
	require.Equal(t, []string{"web-prod", "example.com:corp-proj"}, ok.Projects)
}

func TestSecretsValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, Secrets{}.Validate(Settings{}))
	leak := `{"type":"authorized_user","client_secret":"s3cr3t-value","refresh_token":"1//refresh"}`
	err := Secrets{CredentialsJSON: secret.New(leak)}.Validate(Settings{})
	require.Error(t, err)
	require.Equal(t, "credentials_json", steward.ErrorField(err))
	require.NotContains(t, err.Error(), "s3cr3t-value")
	err = Secrets{CredentialsJSON: secret.New("not json s3cr3t-value")}.Validate(Settings{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cr3t-value")

	f := newFakeSCC(t)
	require.NoError(t, Secrets{CredentialsJSON: f.serviceAccountKey()}.Validate(Settings{}))
	_, err = New(Settings{Parent: "organizations/1", Endpoint: "https://evil.example.com", Local: true}, Secrets{CredentialsJSON: f.serviceAccountKey()}, pull.Env{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "PRIVATE KEY")
}

func TestRetryAfterHeader(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{"2": 2 * time.Second, "Sat, 28 Nov 2026 12:00:30 GMT": 30 * time.Second, "Sat, 28 Nov 2026 11:00:00 GMT": 0} {
		d, ok := retryAfter(http.Header{"Retry-After": {v}}, now)
		require.True(t, ok, v)
		require.Equal(t, want, d, v)
	}
	_, ok := retryAfter(http.Header{"Retry-After": {"soon"}}, now)
	require.False(t, ok)
}

// A page the service answers with something that is not a
// ListFindingsResponse, or with a finding that cannot be mapped, fails the
// units seen so far, naming the page (and finding).
func TestPullBrokenPage(t *testing.T) {
	t.Parallel()
	f := newFakeSCC(t)
	f.fault = func(w http.ResponseWriter, page, attempt int) bool {
		if page == 2 {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"listFindingsResults": [{"finding": {"state": "ACTIVE"`))
			return true
		}
		return false
	}
	sink := pulltest.NewSink()
	require.NoError(t, f.puller(t, Settings{}).Pull(t.Context(), sink))
	require.Empty(t, sink.Violations)
	require.Empty(t, sink.DoneUnits)
	err := sink.FailedUnits["web-prod"]
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
	require.Contains(t, err.Error(), "the answer to ListFindings "+orgParent+", page 2 is not a ListFindingsResponse")
	require.Equal(t, 1, f.attempts[2])

	// The third active finding (page 1) has lost its category.
	f = newFakeSCC(t)
	f.mutate("PUBLIC_IP_ADDRESS", func(r *Result) { r.Finding.Category = "" })
	sink = pulltest.NewSink()
	require.NoError(t, f.puller(t, Settings{}).Pull(t.Context(), sink))
	require.Empty(t, sink.Violations)
	require.Empty(t, sink.DoneUnits)
	err = sink.FailedUnits["web-prod"]
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
	require.Contains(t, err.Error(), "ListFindings "+orgParent+", page 1, finding 3 (organizations/"+org+"/sources/2960810226735133461/locations/global/findings/1a2b3c4d5e6f708192a3b4c5d6e7f809): finding.category is missing")
	require.Len(t, f.requests, 1, "the pull stops at the broken page")
}

func TestSecretsValidateKey(t *testing.T) {
	t.Parallel()
	f := newFakeSCC(t)
	var key map[string]string
	require.NoError(t, json.Unmarshal([]byte(f.serviceAccountKey().Reveal()), &key))
	key["private_key"] = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IHMzY3IzdA==\n-----END PRIVATE KEY-----\n"
	b, _ := json.Marshal(key)
	err := Secrets{CredentialsJSON: secret.New(string(b))}.Validate(Settings{})
	require.Error(t, err)
	require.Equal(t, "credentials_json", steward.ErrorField(err))
	require.Contains(t, err.Error(), "private_key is not a PEM-encoded RSA private key")
	require.NotContains(t, err.Error(), "bm90IGEga2V5")
}

// Without credentials_json the source uses Application Default Credentials,
// here a key file named by GOOGLE_APPLICATION_CREDENTIALS.
func TestPullApplicationDefaultCredentials(t *testing.T) {
	f := newFakeSCC(t)
	path := filepath.Join(t.TempDir(), "key.json")
	require.NoError(t, os.WriteFile(path, []byte(f.serviceAccountKey().Reveal()), 0o600))
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", path)
	p, err := newPuller(Settings{Parent: "projects/web-prod", Endpoint: f.srv.URL, Local: true}, Secrets{}, pull.Env{HTTPClient: f.srv.Client()})
	require.NoError(t, err)
	sink := pulltest.NewSink()
	require.NoError(t, p.Pull(t.Context(), sink))
	require.Empty(t, sink.Violations)
	require.Equal(t, 1, f.tokens)
	require.Equal(t, []string{"web-prod"}, unitIDs(sink.DoneUnits))

	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	err = p.Pull(t.Context(), pulltest.NewSink())
	require.Error(t, err)
	require.Equal(t, steward.CodeUnauthorized, steward.ErrorCode(err))
	require.Contains(t, err.Error(), "no Application Default Credentials")
}

// A server that cannot be reached is retried (bounded) and reported
// unavailable.
func TestPullUnreachable(t *testing.T) {
	t.Parallel()
	f := newFakeSCC(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	p := f.puller(t, Settings{})
	p.settings.Endpoint = closed.URL
	tries := 0
	p.backoff = func(int) time.Duration { tries++; return time.Millisecond }
	err := p.Pull(t.Context(), pulltest.NewSink())
	require.Error(t, err)
	require.Equal(t, steward.CodeUnavailable, steward.ErrorCode(err))
	require.Contains(t, err.Error(), "page 1 failed after 5 attempts")
	require.Equal(t, maxAttempts-1, tries)
}

// A cancelled context stops the pull (also while waiting to retry) and is
// returned; no unit is ended.
func TestPullContextCancelled(t *testing.T) {
	t.Parallel()
	f := newFakeSCC(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f.fault = func(w http.ResponseWriter, page, attempt int) bool {
		if page == 2 {
			cancel()
			w.Header().Set("Retry-After", "30")
			googleError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable.")
			return true
		}
		return false
	}
	sink := pulltest.NewSink()
	start := time.Now()
	err := f.puller(t, Settings{}).Pull(ctx, sink)
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), 20*time.Second)
	require.Empty(t, sink.DoneUnits)
	require.Empty(t, sink.FailedUnits)
}

// BenchmarkPull200k pulls 200,000 findings (200 pages of 1,000) from the
// local server. One untimed pull has the server encode and keep its pages;
// the timed pulls measure the client, and the server's own time is reported
// apart (server-ns/op).
func BenchmarkPull200k(b *testing.B) {
	t := &testing.T{}
	base := loadResults(t)
	var results []*Result
	want := 0
	for i := range 200_000 {
		if base[i%len(base)].GetResource().GetAwsMetadata() == nil {
			want++
		}
		r := proto.Clone(base[i%len(base)]).(*Result)
		r.Finding.ResourceName += "-" + strconv.Itoa(i)
		r.Finding.Name += strconv.Itoa(i)
		r.Finding.State = securitycenterpb.Finding_ACTIVE
		results = append(results, r)
	}
	f := &fakeSCC{t: t, results: results, pageSize: 1000, attempts: map[int]int{}, cachePages: true}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	defer f.srv.Close()
	p, err := newPuller(Settings{Parent: "organizations/" + org, Endpoint: f.srv.URL, Local: true},
		Secrets{CredentialsJSON: f.serviceAccountKey()}, pull.Env{HTTPClient: f.srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Pull(b.Context(), pulltest.NewSink()); err != nil {
		b.Fatal(err)
	}
	f.serverNanos.Store(0)
	pulls := 0
	b.ResetTimer()
	for b.Loop() {
		pulls++
		sink := pulltest.NewSink()
		if err := p.Pull(b.Context(), sink); err != nil {
			b.Fatal(err)
		}
		if n := len(sink.All()); n != want {
			b.Fatalf("%d observations", n)
		}
	}
	b.ReportMetric(float64(f.serverNanos.Load())/float64(pulls), "server-ns/op")
}
