package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/sample"
	"github.com/stewardhq/steward/internal/server"
)

type testBundle struct {
	srv    *server.Server
	client *apiclient.Client
	// http checks every answer against /api/openapi.json (apitest).
	http  *http.Client
	url   string
	token string
}

// authorize makes req carry the bundle's owner token.
func (b *testBundle) authorize(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+b.token)
}

// setup starts a whole Steward (store, workers, API) on a fresh SQLite file
// and a free loopback port, as `steward serve` would.
func setup(t *testing.T) *testBundle {
	t.Helper()
	b, _ := startInbound(t, nil, nil)
	return b
}

// setupOn is setup on a fresh database of st.
func setupOn(t *testing.T, st storeKind) *testBundle {
	t.Helper()
	b, _ := startInbound(t, st.configure(t), nil)
	return b
}

// batch builds a Steward JSON batch.
func batch(rows ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"assessments": rows})
	return b
}

func row(rec, sev, resource, status string) map[string]any {
	return map[string]any{
		"resource":       map[string]any{"id": resource, "cloud": "azure", "type": "Microsoft.Compute/virtualMachines"},
		"recommendation": map[string]any{"key": rec, "display_name": "Check " + rec, "severity": sev},
		"status":         status,
	}
}

func (b *testBundle) rawRequest(t *testing.T, method, path, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.url+path, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	b.authorize(req)
	resp, err := b.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(raw, &out), "body %s", raw)
	}
	return resp.StatusCode, out
}

func errorOf(t *testing.T, body map[string]any) (code, message string) {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	require.True(t, ok, "want the JSON error shape, got %v", body)
	return e["code"].(string), e["message"].(string)
}

func (b *testBundle) waitImport(t *testing.T, id int64) *apiclient.Import {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		imp, err := b.client.GetImport(t.Context(), id)
		require.NoError(t, err)
		if imp.State == "succeeded" || imp.State == "failed" {
			return imp
		}
		require.True(t, time.Now().Before(deadline), "import %d still %s", id, imp.State)
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *testBundle) recommendationCount(t *testing.T) int {
	t.Helper()
	page, err := b.client.ListRecommendations(t.Context(), url.Values{"limit": {"500"}})
	require.NoError(t, err)
	return len(page.Items)
}

