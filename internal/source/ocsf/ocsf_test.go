package ocsf_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/ocsf"
	"github.com/stewardhq/steward/internal/source/stewardjson"
)

var update = flag.Bool("update", false, "rewrite testdata/findings/*.golden.json")

const dir = "../../../testdata/findings"

func parseAll(t *testing.T, r []byte) ([]steward.Observation, error) {
	t.Helper()
	var out []steward.Observation
	err := ocsf.Parser{}.Parse(t.Context(), bytes.NewReader(r), func(o steward.Observation) error {
		out = append(out, o)
		return nil
	})
	return out, err
}

// golden renders observations as a Steward JSON document, sorted by
// recommendation key then resource ID, ties in input order.
func golden(t *testing.T, obs []steward.Observation) []byte {
	t.Helper()
	sorted := slices.Clone(obs)
	slices.SortStableFunc(sorted, func(a, b steward.Observation) int {
		return cmp.Or(cmp.Compare(a.Recommendation.Key, b.Recommendation.Key), cmp.Compare(a.Resource.ID, b.Resource.ID))
	})
	doc := struct {
		Version     int                      `json:"version"`
		Assessments []stewardjson.Assessment `json:"assessments"`
	}{Version: stewardjson.Version}
	for _, o := range sorted {
		doc.Assessments = append(doc.Assessments, stewardjson.FromObservation(o))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(doc))
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"prowler_example_output_aws.ocsf", "prowler_example_output_azure.ocsf", "prowler_example_output_gcp.ocsf"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in, err := os.ReadFile(filepath.Join(dir, name+".json"))
			require.NoError(t, err)
			obs, err := parseAll(t, in)
			require.NoError(t, err)
			require.Len(t, obs, 5)
			got := golden(t, obs)
			path := filepath.Join(dir, name+".golden.json")
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))

			// The golden file is itself valid Steward JSON that parses back
			// to the same observations.
			var back []steward.Observation
			require.NoError(t, stewardjson.Parser{}.Parse(t.Context(), bytes.NewReader(want), func(o steward.Observation) error {
				back = append(back, o)
				return nil
			}))
			require.Equal(t, string(got), string(golden(t, back)))
		})
	}
}

func TestMapping(t *testing.T) {
	t.Parallel()
	in, err := os.ReadFile(filepath.Join(dir, "prowler_example_output_aws.ocsf.json"))
	require.NoError(t, err)
	obs, err := parseAll(t, in)
	require.NoError(t, err)

	o := obs[0]
	require.Equal(t, "prowler:aws:accessanalyzer_enabled", o.Recommendation.Key)
	require.Equal(t, "/aws/accounts/<account_uid>/regions/<region>/<resource_uid>", o.Resource.ID)
	require.Equal(t, steward.CloudAWS, o.Resource.Cloud)
	require.Equal(t, steward.SeverityLow, o.Recommendation.Severity)
	require.Equal(t, steward.StatusUnhealthy, o.Status)
	require.Equal(t, "IAM", o.Recommendation.Category)
	require.Equal(t, "prowler", o.Recommendation.Source)
	require.True(t, strings.HasPrefix(o.Recommendation.Remediation, "Enable IAM Access Analyzer"))
	require.Contains(t, o.Recommendation.Remediation, "\n\nReferences:\n- aws accessanalyzer create-analyzer")
	// "time" (epoch seconds) wins over the zoneless, local-time time_dt.
	require.Equal(t, time.Unix(1739539623, 0).UTC(), o.ObservedAt)

	require.Equal(t, steward.StatusNotApplicable, obs[1].Status, "MANUAL")
	require.Equal(t, "/aws/accounts/<account_uid>/regions/<region>/arn:aws:iam::<account_uid>:root", obs[1].Resource.ID)
	require.True(t, steward.Scope("/aws/accounts/<account_uid>").Contains(obs[1].Resource.ID))
}

