package securityhub

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/source/pull/pulltest"
)

const (
	testKeyID  = "AKIAFAKEEXAMPLE12345"
	testSecret = "fake/secret+key/EXAMPLEKEY0123456789"
	acctHub    = "123456789123" // the Security Hub and Prowler samples' account
	acctTrivy  = "123456789012" // the Trivy sample's account
)

// setup serves us-east-1: the 18 Security Hub findings then the 44 Trivy
// findings (two accounts in one stream); eu-west-1: the 10 Prowler findings.
// Pages hold 10 findings.
func setup(t *testing.T) (*fakeHub, Settings, Secrets, *bytes.Buffer) {
	h := newFakeHub(t)
	h.set("us-east-1", append(sample(t, "asff_sample.json"), sample(t, "trivy-image_golang-1.12-alpine_sample.json")...))
	h.set("eu-west-1", sample(t, "prowler-sample.asff-json"))
	s := Settings{Regions: []string{"us-east-1", "eu-west-1"}, Endpoint: h.URL(), Local: true}
	sec := Secrets{AccessKeyID: secret.New(testKeyID), SecretAccessKey: secret.New(testSecret)}
	return h, s, sec, &bytes.Buffer{}
}

func newTestPuller(t *testing.T, s Settings, sec Secrets, logs *bytes.Buffer) *puller {
	t.Helper()
	p, err := newPuller(s, sec, pull.Env{HTTPClient: &http.Client{Timeout: 30 * time.Second},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	p.backoff = func(int) time.Duration { return time.Millisecond }
	return p
}

func run(t *testing.T, p *puller) (*pulltest.Sink, error) {
	t.Helper()
	sink := pulltest.NewSink()
	err := p.Pull(context.Background(), sink)
	assert.Empty(t, sink.Violations)
	return sink, err
}

func unitIDs(units []pull.Unit) []string {
	var out []string
	for _, u := range units {
		out = append(out, u.ID)
	}
	return out
}

func noSecrets(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		for _, v := range []string{testKeyID, testSecret, "assumed-secret", "assumed-token"} {
			assert.NotContains(t, s, v)
		}
	}
}

func TestPullSamples(t *testing.T) {
	h, s, sec, logs := setup(t)
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err)

	assert.Equal(t, []string{acctHub + "/us-east-1", acctTrivy + "/us-east-1", acctHub + "/eu-west-1"}, unitIDs(sink.DoneUnits))
	assert.Empty(t, sink.FailedUnits)
	for _, u := range sink.DoneUnits {
		assert.Equal(t, steward.Scope("/aws/accounts/"+strings.Split(u.ID, "/")[0]), u.Scope)
	}
	assert.Len(t, sink.Observations[acctHub+"/us-east-1"], 18)
	assert.Len(t, sink.Observations[acctTrivy+"/us-east-1"], 44)
	assert.Len(t, sink.Observations[acctHub+"/eu-west-1"], 10)

	// The same mapping as file import: spot checks.
	hub := sink.Observations[acctHub+"/us-east-1"]
	assert.Equal(t, "securityhub:arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/1.1", hub[0].Recommendation.Key)
	assert.Equal(t, "/aws/accounts/123456789123/regions/us-east-1/AWS::::Account:123456789123", hub[0].Resource.ID)
	assert.Equal(t, "securityhub:S3.2", hub[17].Recommendation.Key)
	assert.Equal(t, steward.StatusHealthy, hub[17].Status)
	assert.Equal(t, steward.SeverityLow, hub[17].Recommendation.Severity)
	trivy := sink.Observations[acctTrivy+"/us-east-1"]
	assert.Equal(t, "trivy:CVE-2021-36159", trivy[0].Recommendation.Key)
	assert.Equal(t, steward.SeverityCritical, trivy[0].Recommendation.Severity)
	assert.Equal(t, "trivy", trivy[0].Recommendation.Source)
	prowler := sink.Observations[acctHub+"/eu-west-1"]
	assert.Equal(t, "prowler:prowler-check11", prowler[0].Recommendation.Key)

	// 62 findings in pages of 10, then 10 in one page of eu-west-1 (the
	// server's page is 10; the client asks for 100). A request the SDK
	// retried (a connection dropped under a loaded machine; seen once in CI)
	// re-asks a page already asked and is not a page of its own.
	reqs := firstAttempts(t, h.log())
	require.Len(t, reqs, 7+1)
	for _, r := range reqs {
		assert.True(t, r.signed, "SigV4-signed")
		assert.Equal(t, testKeyID, r.accessKey)
		assert.Equal(t, 100, r.maxResult)
		require.Len(t, r.filters["RecordState"], 1, "record_state defaults to ACTIVE")
		assert.Equal(t, "ACTIVE", r.filters["RecordState"][0].Value)
	}
	assert.Equal(t, "us-east-1", reqs[0].region)
	assert.Equal(t, "eu-west-1", reqs[7].region)
	noSecrets(t, logs.String())
}