func TestBatchIngest(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st storeKind) {

		t.Run("CreatesThenIsIdempotent", func(t *testing.T) {
			t.Parallel()
			b := setupOn(t, st)
			body := batch(
				row("rec-a", "High", "/subscriptions/s1/resourceGroups/rg/providers/vm1", "Unhealthy"),
				row("rec-a", "High", "/subscriptions/s1/resourceGroups/rg/providers/vm2", "Healthy"),
				row("rec-b", "Low", "/subscriptions/s1/resourceGroups/rg/providers/vm1", "NotApplicable"),
			)
			res, err := b.client.PostAssessments(t.Context(), bytes.NewReader(body))
			require.NoError(t, err)
			require.Equal(t, 3, res.Observations)
			require.Equal(t, 3, res.AssessmentsCreated)
			require.Equal(t, 2, res.ResourcesCreated)
			require.Equal(t, 2, res.RecommendationsCreated)

			res, err = b.client.PostAssessments(t.Context(), bytes.NewReader(body))
			require.NoError(t, err)
			require.Equal(t, 0, res.AssessmentsCreated)
			require.Equal(t, 0, res.StatusChanged)
			require.Equal(t, 3, res.Unchanged)
			require.Equal(t, 0, res.ResourcesCreated+res.RecommendationsCreated)
		})

		t.Run("StatusChangeRecordedWithTime", func(t *testing.T) {
			t.Parallel()
			b := setupOn(t, st)
			vm := "/subscriptions/s1/resourceGroups/rg/providers/vm1"
			_, err := b.client.PostAssessments(t.Context(), bytes.NewReader(batch(row("rec-a", "High", vm, "Unhealthy"))))
			require.NoError(t, err)
			before := time.Now().Add(-time.Second)
			res, err := b.client.PostAssessments(t.Context(), bytes.NewReader(batch(row("rec-a", "High", vm, "Healthy"))))
			require.NoError(t, err)
			require.Equal(t, 1, res.StatusChanged)

			page, err := b.client.ListAssessments(t.Context(), url.Values{"recommendation": {"rec-a"}})
			require.NoError(t, err)
			require.Len(t, page.Items, 1)
			require.Equal(t, steward.StatusHealthy, page.Items[0].Status)
			require.True(t, page.Items[0].StatusChangedAt.After(before), "status_changed_at %v", page.Items[0].StatusChangedAt)

			code, body := b.rawRequest(t, "GET", fmt.Sprintf("/api/v1/assessments/%d", page.Items[0].ID), "", nil)
			require.Equal(t, 200, code)
			changes := body["status_changes"].([]any)
			require.Len(t, changes, 1)
			ch := changes[0].(map[string]any)
			require.Equal(t, "Unhealthy", ch["from"])
			require.Equal(t, "Healthy", ch["to"])
		})

		t.Run("BadInputNamesRecordAndChangesNothing", func(t *testing.T) {
			t.Parallel()
			b := setupOn(t, st)
			_, err := b.client.PostAssessments(t.Context(), bytes.NewReader(batch(row("rec-ok", "High", "/subscriptions/s1/vm", "Unhealthy"))))
			require.NoError(t, err)

			bad := map[string]any{"resource": map[string]any{"id": "/subscriptions/s1/vm9"}, "recommendation": map[string]any{"key": "rec-new", "severity": "Severe"}, "status": "Unhealthy"}
			noID := map[string]any{"resource": map[string]any{"id": ""}, "recommendation": map[string]any{"key": "rec-new", "severity": "Low"}, "status": "Unhealthy"}
			unknownField := map[string]any{"resource": map[string]any{"id": "/x"}, "recommendation": map[string]any{"key": "k", "severity": "Low"}, "status": "Unhealthy", "colour": "red"}
			good := row("rec-new", "Low", "/subscriptions/s1/vm8", "Unhealthy")
			cases := []struct {
				name, body, wantInMessage string
			}{
				{"UnknownSeverity", string(batch(good, bad)), "record 2"},
				{"UnknownSeverityText", string(batch(good, bad)), "Severe"},
				{"MissingResourceID", string(batch(good, noID)), "resource.id"},
				{"UnknownField", string(batch(good, unknownField)), "colour"},
				{"Malformed", `{"assessments":[{"resource":}]}`, "record 1"},
				{"Truncated", string(batch(good, good))[:60], "end"},
			}
			for _, tc := range cases {
				code, body := b.rawRequest(t, "POST", "/api/v1/assessments", "application/json", []byte(tc.body))
				require.Equal(t, 400, code, tc.name)
				errCode, msg := errorOf(t, body)
				require.Equal(t, "invalid", errCode, tc.name)
				require.Contains(t, msg, tc.wantInMessage, tc.name)
			}
			require.Equal(t, 1, b.recommendationCount(t), "a failed batch must leave the store as it was")
		})
	})
}