func TestResourceID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		title    string
		cloud    steward.Cloud
		provider string
		account  string
		region   string
		res      ocsf.Resource
		want     string
	}{
		{"aws arn", steward.CloudAWS, "aws", "123456789012", "eu-west-1",
			ocsf.Resource{UID: "arn:aws:s3:::bucket/key", Region: "us-east-1"},
			"/aws/accounts/123456789012/regions/us-east-1/arn:aws:s3:::bucket/key"},
		{"aws region from finding", steward.CloudAWS, "aws", "1", "eu-west-1", ocsf.Resource{UID: "i-1"}, "/aws/accounts/1/regions/eu-west-1/i-1"},
		{"aws no region", steward.CloudAWS, "aws", "1", "", ocsf.Resource{UID: "i-1"}, "/aws/accounts/1/regions/global/i-1"},
		{"azure resource id kept", steward.CloudAzure, "azure", "sub", "",
			ocsf.Resource{UID: "/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Web/sites/app"},
			"/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Web/sites/app"},
		{"azure bare name", steward.CloudAzure, "azure", "sub", "",
			ocsf.Resource{UID: "AppInsights", Type: "Microsoft.Insights/components"},
			"/subscriptions/sub/providers/Microsoft.Insights/components/AppInsights"},
		{"gcp", steward.CloudGCP, "gcp", "proj", "", ocsf.Resource{UID: "123", Name: "fw-1", Type: "FirewallRule"}, "/gcp/projects/proj/FirewallRule/fw-1"},
		{"gcp name fallback", steward.CloudGCP, "gcp", "proj", "", ocsf.Resource{UID: "123", Type: "a/b"}, "/gcp/projects/proj/a_b/123"},
		{"other", steward.CloudOther, "kubernetes", "ctx", "", ocsf.Resource{UID: "pod/x"}, "/kubernetes/accounts/ctx/pod/x"},
	}
	for _, tc := range tests {
		t.Run(tc.title, func(t *testing.T) {
			t.Parallel()
			got, err := ocsf.ResourceID(tc.cloud, tc.provider, tc.account, tc.region, &tc.res)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// finding is a minimal valid finding with fields overridable by edit.
func finding(edit func(m map[string]any)) map[string]any {
	m := map[string]any{
		"class_uid":    2004,
		"severity":     "High",
		"status_code":  "FAIL",
		"time":         1739539623,
		"metadata":     map[string]any{"event_code": "s3_bucket_public", "product": map[string]any{"uid": "prowler"}},
		"finding_info": map[string]any{"title": "Bucket is public"},
		"cloud":        map[string]any{"provider": "aws", "region": "eu-west-1", "account": map[string]any{"uid": "1"}},
		"resources": []any{
			map[string]any{"uid": "arn:aws:s3:::a", "labels": []any{"env:prod", "team=sec"}},
			map[string]any{"uid": "arn:aws:s3:::b", "tags": []any{map[string]any{"name": "env", "value": "dev"}}},
		},
	}
	if edit != nil {
		edit(m)
	}
	return m
}

func array(t *testing.T, findings ...map[string]any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(findings, "", " ")
	require.NoError(t, err)
	return b
}

func TestSeveralResources(t *testing.T) {
	t.Parallel()
	obs, err := parseAll(t, array(t, finding(nil)))
	require.NoError(t, err)
	require.Len(t, obs, 2)
	require.Equal(t, map[string]string{"env": "prod", "team": "sec"}, obs[0].Resource.Tags)
	require.Equal(t, map[string]string{"env": "dev"}, obs[1].Resource.Tags)
	require.Equal(t, "/aws/accounts/1/regions/eu-west-1/arn:aws:s3:::b", obs[1].Resource.ID)
}

func TestMuted(t *testing.T) {
	t.Parallel()
	obs, err := parseAll(t, array(t, finding(func(m map[string]any) { m["status"] = "Suppressed"; m["status_detail"] = "x" })))
	require.NoError(t, err)
	require.Equal(t, steward.StatusNotApplicable, obs[0].Status)
	require.Equal(t, "muted: x", obs[0].StatusReason)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	good := array(t, finding(nil), finding(nil))
	tests := []struct {
		title string
		in    []byte
		want  string
	}{
		{"empty", nil, "input is empty"},
		{"not an array", []byte(`"x"`), "record 1 (line 1): expected a JSON array of OCSF findings, found a string"},
		{"truncated", good[:len(good)-40], "unexpected end of input after record 1"},
		{"truncated after comma", append(array(t, finding(nil))[:len(array(t, finding(nil)))-1], ','), "record 2 (line 42): unexpected end of input after record 1"},
		{"malformed", []byte("[\n{\"severity\": \"High\",\n \"status_code\": FAIL}]"), "record 1 (line 3): malformed JSON at byte offset 39: invalid character 'F' looking for beginning of value"},
		{"unknown severity", array(t, finding(func(m map[string]any) { m["severity"] = "Severe" })), `record 1 (line 2): severity "Severe" is not one of Informational, Low, Medium, High, Critical`},
		{"bad status", array(t, finding(func(m map[string]any) { m["status_code"] = "MAYBE" })), `status_code "MAYBE" is not one of PASS, FAIL, MANUAL, MUTED`},
		{"no event code", array(t, finding(nil), finding(func(m map[string]any) { m["metadata"] = map[string]any{} })), "record 2 (line 42): metadata.event_code (the check ID) is missing"},
		{"no resource id", array(t, finding(func(m map[string]any) { m["resources"] = []any{map[string]any{"type": "x"}} })), "record 1 (line 2): resources[0]: uid is missing (the resource ID)"},
		{"no resources", array(t, finding(func(m map[string]any) { delete(m, "resources") })), "resources is empty"},
		{"wrong type", array(t, finding(func(m map[string]any) { m["severity"] = 4 })), "record 1 (line 2): severity: expected a string, got number"},
		{"not a finding class", array(t, finding(func(m map[string]any) { m["class_uid"] = 3002 })), "class_uid 3002 is not an OCSF finding"},
		{"trailing garbage", append(slices.Clone(good), []byte("\n]")...), "unexpected ']' after the end of the array"},
	}
	for _, tc := range tests {
		t.Run(tc.title, func(t *testing.T) {
			t.Parallel()
			_, err := parseAll(t, tc.in)
			require.Error(t, err)
			require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err), err.Error())
			require.Contains(t, steward.ErrorMessage(err), tc.want)
		})
	}
}
