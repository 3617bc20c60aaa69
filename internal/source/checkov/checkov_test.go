package checkov_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/checkov"
)

const dir = "../../../testdata/checkov"

func parseAll(t testing.TB, in []byte) ([]steward.Observation, error) {
	t.Helper()
	var out []steward.Observation
	err := checkov.Parser{}.Parse(context.Background(), bytes.NewReader(in), func(o steward.Observation) error {
		out = append(out, o)
		return nil
	})
	return out, err
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	return b
}

func TestSynthetic(t *testing.T) {
	t.Parallel()
	obs, err := parseAll(t, readFile(t, "checkov_synthetic.json"))
	require.NoError(t, err)
	require.Len(t, obs, 3, "one passed, one failed, one skipped; the parsing error makes none")

	// Input order: passed_checks, failed_checks, skipped_checks.
	passed, failed, skipped := obs[0], obs[1], obs[2]

	require.Equal(t, steward.StatusHealthy, passed.Status)
	require.Equal(t, "checkov:CKV_AWS_41", passed.Recommendation.Key)
	require.Equal(t, "Ensure no hard coded AWS access key and secret key exists in provider", passed.Recommendation.DisplayName)
	require.Equal(t, steward.SeverityMedium, passed.Recommendation.Severity, "severity null: Medium")
	require.Equal(t, "/repos/unknown/files/main.tf/aws_provider.default", passed.Resource.ID)
	require.Equal(t, "aws_provider.default", passed.Resource.Name)
	require.Equal(t, "aws_provider", passed.Resource.Type)
	require.Equal(t, "", passed.StatusReason)
	require.Equal(t, "References:\n- https://docs.prismacloud.io/en/enterprise-edition/policy-reference/aws-policies/aws-general-policies/bc-aws-secrets-5", passed.Recommendation.Remediation)

	require.Equal(t, steward.StatusUnhealthy, failed.Status)
	require.Equal(t, "checkov:CKV_AWS_150", failed.Recommendation.Key)
	require.Equal(t, "Ensure that Load Balancer has deletion protection enabled", failed.Recommendation.DisplayName)
	require.Equal(t, steward.SeverityHigh, failed.Recommendation.Severity)
	require.Equal(t, "/repos/unknown/files/alb/main.tf/module.alb.aws_lb.main", failed.Resource.ID)
	require.Equal(t, "aws_lb", failed.Resource.Type)
	require.Equal(t, map[string]string{"Name": "test-alb"}, failed.Resource.Tags)
	require.Equal(t, steward.CloudOther, failed.Resource.Cloud)
	require.Equal(t, "failed in alb/main.tf lines 1-8", failed.StatusReason)

	require.Equal(t, steward.StatusNotApplicable, skipped.Status)
	require.Equal(t, "checkov:CKV_AWS_18", skipped.Recommendation.Key)
	require.Equal(t, "/repos/unknown/files/s3/main.tf/aws_s3_bucket.example", skipped.Resource.ID)
	require.Equal(t, "skipped: Logging handled externally", skipped.StatusReason)
	require.Equal(t, steward.SeverityMedium, skipped.Recommendation.Severity)
	require.Empty(t, skipped.Recommendation.Remediation, "guideline null")

	for _, o := range obs {
		require.Equal(t, "checkov", o.Recommendation.Source)
		require.True(t, o.ObservedAt.IsZero())
	}
}