func TestImportSamples(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st storeKind) {
		b := setupOn(t, st)

		total := 0
		for _, f := range sample.Files() {
			imp, err := b.client.UploadImport(t.Context(), bytes.NewReader(f.Data), int64(len(f.Data)), f.Name, "")
			require.NoError(t, err)
			require.Equal(t, "ocsf", imp.Format)
			imp = b.waitImport(t, imp.ID)
			require.Equal(t, "succeeded", imp.State, imp.Error)
			require.Positive(t, imp.Result.Observations)
			total += imp.Result.Observations
		}
		require.GreaterOrEqual(t, total, 15, "three Prowler samples of five findings each")

		// Re-importing the same file changes nothing.
		f := sample.Files()[0]
		imp, err := b.client.UploadImport(t.Context(), bytes.NewReader(f.Data), int64(len(f.Data)), f.Name, "ocsf")
		require.NoError(t, err)
		imp = b.waitImport(t, imp.ID)
		require.Equal(t, "succeeded", imp.State, imp.Error)
		require.Zero(t, imp.Result.AssessmentsCreated)
		require.Zero(t, imp.Result.StatusChanged)

		// Filters: each cloud's sample is found by cloud, and severity filters hold.
		for _, cloud := range []string{"aws", "azure", "gcp"} {
			page, err := b.client.ListAssessments(t.Context(), url.Values{"cloud": {cloud}})
			require.NoError(t, err)
			require.NotEmpty(t, page.Items, cloud)
			for _, a := range page.Items {
				require.Equal(t, steward.Cloud(cloud), a.Cloud)
			}
		}
		page, err := b.client.ListRecommendations(t.Context(), url.Values{"severity": {"High,Critical"}})
		require.NoError(t, err)
		for _, r := range page.Items {
			require.Contains(t, []steward.Severity{steward.SeverityHigh, steward.SeverityCritical}, r.Severity)
		}

		// Pagination walks every assessment exactly once.
		seen := map[int64]bool{}
		cursor := ""
		for {
			q := url.Values{"limit": {"4"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			p, err := b.client.ListAssessments(t.Context(), q)
			require.NoError(t, err)
			for _, a := range p.Items {
				require.False(t, seen[a.ID], "assessment %d on two pages", a.ID)
				seen[a.ID] = true
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		// Findings of one check on one resource collapse into one assessment
		// (the GCP sample repeats a placeholder firewall rule).
		require.LessOrEqual(t, len(seen), total)
		require.GreaterOrEqual(t, len(seen), 13)

		// Summaries are recomputed by a job after the import; wait for them.
		require.Eventually(t, func() bool {
			page, err := b.client.ListRecommendations(t.Context(), url.Values{"limit": {"500"}})
			require.NoError(t, err)
			sum := 0
			for _, r := range page.Items {
				sum += r.Unhealthy + r.Healthy + r.NotApplicable
			}
			return sum == len(seen)
		}, 10*time.Second, 50*time.Millisecond)

	})
}

func TestImportRejectsBadFileWhole(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st storeKind) {
		b := setupOn(t, st)

		var lines []string
		for i := range 50 {
			r, _ := json.Marshal(row(fmt.Sprintf("rec-%d", i), "Medium", fmt.Sprintf("/subscriptions/s1/vm%d", i), "Unhealthy"))
			lines = append(lines, string(r))
		}
		lines = append(lines, `{"resource":{"id":"/subscriptions/s1/vmX"},"recommendation":{"key":"k"},"status":"Unhealthy"}`)
		body := strings.Join(lines, "\n") + "\n"
		imp, err := b.client.UploadImport(t.Context(), strings.NewReader(body), int64(len(body)), "bad.jsonl", "")
		require.NoError(t, err)
		imp = b.waitImport(t, imp.ID)
		require.Equal(t, "failed", imp.State)
		require.Contains(t, imp.Error, "record 51")
		require.Contains(t, imp.Error, "line 51")
		require.Zero(t, b.recommendationCount(t), "nothing from a rejected file may be stored")
	})
}