// firstAttempts drops the SDK's retries of a request, checking each one
// repeats a page already asked.
func firstAttempts(t *testing.T, reqs []hubRequest) []hubRequest {
	t.Helper()
	var out []hubRequest
	asked := map[string]bool{}
	for _, r := range reqs {
		page := r.region + "/" + r.nextToken
		if r.attempt > 1 {
			t.Logf("the SDK retried page %q (attempt %d)", page, r.attempt)
			assert.True(t, asked[page], "a retry repeats a page already asked: %q", page)
			continue
		}
		assert.False(t, asked[page], "page %q asked twice as a first attempt", page)
		asked[page] = true
		out = append(out, r)
	}
	return out
}

func TestPageErrorMidRun(t *testing.T) {
	h, s, sec, logs := setup(t)
	// Page 2 of us-east-1 holds Security Hub findings 11–18 and the first
	// two Trivy findings; it fails, so the Trivy account is never named.
	h.fail["us-east-1/2"] = hubError{400, "InvalidInputException", "the page broke"}
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err, "a region's failure does not stop the pull")

	assert.Empty(t, sink.DoneUnits)
	require.Contains(t, sink.FailedUnits, acctHub+"/us-east-1")
	assert.NotContains(t, sink.FailedUnits, acctTrivy+"/us-east-1", "an account the stream had not named yet gets no unit")
	assert.Len(t, sink.Observations[acctHub+"/us-east-1"], 10, "page 1 was read")

	e := sink.FailedUnits[acctHub+"/us-east-1"]
	assert.Equal(t, steward.CodeInvalid, steward.ErrorCode(e))
	assert.Contains(t, steward.ErrorMessage(e), "GetFindings in us-east-1, page 2")
	assert.Contains(t, steward.ErrorMessage(e), "InvalidInputException")

	// eu-west-1 was read completely, but its unit's scope is the whole
	// account, part of which us-east-1 did not give: not Done.
	assert.Len(t, sink.Observations[acctHub+"/eu-west-1"], 10)
	require.Contains(t, sink.FailedUnits, acctHub+"/eu-west-1")
	assert.Contains(t, steward.ErrorMessage(sink.FailedUnits[acctHub+"/eu-west-1"]), "reading region us-east-1 failed")
}

func TestServerErrorRetriedThenFails(t *testing.T) {
	h, s, sec, logs := setup(t)
	s.Regions = []string{"eu-west-1"}
	h.fail["eu-west-1/1"] = hubError{500, "InternalException", "internal error"}
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	// No account was named, so no unit can say it: Pull does.
	require.Error(t, err)
	assert.Equal(t, steward.CodeUnavailable, steward.ErrorCode(err))
	assert.Contains(t, steward.ErrorMessage(err), "GetFindings in eu-west-1, page 1: Security Hub did not answer (HTTP 500 InternalException) after 5 attempts")
	assert.Empty(t, sink.DoneUnits)
	assert.Empty(t, sink.FailedUnits)
	assert.Len(t, h.log(), maxAttempts)
}