func check(id, file, resource string, extra map[string]any) map[string]any {
	c := map[string]any{"check_id": id, "check_name": "Check " + id, "file_path": file, "repo_file_path": file, "resource": resource, "file_line_range": []int{1, 2}}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func report(typ string, failed, passed []any) map[string]any {
	return map[string]any{"check_type": typ, "results": map[string]any{"failed_checks": failed, "passed_checks": passed, "skipped_checks": []any{}, "parsing_errors": []any{}},
		"summary": map[string]any{"passed": len(passed), "failed": len(failed)}}
}

// checkov with several frameworks writes an array of reports.
func TestArrayOfReports(t *testing.T) {
	t.Parallel()
	in, err := json.Marshal([]any{
		report("terraform", []any{check("CKV_AWS_20", "/s3.tf", "aws_s3_bucket.logs", map[string]any{"severity": "CRITICAL", "entity_tags": map[string]any{"owner": "ops@example.com", "cost": 3, "none": nil}})}, nil),
		report("kubernetes", []any{check("CKV_K8S_8", "k8s/deploy.yaml", "Deployment.default.web", map[string]any{"severity": "INFO"})},
			[]any{check("CKV_K8S_9", "k8s/deploy.yaml", "Deployment.default.web", nil)}),
		report("secrets", []any{check("CKV_SECRET_6", "/app/.env", "", map[string]any{"severity": "LOW"})}, nil),
		// Both frameworks report the same pair: the worst status wins.
		report("terraform_plan", nil, []any{check("CKV_AWS_20", "s3.tf", "aws_s3_bucket.logs", nil)}),
	})
	require.NoError(t, err)
	obs, err := parseAll(t, in)
	require.NoError(t, err)
	var got []string
	for _, o := range obs {
		got = append(got, strings.Join([]string{o.Recommendation.Key, o.Resource.ID, string(o.Recommendation.Severity), string(o.Status), o.Resource.Type}, " "))
	}
	require.Equal(t, []string{
		"checkov:CKV_AWS_20 /repos/unknown/files/s3.tf/aws_s3_bucket.logs Critical Unhealthy aws_s3_bucket",
		"checkov:CKV_K8S_8 /repos/unknown/files/k8s/deploy.yaml/Deployment.default.web Low Unhealthy ",
		"checkov:CKV_K8S_9 /repos/unknown/files/k8s/deploy.yaml/Deployment.default.web Medium Healthy ",
		"checkov:CKV_SECRET_6 /repos/unknown/files/app/.env Low Unhealthy file",
	}, got)
	require.Equal(t, map[string]string{"owner": "ops@example.com", "cost": "3", "none": ""}, obs[0].Resource.Tags)
}

// A scan that finds nothing writes only the summary.
func TestSummaryOnly(t *testing.T) {
	t.Parallel()
	in := []byte(`{"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0, "checkov_version": "3.2.506"}`)
	require.True(t, checkov.Sniff(in))
	obs, err := parseAll(t, in)
	require.NoError(t, err)
	require.Empty(t, obs)
	obs, err = parseAll(t, []byte(`[]`))
	require.NoError(t, err)
	require.Empty(t, obs)
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	good := `{"check_id": "CKV_1", "file_path": "/a.tf", "resource": "aws_s3_bucket.a"}`
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "\n", "input is empty (want a Checkov JSON report)"},
		{"not a report", `{"assessments": []}`, "record 1 (line 1): the report is not a Checkov report"},
		{"string", `"x"`, "record 1 (line 1): expected a Checkov report object or an array of them, found a string"},
		{"truncated", `{"check_type": "terraform", "results": {"failed_checks": [` + good + `, {"check_id": "CKV_2"`, "record 2 (line 1): unexpected end of input after record 1"},
		{"bad json", "{\"check_type\": \"terraform\", \"results\": {\"failed_checks\": [" + good + ",\n" + `{"check_id": "CKV_2" "file_path": "x"}]}}`, "record 2 (line 2): malformed JSON at byte offset"},
		{"no check id", `{"results": {"passed_checks": [` + good + `, {"file_path": "/a.tf"}]}}`, "record 2 (line 1): check_id is missing"},
		{"no file", `{"results": {"passed_checks": [{"check_id": "CKV_1"}]}}`, "record 1 (line 1): file_path is missing"},
		{"bad severity", `{"results": {"failed_checks": [{"check_id": "CKV_1", "file_path": "a", "severity": "SEVERE"}]}}`, `record 1 (line 1): severity "SEVERE" is not one of INFO, LOW, MEDIUM, HIGH, CRITICAL`},
		{"wrong type", `{"results": {"failed_checks": [{"check_id": 12}]}}`, "record 1 (line 1): check_id: expected a string, got number"},
		{"check not object", `{"results": {"failed_checks": [[]]}}`, "record 1 (line 1): expected a check object, found an array"},
		{"list not array", `{"results": {"failed_checks": {}}}`, "record 1 (line 1): the report: results.failed_checks: expected an array, found an object"},
		{"second report bad", "[{\"check_type\": \"a\"},\n{\"x\": 1}]", "record 1 (line 2): report 2 is not a Checkov report"},
		{"trailing", `{"check_type": "a"} x`, `record 1 (line 1): unexpected 'x' after the end of the report`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseAll(t, []byte(tc.in))
			require.Error(t, err)
			require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err), err.Error())
			require.Contains(t, steward.ErrorMessage(err), tc.want)
		})
	}
}

func TestSniff(t *testing.T) {
	t.Parallel()
	require.True(t, checkov.Sniff(readFile(t, "checkov_synthetic.json")))
	require.True(t, checkov.Sniff([]byte(` [{"check_type": "terraform"}]`)))
	require.True(t, checkov.Sniff([]byte(`{"results": {"failed_checks": []}, "check_type": "x"}`)))
	require.False(t, checkov.Sniff([]byte(`{"resource": {"id": "x"}, "status_reason": "check_type"}`)))
	require.False(t, checkov.Sniff([]byte(`{"passed": 1}`)))
}

// FuzzParse checks that no input makes the parser panic, that every error
// is a CodeInvalid *steward.Error naming a record (or the empty input), and
// that every observation it yields is valid.
func FuzzParse(f *testing.F) {
	f.Add(readFile(f, "checkov_synthetic.json"))
	f.Add([]byte(`[{"check_type": "k", "results": {"failed_checks": [{"check_id": "C", "file_path": "a", "resource": "module.m.t.n", "entity_tags": {"a": [1]}}]}}]`))
	f.Add([]byte(`{"passed": 0, "checkov_version": "3"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkov.Parser{}.Parse(context.Background(), bytes.NewReader(b), func(o steward.Observation) error {
			if err := o.Validate(); err != nil {
				t.Fatalf("invalid observation: %v", err)
			}
			return nil
		})
		if err == nil {
			return
		}
		se, ok := errors.AsType[*steward.Error](err)
		if !ok || se.Code != steward.CodeInvalid {
			t.Fatalf("error is not a CodeInvalid *steward.Error: %T %v", err, err)
		}
		if !strings.HasPrefix(se.Message, "record ") && !strings.HasPrefix(se.Message, "input is empty") {
			t.Fatalf("error names no record: %s", se.Message)
		}
	})
}