func TestAssignments(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st storeKind) {
		b := setupOn(t, st)
		ctx := t.Context()
		_, err := b.client.PostAssessments(ctx, bytes.NewReader(batch(
			row("rec-a", "High", "/subscriptions/s1/resourceGroups/rg1/vm1", "Unhealthy"),
			row("rec-a", "High", "/subscriptions/s10/resourceGroups/rg1/vm2", "Unhealthy"),
			row("rec-b", "Low", "/subscriptions/s1/resourceGroups/rg1/vm1", "Healthy"),
		)))
		require.NoError(t, err)
		all, err := b.client.ListAssessments(ctx, url.Values{})
		require.NoError(t, err)
		byResource := map[string]steward.Assessment{}
		for _, a := range all.Items {
			byResource[a.RecommendationKey+" "+a.ResourceID] = a
		}
		vm1 := byResource["rec-a /subscriptions/s1/resourceGroups/rg1/vm1"]
		vm2 := byResource["rec-a /subscriptions/s10/resourceGroups/rg1/vm2"]
		healthy := byResource["rec-b /subscriptions/s1/resourceGroups/rg1/vm1"]

		a1, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: vm1.ID, Owner: "alice@example.com", RemediationTimeframeDays: 7, Reason: "owns the VM"})
		require.NoError(t, err)
		require.Equal(t, steward.AssignmentActive, a1.State)
		require.Equal(t, steward.DueDate(time.Now(), 7).Format(time.DateOnly), a1.DueDate.Format(time.DateOnly))
		a2, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: vm2.ID, Owner: "bob@example.com", DueDate: "2020-01-31"})
		require.NoError(t, err)

		t.Run("Refusals", func(t *testing.T) {
			_, err := b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: healthy.ID, Owner: "a@example.com", RemediationTimeframeDays: 7})
			requireAPIError(t, err, 400, "invalid")
			_, err = b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: vm1.ID, Owner: "a@example.com", RemediationTimeframeDays: 7})
			requireAPIError(t, err, 409, "conflict")
			_, err = b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: vm2.ID, Owner: "not-an-email", RemediationTimeframeDays: 7})
			requireAPIError(t, err, 400, "invalid")
			_, err = b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: 999999, Owner: "a@example.com", RemediationTimeframeDays: 7})
			requireAPIError(t, err, 404, "not_found")
			_, err = b.client.CreateAssignment(ctx, apiclient.AssignmentRequest{AssessmentID: vm1.ID, Owner: "a@example.com", ETA: "2030-01-01", RemediationTimeframeDays: 7})
			requireAPIError(t, err, 400, "invalid")
			// Validation errors name their field, for forms to show them there.
			_, err = b.client.UpdateAssignment(ctx, a1.ID, apiclient.AssignmentRequest{ETA: "2030-01-01"})
			requireAPIError(t, err, 400, "invalid")
			require.Equal(t, "eta_justification", err.(*apiclient.Error).Field)
			_, err = b.client.UpdateAssignment(ctx, a1.ID, apiclient.AssignmentRequest{Owner: "not-an-email"})
			requireAPIError(t, err, 400, "invalid")
			require.Equal(t, "owner", err.(*apiclient.Error).Field)
		})

		t.Run("Filters", func(t *testing.T) {
			page, err := b.client.ListAssignments(ctx, url.Values{"owner": {"ALICE@example.com"}})
			require.NoError(t, err)
			require.Equal(t, []int64{a1.ID}, ids(page.Items))
			page, err = b.client.ListAssignments(ctx, url.Values{"overdue": {"true"}})
			require.NoError(t, err)
			require.Equal(t, []int64{a2.ID}, ids(page.Items))
			page, err = b.client.ListAssignments(ctx, url.Values{"due_within_days": {"8"}})
			require.NoError(t, err)
			require.ElementsMatch(t, []int64{a1.ID, a2.ID}, ids(page.Items))
			// Manual assignments have no ticket, so no ticket filter keeps them
			// (the store's suite checks the filters on tickets).
			page, err = b.client.ListAssignments(ctx, url.Values{"ticket_state": {"New"}, "ticket_status": {"pending"}})
			require.NoError(t, err)
			require.Empty(t, page.Items)
			_, err = b.client.ListAssignments(ctx, url.Values{"ticket_state": {"Open"}})
			requireAPIError(t, err, 400, "invalid")
			// Segment-wise scope: s1 must not match s10.
			page, err = b.client.ListAssignments(ctx, url.Values{"scope": {"/SUBSCRIPTIONS/s1"}})
			require.NoError(t, err)
			require.Equal(t, []int64{a1.ID}, ids(page.Items))
		})

		t.Run("UpdateKeepsHistory", func(t *testing.T) {
			upd, err := b.client.UpdateAssignment(ctx, a1.ID, apiclient.AssignmentRequest{Owner: "carol@example.com", ETA: "2030-01-01", ETAJustification: "vendor patch", Reason: "team change"})
			require.NoError(t, err)
			require.Equal(t, "carol@example.com", upd.Owner)
			d, err := b.client.GetAssignment(ctx, a1.ID)
			require.NoError(t, err)
			require.Len(t, d.History, 2)
			require.Equal(t, steward.ActionCreated, d.History[0].Action)
			require.Equal(t, "owns the VM", d.History[0].Reason)
			ev := d.History[1]
			require.Equal(t, steward.ActionUpdated, ev.Action)
			require.Equal(t, "tester@example.com", ev.Actor)
			require.Equal(t, "team change", ev.Reason)
			require.Equal(t, "alice@example.com", ev.Changes["owner"].From)
			require.Equal(t, "carol@example.com", ev.Changes["owner"].To)
		})

		t.Run("CompletedWhenHealthy", func(t *testing.T) {
			res, err := b.client.PostAssessments(ctx, bytes.NewReader(batch(row("rec-a", "High", "/subscriptions/s1/resourceGroups/rg1/vm1", "Healthy"))))
			require.NoError(t, err)
			require.Equal(t, []int64{a1.ID}, res.CompletedAssignments)
			d, err := b.client.GetAssignment(ctx, a1.ID)
			require.NoError(t, err)
			require.Equal(t, steward.AssignmentCompleted, d.State)
			require.Equal(t, steward.ActionCompleted, d.History[len(d.History)-1].Action)
			page, err := b.client.ListAssignments(ctx, url.Values{})
			require.NoError(t, err)
			require.Equal(t, []int64{a2.ID}, ids(page.Items), "completed assignments leave the active list")
		})

		t.Run("RemoveKeepsHistory", func(t *testing.T) {
			ended, err := b.client.DeleteAssignment(ctx, a2.ID, "accepted risk")
			require.NoError(t, err)
			require.Equal(t, steward.AssignmentRemoved, ended.State)
			page, err := b.client.ListAssignments(ctx, url.Values{"state": {"all"}})
			require.NoError(t, err)
			require.ElementsMatch(t, []int64{a1.ID, a2.ID}, ids(page.Items))
			_, err = b.client.DeleteAssignment(ctx, a2.ID, "again")
			requireAPIError(t, err, 409, "conflict")
		})
	})
}