func TestMalformedPageAddsNothing(t *testing.T) {
	h, s, sec, logs := setup(t)
	s.Regions = []string{"eu-west-1"}
	findings := sample(t, "prowler-sample.asff-json")
	findings[7] = json.RawMessage(strings.Replace(string(findings[7]), `"Label":"HIGH"`, `"Label":"SEVERE"`, 1))
	h.set("eu-west-1", findings)
	h.pageSize = 5
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err)
	assert.Len(t, sink.Observations[acctHub+"/eu-west-1"], 5, "page 1 only: nothing of the page with the bad finding")
	e := sink.FailedUnits[acctHub+"/eu-west-1"]
	require.Error(t, e)
	assert.Equal(t, steward.CodeInvalid, steward.ErrorCode(e))
	assert.Contains(t, steward.ErrorMessage(e), "GetFindings in eu-west-1, page 2, finding 3")
	assert.Contains(t, steward.ErrorMessage(e), `Severity.Label "SEVERE"`)
}

func TestThrottledThenSuccess(t *testing.T) {
	h, s, sec, logs := setup(t)
	s.Regions = []string{"eu-west-1"}
	h.throttle, h.retryAfter = 1, "1"
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err)
	assert.Equal(t, []string{acctHub + "/eu-west-1"}, unitIDs(sink.DoneUnits))
	assert.Len(t, sink.Observations[acctHub+"/eu-west-1"], 10)
	reqs := h.log()
	require.Len(t, reqs, 2)
	assert.GreaterOrEqual(t, reqs[1].at.Sub(reqs[0].at), time.Second, "Retry-After: 1 was waited for")
	assert.Equal(t, []int{1, 2}, []int{reqs[0].attempt, reqs[1].attempt}, "the fake hub reads the SDK's attempt header")
	assert.Len(t, firstAttempts(t, reqs), 1)
}

func TestThrottledWithoutRetryAfterUsesBackoff(t *testing.T) {
	h, s, sec, logs := setup(t)
	s.Regions = []string{"eu-west-1"}
	h.throttle = 2
	p := newTestPuller(t, s, sec, logs)
	var attempts []int
	p.backoff = func(a int) time.Duration { attempts = append(attempts, a); return time.Millisecond }
	sink, err := run(t, p)
	require.NoError(t, err)
	assert.Len(t, sink.DoneUnits, 1)
	assert.Equal(t, []int{1, 2}, attempts)
}

func TestThrottledPastRetries(t *testing.T) {
	h, s, sec, logs := setup(t)
	h.pageSize = 50
	// us-east-1 page 1 is read, page 2 throttled for good; eu-west-1 is fine.
	h.fail["us-east-1/2"] = hubError{429, "ThrottlingException", "Rate exceeded"}
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err)
	e := sink.FailedUnits[acctHub+"/us-east-1"]
	require.Error(t, e)
	assert.Equal(t, steward.CodeUnavailable, steward.ErrorCode(e))
	assert.Contains(t, steward.ErrorMessage(e), "GetFindings in us-east-1, page 2: still throttled (ThrottlingException) after 5 attempts")
	assert.Empty(t, sink.DoneUnits)
}

func TestRetryAfterTooLong(t *testing.T) {
	h, s, sec, logs := setup(t)
	s.Regions = []string{"eu-west-1"}
	h.throttle, h.retryAfter = 100, "600"
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.Error(t, err)
	assert.Equal(t, steward.CodeUnavailable, steward.ErrorCode(err))
	assert.Contains(t, steward.ErrorMessage(err), "GetFindings in eu-west-1, page 1: throttled; the service asked to retry after 10m0s, longer than the 1m0s this source waits")
	assert.Empty(t, sink.DoneUnits)
	assert.Len(t, h.log(), 1, "a 10-minute Retry-After is not waited for")
}

