package defender

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/source/pull/pulltest"
)

func testPuller(t testing.TB, srv string, mod func(*Settings)) *puller {
	t.Helper()
	s := Settings{Auth: AuthClientSecret, TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", ClientID: "11111111-2222-3333-4444-555555555555",
		Subscriptions: []string{subExample, subRecs}, Endpoint: srv, Local: true}
	if mod != nil {
		mod(&s)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := newPuller(s, &fake.TokenCredential{}, pull.Env{HTTPClient: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustPull(t *testing.T, p *puller) *pulltest.Sink {
	t.Helper()
	sink := pulltest.NewSink()
	if err := p.Pull(context.Background(), sink); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if len(sink.Violations) > 0 {
		t.Fatalf("contract violations: %v", sink.Violations)
	}
	return sink
}

func doneIDs(s *pulltest.Sink) []string {
	var ids []string
	for _, u := range s.DoneUnits {
		ids = append(ids, u.ID)
	}
	slices.Sort(ids)
	return ids
}

func find(obs []steward.Observation, key, resource string) *steward.Observation {
	for i := range obs {
		if obs[i].Recommendation.Key == key && strings.EqualFold(obs[i].Resource.ID, resource) {
			return &obs[i]
		}
	}
	return nil
}

const (
	keyEndpoint = "21300918-b2e3-0346-785f-c77ff57d243b"
	vmss1       = "/subscriptions/20ff7fc3-e762-44dd-bd96-b71116dcdc23/resourceGroups/myRg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1"
	vmss2       = "/subscriptions/20ff7fc3-e762-44dd-bd96-b71116dcdc23/resourceGroups/myRg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss2"
)

// checkExampleSubscription asserts the mapping of ListAssessments_example.json
// with ListAssessmentsMetadata_subscription_example.json's metadata.
func checkExampleSubscription(t *testing.T, obs []steward.Observation, withTags bool) {
	t.Helper()
	if len(obs) != 2 {
		t.Fatalf("%d observations in %s, want the example's 2", len(obs), subExample)
	}
	o1, o2 := find(obs, keyEndpoint, vmss1), find(obs, keyEndpoint, vmss2)
	if o1 == nil || o2 == nil {
		t.Fatalf("vmss1/vmss2 not observed: %+v", obs)
	}
	for _, o := range []*steward.Observation{o1, o2} {
		r := o.Recommendation
		if r.Source != "defender" || r.Severity != steward.SeverityMedium || r.Category != "Compute" ||
			r.DisplayName != "Install endpoint protection solution on virtual machine scale sets" ||
			!strings.HasPrefix(r.Description, "Install an endpoint protection solution on your virtual machines scale sets") ||
			!strings.HasPrefix(r.Remediation, "To install an endpoint protection solution:") {
			t.Errorf("recommendation = %+v", r)
		}
		if o.Resource.Cloud != steward.CloudAzure || o.Resource.Type != "Microsoft.Compute/virtualMachineScaleSets" {
			t.Errorf("resource = %+v", o.Resource)
		}
	}
	if o1.Status != steward.StatusHealthy || o1.StatusReason != "" || o1.Resource.Name != "vmss1" {
		t.Errorf("vmss1 = %+v", o1)
	}
	if o2.Status != steward.StatusNotApplicable || o2.Resource.Name != "vmss2" ||
		o2.StatusReason != "OffByPolicy: The effective policy for the assessment was evaluated to off - use Microsoft.Authorization/policyAssignments to turn this assessment on" {
		t.Errorf("vmss2 = %+v", o2)
	}
	if withTags {
		if o1.Resource.Tags["owner"] != "alice@contoso.com" || o1.Resource.Tags["env"] != "prod" || o1.Resource.Region != "westeurope" {
			t.Errorf("vmss1 tags/region = %v %q", o1.Resource.Tags, o1.Resource.Region)
		}
		if len(o2.Resource.Tags) != 0 {
			t.Errorf("vmss2 has tags %v, the resources table has none", o2.Resource.Tags)
		}
	}
}

// checkRecommendationSubscription asserts the 106 assessments built from the
// Defender compute recommendation list.
func checkRecommendationSubscription(t *testing.T, obs []steward.Observation, withTags bool) {
	t.Helper()
	recs := readRecommendations(t)
	if len(recs) != 106 || len(obs) != 106 {
		t.Fatalf("%d recommendations with a key, %d observations; want 106 each", len(recs), len(obs))
	}
	clouds := map[steward.Cloud]int{}
	sev := map[steward.Severity]int{}
	status := map[steward.AssessmentStatus]int{}
	for i, r := range recs {
		id, _ := recResource(i, r)
		o := find(obs, *r.AssessmentKey, id)
		if o == nil {
			t.Fatalf("recommendation %s on %s not observed", *r.AssessmentKey, id)
		}
		clouds[o.Resource.Cloud]++
		sev[o.Recommendation.Severity]++
		status[o.Status]++
		if string(o.Status) != recStatus(i) || string(o.Recommendation.Severity) != r.Severity || o.Recommendation.DisplayName != r.Name ||
			o.Recommendation.Description != r.Description || o.Recommendation.Category != "Compute" {
			t.Errorf("%s: %+v", *r.AssessmentKey, o)
		}
		if withTags && r.Cloud == "Azure" && o.Resource.Tags["owner"] == "" {
			t.Errorf("%s on %s: no owner tag", *r.AssessmentKey, id)
		}
		if withTags && r.Cloud == "AWS" && (o.Resource.Region != "eu-west-1" || o.Resource.Type != "ec2.instance" || !strings.HasPrefix(o.Resource.Name, "i-")) {
			t.Errorf("AWS resource = %+v", o.Resource)
		}
	}
	if clouds[steward.CloudAzure] != 58 || clouds[steward.CloudAWS] != 20 || clouds[steward.CloudGCP] != 28 {
		t.Errorf("clouds = %v, want azure 58, aws 20, gcp 28", clouds)
	}
	if sev[steward.SeverityHigh] != 42 || sev[steward.SeverityMedium] != 25 || sev[steward.SeverityLow] != 39 {
		t.Errorf("severities = %v, want High 42, Medium 25, Low 39", sev)
	}
	if status[steward.StatusUnhealthy] != 36 || status[steward.StatusHealthy] != 35 || status[steward.StatusNotApplicable] != 35 {
		t.Errorf("statuses = %v", status)
	}
}

func TestPullResourceGraph(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	srv := startARM(t, f)
	p := testPuller(t, srv.URL, nil)
	p.pageSize = 25 // 108 rows: 5 pages
	sink := mustPull(t, p)

	if got := doneIDs(sink); !slices.Equal(got, []string{subRecs, subExample}) || len(sink.FailedUnits) != 0 {
		t.Fatalf("done %v, failed %v", got, sink.FailedUnits)
	}
	checkExampleSubscription(t, sink.Observations[subExample], true)
	checkRecommendationSubscription(t, sink.Observations[subRecs], true)
	if n := f.counts["graph:assessments"]; n != 5 {
		t.Errorf("%d Resource Graph assessment pages read, want 5 (108 rows by 25)", n)
	}
	if f.counts["assessments"] != 0 {
		t.Errorf("the assessments API was called %d times although Resource Graph answered", f.counts["assessments"])
	}
	if got := sink.Tags["/subscriptions/"+subExample]["owner"]; got != "platform@contoso.com" {
		t.Errorf("subscription owner tag = %q", got)
	}
	if got := sink.Tags[steward.Scope("/subscriptions/"+subExample+"/resourceGroups/myRg")]; got["owner"] != "rg-owner@contoso.com" || got["costcenter"] != "42" {
		t.Errorf("resource group tags = %v", got)
	}
	if got := sink.Tags[steward.Scope("/subscriptions/"+subRecs+"/resourceGroups/rg-compute")]; got == nil || len(got) != 0 {
		t.Errorf("an untagged resource group is reported with no tags, got %v", got)
	}
}

func TestPullFallbackWhenResourceGraphForbidden(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	// vmss2's item as Assessments_Get answers it in api 2025-05-04 (with
	// its risk block): the list item of the newer API version.
	a := f.sub(subExample)
	a.assessment[1] = exampleBody(t, "GetAssessment_example.json")
	f.graphForbidden = true
	f.restPage = 10 // 106 assessments: 11 pages
	srv := startARM(t, f)
	sink := mustPull(t, testPuller(t, srv.URL, nil))

	if got := doneIDs(sink); !slices.Equal(got, []string{subRecs, subExample}) || len(sink.FailedUnits) != 0 {
		t.Fatalf("done %v, failed %v", got, sink.FailedUnits)
	}
	checkExampleSubscription(t, sink.Observations[subExample], false)
	checkRecommendationSubscription(t, sink.Observations[subRecs], false)
	if f.counts["graph:containers"] != 1 || f.counts["graph:assessments"] != 0 {
		t.Errorf("Resource Graph asked %v after its 403", f.counts)
	}
	if f.counts["assessments"] != 1+11 || f.counts["metadata"] != 1+11 {
		t.Errorf("assessments pages %d, metadata pages %d (want 12 each: 2 items, then 106 by 10)", f.counts["assessments"], f.counts["metadata"])
	}
	// AWS resources keep Defender's ID; the SDK's model of the list has no
	// place for their details, so the ID comes from the assessment's ID.
	for _, o := range sink.Observations[subRecs] {
		if o.Resource.Cloud == steward.CloudAWS && !strings.Contains(o.Resource.ID, "/securityentitydata/aws-ec2-instance-") {
			t.Errorf("AWS resource ID = %s", o.Resource.ID)
		}
	}
	if got := sink.Tags[steward.Scope("/subscriptions/"+subExample+"/resourceGroups/myRg")]; got["owner"] != "rg-owner@contoso.com" {
		t.Errorf("resource group tags through ARM = %v", got)
	}
	if got := sink.Tags["/subscriptions/"+subRecs]["owner"]; got != "compute@contoso.com" {
		t.Errorf("subscription tags through ARM = %q", got)
	}
}

func TestPullWithoutResourceGraph(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	srv := startARM(t, f)
	off := false
	sink := mustPull(t, testPuller(t, srv.URL, func(s *Settings) { s.UseResourceGraph = &off }))
	if len(sink.DoneUnits) != 2 || len(sink.All()) != 108 {
		t.Fatalf("done %v, %d observations", doneIDs(sink), len(sink.All()))
	}
	for k, n := range f.counts {
		if strings.HasPrefix(k, "graph:") && n > 0 {
			t.Errorf("use_resource_graph false, yet %s was queried %d times", k, n)
		}
	}
}

func TestPullPageErrorFailsOnlyItsUnit(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	// Page 2 of subRecs' assessments keeps failing (503, retried quickly).
	f.fault = func(w http.ResponseWriter, r *http.Request, kind string, subs []string, page int) bool {
		if kind == "graph:assessments" && slices.Contains(subs, subRecs) && page == 2 {
			w.Header().Set("retry-after-ms", "1")
			armError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "try later")
			return true
		}
		return false
	}
	srv := startARM(t, f)
	p := testPuller(t, srv.URL, nil)
	p.batchSize = 1 // one query per subscription
	p.pageSize = 50
	sink := mustPull(t, p)

	if got := doneIDs(sink); !slices.Equal(got, []string{subExample}) {
		t.Fatalf("done %v, want only %s", got, subExample)
	}
	err := sink.FailedUnits[subRecs]
	if err == nil {
		t.Fatalf("%s not failed: %v", subRecs, sink.FailedUnits)
	}
	if steward.ErrorCode(err) != steward.CodeUnavailable {
		t.Errorf("code %s, want unavailable", steward.ErrorCode(err))
	}
	msg := steward.ErrorMessage(err)
	if !strings.Contains(msg, "page 2") || !strings.Contains(msg, subRecs) || !strings.Contains(msg, "503") {
		t.Errorf("message %q does not name the page, the subscription and the answer", msg)
	}
	if n := f.counts["graph:assessments"]; n != 1+1+1+maxRetries {
		t.Errorf("%d assessment requests, want %d (example page, page 1, page 2 and %d retries)", n, 3+maxRetries, maxRetries)
	}
	checkExampleSubscription(t, sink.Observations[subExample], true)
}

func TestPullBatchPageErrorFailsTheBatch(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	f.fault = func(w http.ResponseWriter, r *http.Request, kind string, subs []string, page int) bool {
		if kind == "graph:assessments" && page == 3 {
			armError(w, http.StatusBadRequest, "InvalidSkipToken", "bad token")
			return true
		}
		return false
	}
	srv := startARM(t, f)
	p := testPuller(t, srv.URL, nil)
	p.pageSize = 20
	sink := mustPull(t, p)
	if len(sink.DoneUnits) != 0 || len(sink.FailedUnits) != 2 {
		t.Fatalf("done %v, failed %v; a page of a batch's query fails every unit it covers", doneIDs(sink), sink.FailedUnits)
	}
	if msg := steward.ErrorMessage(sink.FailedUnits[subExample]); !strings.Contains(msg, "page 3") || !strings.Contains(msg, "InvalidSkipToken") {
		t.Errorf("message %q", msg)
	}
}

func TestPullThrottledThenAnswered(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	throttled := 0
	f.fault = func(w http.ResponseWriter, r *http.Request, kind string, subs []string, page int) bool {
		if kind == "graph:assessments" && throttled == 0 {
			throttled++
			w.Header().Set("Retry-After", "1")
			armError(w, http.StatusTooManyRequests, "RateLimiting", "Please provide below info when asking for support: timestamp = ..., correlationId = ....")
			return true
		}
		return false
	}
	srv := startARM(t, f)
	start := time.Now()
	sink := mustPull(t, testPuller(t, srv.URL, nil))
	if len(sink.DoneUnits) != 2 || len(sink.All()) != 108 {
		t.Fatalf("done %v, failed %v", doneIDs(sink), sink.FailedUnits)
	}
	if f.counts["graph:assessments"] != 2 {
		t.Errorf("%d assessment requests, want 2 (the 429 and its retry)", f.counts["graph:assessments"])
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("the retry came after %v, sooner than Retry-After: 1", d)
	}
}

func TestPullThrottledLongerThanTheCap(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	f.fault = func(w http.ResponseWriter, r *http.Request, kind string, subs []string, page int) bool {
		if kind == "graph:assessments" {
			w.Header().Set("Retry-After", "3600")
			armError(w, http.StatusTooManyRequests, "RateLimiting", "quota exhausted")
			return true
		}
		return false
	}
	srv := startARM(t, f)
	sink := mustPull(t, testPuller(t, srv.URL, nil))
	if len(sink.FailedUnits) != 2 || f.counts["graph:assessments"] != 1 {
		t.Fatalf("failed %v after %d requests; a Retry-After beyond %v is not waited for", sink.FailedUnits, f.counts["graph:assessments"], maxRetryDelay)
	}
	if c := steward.ErrorCode(sink.FailedUnits[subExample]); c != steward.CodeUnavailable {
		t.Errorf("code %s, want unavailable", c)
	}
}

func TestPullExpiredToken(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	f.fault = func(w http.ResponseWriter, r *http.Request, kind string, subs []string, page int) bool {
		armError(w, http.StatusUnauthorized, "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time.")
		return true
	}
	srv := startARM(t, f)
	sink := pulltest.NewSink()
	err := testPuller(t, srv.URL, nil).Pull(context.Background(), sink)
	if steward.ErrorCode(err) != steward.CodeUnauthorized {
		t.Fatalf("Pull = %v, want an unauthorized error", err)
	}
	msg := steward.ErrorMessage(err)
	if !strings.Contains(msg, "defender source") || !strings.Contains(msg, "401") || !strings.Contains(msg, "ExpiredAuthenticationToken") {
		t.Errorf("message %q does not say which source and why", msg)
	}
	if len(sink.DoneUnits) != 0 || len(sink.All()) != 0 || len(sink.Violations) != 0 {
		t.Errorf("done %v, %d observations, violations %v", doneIDs(sink), len(sink.All()), sink.Violations)
	}
	if f.counts["graph:assessments"] != 0 || f.counts["graph:containers"] != 1 {
		t.Errorf("requests after the refusal: %v", f.counts)
	}
}

func TestPullCredentialError(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	srv := startARM(t, f)
	p := testPuller(t, srv.URL, nil)
	cred := &fake.TokenCredential{}
	cred.SetError(errorString("AADSTS700082: The refresh token has expired"))
	p.cred = cred
	err := p.Pull(context.Background(), pulltest.NewSink())
	if steward.ErrorCode(err) != steward.CodeUnauthorized || !strings.Contains(steward.ErrorMessage(err), "defender source") {
		t.Fatalf("Pull = %v", err)
	}
	if len(f.authSeen) != 0 {
		t.Errorf("%d requests sent without a token", len(f.authSeen))
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestFindingGoneBetweenPulls(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	srv := startARM(t, f)
	p := testPuller(t, srv.URL, nil)
	first := mustPull(t, p)
	if find(first.Observations[subExample], keyEndpoint, vmss1) == nil {
		t.Fatal("vmss1 not observed in the first pull")
	}
	f.removeAssessment(subExample, keyEndpoint, vmss1)
	second := mustPull(t, p)
	if find(second.Observations[subExample], keyEndpoint, vmss1) != nil {
		t.Error("vmss1 observed after it disappeared")
	}
	if len(second.Observations[subExample]) != 1 || !slices.Equal(doneIDs(second), []string{subRecs, subExample}) {
		t.Errorf("second pull: %d observations, done %v; the unit is Done so the runner marks vmss1 gone", len(second.Observations[subExample]), doneIDs(second))
	}
}

func TestPullBadRecordFailsItsUnit(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	b := f.sub(subRecs)
	b.assessment[3]["properties"].(map[string]any)["status"] = map[string]any{"code": "Mysterious"}
	srv := startARM(t, f)
	sink := mustPull(t, testPuller(t, srv.URL, nil))
	err := sink.FailedUnits[subRecs]
	if steward.ErrorCode(err) != steward.CodeInvalid {
		t.Fatalf("failed %v", sink.FailedUnits)
	}
	if msg := steward.ErrorMessage(err); !strings.Contains(msg, `"Mysterious"`) || !strings.Contains(msg, b.assessment[3]["id"].(string)) {
		t.Errorf("message %q does not name the record and what is wrong", msg)
	}
	if !slices.Equal(doneIDs(sink), []string{subExample}) {
		t.Errorf("done %v", doneIDs(sink))
	}
}

func TestPullListsSubscriptions(t *testing.T) {
	for _, forbidden := range []bool{false, true} {
		f := newFakeARM()
		loadWorld(t, f)
		f.graphForbidden = forbidden
		srv := startARM(t, f)
		sink := mustPull(t, testPuller(t, srv.URL, func(s *Settings) { s.Subscriptions = nil }))
		if got := doneIDs(sink); !slices.Equal(got, []string{subRecs, subExample}) || len(sink.All()) != 108 {
			t.Errorf("graph forbidden %v: done %v, %d observations", forbidden, got, len(sink.All()))
		}
		if forbidden && f.counts["subscriptions"] != 1 {
			t.Errorf("ARM subscriptions list asked %d times", f.counts["subscriptions"])
		}
	}
}

func TestPullFallbackWhenOnlyAssessmentsForbidden(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	f.fault = func(w http.ResponseWriter, r *http.Request, kind string, subs []string, page int) bool {
		if kind == "graph:assessments" {
			armError(w, http.StatusForbidden, "AuthorizationFailed", "no access to securityresources")
			return true
		}
		return false
	}
	srv := startARM(t, f)
	sink := mustPull(t, testPuller(t, srv.URL, nil))
	if len(sink.DoneUnits) != 2 || len(sink.All()) != 108 || f.counts["assessments"] != 3 { // 2 + 106 items by 100
		t.Fatalf("done %v, failed %v, %d observations, %d assessments API calls", doneIDs(sink), sink.FailedUnits, len(sink.All()), f.counts["assessments"])
	}
}

func TestPullSubscriptionNotVisible(t *testing.T) {
	f := newFakeARM()
	loadWorld(t, f)
	srv := startARM(t, f)
	const unseen = "33333333-3333-4333-8333-333333333333"
	sink := mustPull(t, testPuller(t, srv.URL, func(s *Settings) { s.Subscriptions = append(s.Subscriptions, unseen) }))
	if got := doneIDs(sink); !slices.Equal(got, []string{subRecs, subExample}) {
		t.Errorf("done %v", got)
	}
	err := sink.FailedUnits[unseen]
	if steward.ErrorCode(err) != steward.CodeForbidden || !strings.Contains(steward.ErrorMessage(err), unseen) {
		t.Errorf("a subscription Resource Graph does not show is failed, not done (nothing would be gone there): %v", err)
	}
}

// Resource Graph says when its quota resets in x-ms-user-quota-resets-after,
// not Retry-After: a reset beyond the retry cap is not waited for, one
// within it is.
func TestPullResourceGraphQuotaReset(t *testing.T) {
	for _, c := range []struct {
		reset    string
		requests int
		done     int
	}{{"00:05:00", 1, 0}, {"00:00:01", 2, 2}} {
		f := newFakeARM()
		loadWorld(t, f)
		throttled := false
		f.fault = func(w http.ResponseWriter, r *http.Request, kind string, subs []string, page int) bool {
			if kind == "graph:assessments" && (!throttled || c.reset == "00:05:00") {
				throttled = true
				w.Header().Set("x-ms-user-quota-remaining", "0")
				w.Header().Set("x-ms-user-quota-resets-after", c.reset)
				armError(w, http.StatusTooManyRequests, "RateLimiting", "Client application has been throttled")
				return true
			}
			return false
		}
		srv := startARM(t, f)
		start := time.Now()
		sink := mustPull(t, testPuller(t, srv.URL, nil))
		if f.counts["graph:assessments"] != c.requests || len(sink.DoneUnits) != c.done {
			t.Errorf("reset %s: %d requests, done %v, failed %v", c.reset, f.counts["graph:assessments"], doneIDs(sink), sink.FailedUnits)
		}
		if c.done > 0 && time.Since(start) < 900*time.Millisecond {
			t.Errorf("reset %s: retried after %v", c.reset, time.Since(start))
		}
	}
	for in, want := range map[string]time.Duration{"00:00:01": time.Second, "01:02:03.5": time.Hour + 2*time.Minute + 3500*time.Millisecond, "5": 0, "a:b:c": 0} {
		if got, _ := parseQuotaReset(in); got != want {
			t.Errorf("parseQuotaReset(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestPullBrokenPage(t *testing.T) {
	for _, c := range []struct {
		name, body, want string
		code             steward.Code
	}{
		{"not JSON", `{"totalRecords": 3, "data": [{"id": "/subscriptions/x`, "not a page of rows", steward.CodeInvalid},
		{"table format", `{"data": {"columns": [], "rows": []}}`, "not a page of rows", steward.CodeInvalid},
		{"truncated", `{"data": [], "resultTruncated": "true"}`, "truncated", steward.CodeUnavailable},
	} {
		f := newFakeARM()
		loadWorld(t, f)
		f.fault = func(w http.ResponseWriter, r *http.Request, kind string, subs []string, page int) bool {
			if kind == "graph:assessments" && page == 2 {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(c.body))
				return true
			}
			return false
		}
		srv := startARM(t, f)
		p := testPuller(t, srv.URL, nil)
		p.pageSize = 50
		sink := mustPull(t, p)
		if len(sink.DoneUnits) != 0 || len(sink.FailedUnits) != 2 {
			t.Errorf("%s: done %v, failed %v", c.name, doneIDs(sink), sink.FailedUnits)
			continue
		}
		err := sink.FailedUnits[subExample]
		if msg := steward.ErrorMessage(err); steward.ErrorCode(err) != c.code || !strings.Contains(msg, "page 2") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %s %q", c.name, steward.ErrorCode(err), msg)
		}
	}
}