func TestErrorShapeAndLimits(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st storeKind) {
		b := setupOn(t, st)
		cases := []struct {
			name, method, path, contentType, body string
			status                                int
			code                                  string
		}{
			{"UnknownRoute", "GET", "/api/v1/nope", "", "", 404, "not_found"},
			{"WrongMethod", "PUT", "/api/v1/recommendations", "", "", 405, "method_not_allowed"},
			{"UnknownQueryParam", "GET", "/api/v1/recommendations?colour=red", "", "", 400, "invalid"},
			{"BadSeverityFilter", "GET", "/api/v1/recommendations?severity=Huge", "", "", 400, "invalid"},
			{"BadCursor", "GET", "/api/v1/assessments?cursor=%21%21garbage", "", "", 400, "invalid"},
			{"LimitTooLarge", "GET", "/api/v1/assessments?limit=100000", "", "", 400, "invalid"},
			{"UnknownRecommendation", "GET", "/api/v1/recommendations/nope", "", "", 404, "not_found"},
			{"BadID", "GET", "/api/v1/assignments/abc", "", "", 400, "invalid"},
			{"UnknownField", "POST", "/api/v1/assignments", "application/json", `{"assessment_id":1,"owner":"a@example.com","days":3}`, 400, "invalid"},
			{"TrailingData", "POST", "/api/v1/assignments", "application/json", `{"assessment_id":1} {}`, 400, "invalid"},
			{"WrongContentType", "POST", "/api/v1/assignments", "text/plain", `{}`, 415, "unsupported_media_type"},
			{"EmptyImport", "POST", "/api/v1/imports", "application/octet-stream", ``, 400, "invalid"},
			{"UnknownImportFormat", "POST", "/api/v1/imports", "application/octet-stream", `hello`, 400, "invalid"},
			{"TooLarge", "POST", "/api/v1/assessments", "application/json", `{"assessments":[` + strings.Repeat(" ", 17<<20) + `]}`, 413, "too_large"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				status, body := b.rawRequest(t, tc.method, tc.path, tc.contentType, []byte(tc.body))
				require.Equal(t, tc.status, status)
				code, msg := errorOf(t, body)
				require.Equal(t, tc.code, code)
				require.NotEmpty(t, msg)
			})
		}
	})
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st storeKind) {
		b := setupOn(t, st)
		for _, p := range []string{"/healthz", "/readyz"} {
			status, _ := b.rawRequest(t, "GET", p, "", nil)
			require.Equal(t, 200, status, p)
		}
		_, err := b.client.PostAssessments(t.Context(), bytes.NewReader(batch(row("rec-a", "High", "/subscriptions/s1/vm1", "Unhealthy"))))
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.url+"/metrics", nil)
			require.NoError(t, err)
			b.authorize(req)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			text := string(raw)
			return strings.Contains(text, `steward_http_request_duration_seconds_bucket{code="200",method="POST",route="/api/v1/assessments"`) &&
				strings.Contains(text, "steward_ingest_observations_total") &&
				strings.Contains(text, `steward_jobs_total{kind="recommendation_summaries_recompute",outcome="completed"}`)
		}, 10*time.Second, 100*time.Millisecond)
	})
}

func requireAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	apiErr, ok := err.(*apiclient.Error)
	require.True(t, ok, "want *apiclient.Error, got %v", err)
	require.Equal(t, status, apiErr.Status, apiErr.Message)
	require.Equal(t, code, apiErr.Code)
	require.NotEmpty(t, apiErr.Message)
}

func ids(items []steward.Assignment) []int64 {
	out := []int64{}
	for _, a := range items {
		out = append(out, a.ID)
	}
	return out
}