func TestRefusedCredentials(t *testing.T) {
	h, s, sec, logs := setup(t)
	// The service's message echoes the key ID, as some AWS errors do.
	h.fail["*"] = hubError{403, "UnrecognizedClientException", "The security token included in the request is invalid: " + testKeyID}
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.Error(t, err)
	assert.Equal(t, steward.CodeUnauthorized, steward.ErrorCode(err))
	assert.Contains(t, steward.ErrorMessage(err), "AWS refused the credentials (UnrecognizedClientException) for GetFindings in us-east-1, page 1")
	noSecrets(t, err.Error(), steward.ErrorMessage(err), logs.String())
	assert.Empty(t, sink.DoneUnits)
	assert.Empty(t, sink.FailedUnits)
	assert.Len(t, h.log(), 1, "not retried")
}

func TestAccessDeniedNamesPermission(t *testing.T) {
	h, s, sec, logs := setup(t)
	h.fail["*"] = hubError{403, "AccessDeniedException", "User: arn:aws:iam::123456789123:user/x is not authorized to perform: securityhub:GetFindings"}
	_, err := run(t, newTestPuller(t, s, sec, logs))
	require.Error(t, err)
	assert.Equal(t, steward.CodeForbidden, steward.ErrorCode(err))
	assert.Contains(t, steward.ErrorMessage(err), "securityhub:GetFindings")
}

func TestGoneBetweenPulls(t *testing.T) {
	h, s, sec, logs := setup(t)
	s.Regions = []string{"eu-west-1"}
	p := newTestPuller(t, s, sec, logs)
	first, err := run(t, p)
	require.NoError(t, err)
	key := func(o steward.Observation) string { return o.Recommendation.Key + " " + o.Resource.ID }
	var before []string
	for _, o := range first.All() {
		before = append(before, key(o))
	}
	assert.Contains(t, before, "prowler:prowler-check11 /aws/accounts/123456789123/regions/us-east-1/AWS::::Account:123456789123")

	// check11's finding is archived in Security Hub: the ACTIVE filter
	// leaves it out of the next pull, whose unit is Done, so the runner
	// marks it gone.
	findings := sample(t, "prowler-sample.asff-json")
	findings[0] = json.RawMessage(strings.Replace(string(findings[0]), `"RecordState":"ACTIVE"`, `"RecordState":"ARCHIVED"`, 1))
	h.set("eu-west-1", findings)
	second, err := run(t, p)
	require.NoError(t, err)
	assert.Equal(t, []string{acctHub + "/eu-west-1"}, unitIDs(second.DoneUnits))
	var after []string
	for _, o := range second.All() {
		after = append(after, key(o))
	}
	assert.Len(t, second.All(), 9)
	assert.NotContains(t, after, "prowler:prowler-check11 /aws/accounts/123456789123/regions/us-east-1/AWS::::Account:123456789123")
}

func TestListedAccountWithoutFindingsIsDone(t *testing.T) {
	h, s, sec, logs := setup(t)
	s.Regions = []string{"eu-west-1"}
	s.Accounts = []string{acctHub, "999999999999"}
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{acctHub + "/eu-west-1", "999999999999/eu-west-1"}, unitIDs(sink.DoneUnits))
	reqs := h.log()
	require.Len(t, reqs[0].filters["AwsAccountId"], 2)
}

func TestNarrowingFiltersFailUnits(t *testing.T) {
	h, s, sec, logs := setup(t)
	s.Regions = []string{"us-east-1"}
	s.SeverityLabels = []string{"critical", "HIGH"}
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err)
	assert.Len(t, sink.Observations[acctTrivy+"/us-east-1"], 32, "3 CRITICAL + 29 HIGH")
	assert.Empty(t, sink.DoneUnits)
	assert.Contains(t, steward.ErrorMessage(sink.FailedUnits[acctTrivy+"/us-east-1"]), "severity_labels filter narrows the pull")
	assert.Equal(t, []string{"CRITICAL", "HIGH"}, []string{h.log()[0].filters["SeverityLabel"][0].Value, h.log()[0].filters["SeverityLabel"][1].Value})

	// workflow_status with NEW and NOTIFIED keeps Done.
	s.SeverityLabels = nil
	s.WorkflowStatus = []string{"NEW", "NOTIFIED"}
	sink, err = run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err)
	assert.Len(t, sink.DoneUnits, 1, "the Trivy findings have no workflow: only the Security Hub account's NEW findings match")
	assert.Len(t, sink.Observations[acctHub+"/us-east-1"], 17)
}

func TestAssumeRole(t *testing.T) {
	h, s, sec, logs := setup(t)
	s.Regions = []string{"eu-west-1"}
	s.RoleARN = "arn:aws:iam::123456789123:role/steward-reader"
	h.stsKey = "ASIAASSUMEDEXAMPLE"
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err)
	assert.Len(t, sink.DoneUnits, 1)
	assert.Equal(t, 1, h.assumed)
	reqs := h.log()
	require.NotEmpty(t, reqs)
	assert.Equal(t, "ASIAASSUMEDEXAMPLE", reqs[0].accessKey, "GetFindings signed with the role's credentials")
	assert.Equal(t, "assumed-token", reqs[0].token)
}

func TestContextCanceled(t *testing.T) {
	_, s, sec, logs := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sink := pulltest.NewSink()
	err := newTestPuller(t, s, sec, logs).Pull(ctx, sink)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestSettingsValidate(t *testing.T) {
	ok := func() Settings { return Settings{Regions: []string{"eu-west-1"}} }
	s := ok()
	require.NoError(t, s.Validate())
	assert.Equal(t, []string{"ACTIVE"}, s.RecordState, "default")

	cases := []struct {
		name  string
		edit  func(*Settings)
		field string
		want  string
	}{
		{"no regions", func(s *Settings) { s.Regions = nil }, "regions", "regions is missing"},
		{"bad region", func(s *Settings) { s.Regions = []string{"europe"} }, "regions", `"europe" is not an AWS region`},
		{"bad account", func(s *Settings) { s.Accounts = []string{"12"} }, "accounts", "12-digit"},
		{"bad record state", func(s *Settings) { s.RecordState = []string{"OPEN"} }, "record_state", "ACTIVE or ARCHIVED"},
		{"bad workflow", func(s *Settings) { s.WorkflowStatus = []string{"OPEN"} }, "workflow_status", "NEW, NOTIFIED"},
		{"bad severity", func(s *Settings) { s.SeverityLabels = []string{"SEVERE"} }, "severity_labels", "INFORMATIONAL"},
		{"bad role", func(s *Settings) { s.RoleARN = "steward-reader" }, "role_arn", "IAM role ARN"},
		{"external id alone", func(s *Settings) { s.ExternalID = "abc" }, "external_id", "role_arn"},
		{"remote endpoint", func(s *Settings) { s.Endpoint, s.Local = "https://securityhub.example.com", true }, "endpoint", "loopback"},
		{"loopback without local", func(s *Settings) { s.Endpoint = "http://127.0.0.1:9000" }, "local", "set local: true"},
		{"local without endpoint", func(s *Settings) { s.Local = true }, "local", "only for an endpoint"},
		{"endpoint with credentials", func(s *Settings) { s.Endpoint, s.Local = "http://u:p@127.0.0.1:9000", true }, "endpoint", "must not carry credentials"},
		{"not a url", func(s *Settings) { s.Endpoint, s.Local = "127.0.0.1:9000", true }, "endpoint", "is not a URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok()
			c.edit(&s)
			err := s.Validate()
			require.Error(t, err)
			assert.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
			assert.Equal(t, c.field, steward.ErrorField(err))
			assert.Contains(t, steward.ErrorMessage(err), c.want)
		})
	}
	for _, local := range []string{"http://127.0.0.1:9000", "http://[::1]:9000", "http://localhost:9000"} {
		s := ok()
		s.Endpoint, s.Local = local, true
		assert.NoError(t, s.Validate(), local)
	}
	// New refuses what Validate refuses.
	_, err := New(Settings{Regions: []string{"eu-west-1"}, Endpoint: "https://evil.example.com", Local: true}, Secrets{}, pull.Env{})
	assert.Equal(t, "endpoint", steward.ErrorField(err))
}

func TestSecretsValidate(t *testing.T) {
	s := Settings{Regions: []string{"eu-west-1"}}
	k, v := secret.New(testKeyID), secret.New(testSecret)
	assert.NoError(t, Secrets{}.Validate(s), "default credential chain")
	assert.NoError(t, Secrets{AccessKeyID: k, SecretAccessKey: v}.Validate(s))
	assert.NoError(t, Secrets{AccessKeyID: k, SecretAccessKey: v, SessionToken: secret.New("t")}.Validate(s))
	for _, c := range []struct {
		sec   Secrets
		field string
	}{
		{Secrets{AccessKeyID: k}, "secret_access_key"},
		{Secrets{SecretAccessKey: v}, "access_key_id"},
		{Secrets{SessionToken: secret.New("t")}, "session_token"},
	} {
		err := c.sec.Validate(s)
		assert.Equal(t, c.field, steward.ErrorField(err))
		noSecrets(t, err.Error())
	}
	b, err := json.Marshal(Secrets{AccessKeyID: k, SecretAccessKey: v})
	require.NoError(t, err)
	noSecrets(t, string(b))
}

func TestRegionWithoutSecurityHub(t *testing.T) {
	h, s, sec, logs := setup(t)
	// eu-west-1 is read first and names the account; us-east-1 is not
	// subscribed.
	s.Regions = []string{"eu-west-1", "us-east-1"}
	h.fail["us-east-1/1"] = hubError{400, "InvalidAccessException", "Account 123456789123 is not subscribed to AWS Security Hub"}
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err)
	e := sink.FailedUnits[acctHub+"/eu-west-1"]
	require.Error(t, e)
	assert.Equal(t, steward.CodeForbidden, steward.ErrorCode(e))
	assert.Contains(t, steward.ErrorMessage(e), "Security Hub is not enabled for the account in this region")
}

func TestRetryAfterOf(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	answer := func(v string) error {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 429, Header: h}}, Err: io.EOF}
	}
	for _, c := range []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"3", 3 * time.Second, true},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"soon", 0, false},
		{"-1", 0, false},
	} {
		d, ok := retryAfterOf(answer(c.header), now)
		assert.Equal(t, c.ok, ok, c.header)
		assert.Equal(t, c.want, d, c.header)
	}
	_, ok := retryAfterOf(io.EOF, now)
	assert.False(t, ok)
}

func TestSDKDecodeSameAsDirect(t *testing.T) {
	// Pages are decoded straight into asff.Finding; an answer that does not
	// decode so is left to the SDK and converted with fromSDK. Both must
	// map every sample finding alike.
	_, s, sec, logs := setup(t)
	direct, err := run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err)
	p := newTestPuller(t, s, sec, logs)
	p.sdkDecode = true
	viaSDK, err := run(t, p)
	require.NoError(t, err)
	require.Len(t, viaSDK.All(), 72)
	for id, obs := range direct.Observations {
		assert.Equal(t, obs, viaSDK.Observations[id], id)
	}
}

func TestBrokenPage(t *testing.T) {
	h, s, sec, logs := setup(t)
	s.Regions = []string{"eu-west-1"}
	h.pageSize = 5
	h.broken = map[string]string{"eu-west-1/2": `{"Findings": [{"Id": `}
	sink, err := run(t, newTestPuller(t, s, sec, logs))
	require.NoError(t, err)
	assert.Len(t, sink.Observations[acctHub+"/eu-west-1"], 5)
	e := sink.FailedUnits[acctHub+"/eu-west-1"]
	require.Error(t, e)
	assert.Equal(t, steward.CodeInvalid, steward.ErrorCode(e))
	assert.Contains(t, steward.ErrorMessage(e), "GetFindings in eu-west-1, page 2: the answer is not a GetFindings page")
}
