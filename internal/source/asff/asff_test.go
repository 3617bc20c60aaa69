package asff_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/asff"
)

const dir = "../../../testdata/asff"

func parseFile(t *testing.T, name string) []steward.Observation {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name))
	require.NoError(t, err)
	defer f.Close()
	var out []steward.Observation
	require.NoError(t, asff.Parser{}.Parse(context.Background(), f, func(o steward.Observation) error {
		require.NoError(t, o.Validate())
		out = append(out, o)
		return nil
	}))
	return out
}

func parseString(s string) ([]steward.Observation, error) {
	var out []steward.Observation
	err := asff.Parser{}.Parse(context.Background(), strings.NewReader(s), func(o steward.Observation) error {
		out = append(out, o)
		return nil
	})
	return out, err
}

func count[T comparable](obs []steward.Observation, f func(steward.Observation) T) map[T]int {
	m := map[T]int{}
	for _, o := range obs {
		m[f(o)]++
	}
	return m
}

func bySeverity(o steward.Observation) steward.Severity       { return o.Recommendation.Severity }
func byStatus(o steward.Observation) steward.AssessmentStatus { return o.Status }

func TestSecurityHubSample(t *testing.T) {
	obs := parseFile(t, "asff_sample.json")
	require.Len(t, obs, 18)
	// INFORMATIONAL is Low.
	assert.Equal(t, map[steward.Severity]int{steward.SeverityLow: 16, steward.SeverityMedium: 2}, count(obs, bySeverity))
	assert.Equal(t, map[steward.AssessmentStatus]int{steward.StatusUnhealthy: 17, steward.StatusHealthy: 1}, count(obs, byStatus))
	assert.Equal(t, map[string]int{"securityhub": 18}, count(obs, func(o steward.Observation) string { return o.Recommendation.Source }))

	first := obs[0]
	assert.Equal(t, "securityhub:arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/1.1", first.Recommendation.Key)
	assert.Equal(t, `1.1 Avoid the use of the "root" account`, first.Recommendation.DisplayName)
	assert.Equal(t, "For directions on how to fix this issue, please consult the AWS Security Hub CIS documentation.\n\nhttps://docs.aws.amazon.com/console/securityhub/standards-cis-1.1/remediation", first.Recommendation.Remediation)
	assert.Contains(t, first.Recommendation.Description, `The "root" account has unrestricted access`)
	assert.Equal(t, "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark", first.Recommendation.Category)
	assert.Equal(t, "/aws/accounts/123456789123/regions/us-east-1/AWS::::Account:123456789123", first.Resource.ID)
	assert.Equal(t, "AwsAccount", first.Resource.Type)
	assert.Equal(t, "us-east-1", first.Resource.Region)
	assert.Equal(t, steward.CloudAWS, first.Resource.Cloud)
	assert.Equal(t, steward.StatusUnhealthy, first.Status)
	assert.Equal(t, "Multi region CloudTrail with the required configuration does not exist in the account", first.StatusReason)
	assert.Equal(t, time.Date(2021, 8, 9, 11, 28, 16, 331e6, time.UTC), first.ObservedAt)

	// The FSBP control is keyed by its control ID; the passed, resolved one
	// is Healthy and Low (INFORMATIONAL), on the bucket it names.
	cfg := obs[16]
	assert.Equal(t, "securityhub:Config.1", cfg.Recommendation.Key)
	assert.Equal(t, steward.SeverityMedium, cfg.Recommendation.Severity)
	s3 := obs[17]
	assert.Equal(t, "securityhub:S3.2", s3.Recommendation.Key)
	assert.Equal(t, steward.StatusHealthy, s3.Status)
	assert.Equal(t, steward.SeverityLow, s3.Recommendation.Severity)
	assert.Equal(t, "/aws/accounts/123456789123/regions/us-east-1/arn:aws:s3:::example-bucket-123456789123-us-east-1", s3.Resource.ID)
	assert.Equal(t, "example-bucket-123456789123-us-east-1", s3.Resource.Name)
	assert.Equal(t, "AwsS3Bucket", s3.Resource.Type)

	// 18 distinct checks.
	assert.Len(t, count(obs, func(o steward.Observation) string { return o.Recommendation.Key }), 18)
}

func TestTrivySample(t *testing.T) {
	obs := parseFile(t, "trivy-image_golang-1.12-alpine_sample.json")
	require.Len(t, obs, 44)
	assert.Equal(t, map[steward.Severity]int{steward.SeverityCritical: 3, steward.SeverityHigh: 29, steward.SeverityMedium: 10, steward.SeverityLow: 2}, count(obs, bySeverity))
	// No Compliance, no Workflow, ACTIVE: every finding is Unhealthy.
	assert.Equal(t, map[steward.AssessmentStatus]int{steward.StatusUnhealthy: 44}, count(obs, byStatus))
	// A third-party product is its own source, named by ProductFields.
	assert.Equal(t, map[string]int{"trivy": 44}, count(obs, func(o steward.Observation) string { return o.Recommendation.Source }))
	// The CVE is the check: the GeneratorId ("Trivy") is the same for all.
	assert.Equal(t, "trivy:CVE-2021-36159", obs[0].Recommendation.Key)
	keys := count(obs, func(o steward.Observation) string { return o.Recommendation.Key })
	assert.Equal(t, 2, keys["trivy:CVE-2021-28831"], "a CVE in two packages of one image is one check")
	assert.Equal(t, map[string]int{"/aws/accounts/123456789012/regions/us-east-1/golang:1.12-alpine (alpine 3.11.3)": 44},
		count(obs, func(o steward.Observation) string { return o.Resource.ID }))
	assert.Equal(t, "Container", obs[0].Resource.Type)
	assert.Equal(t, "More information on this vulnerability is provided in the hyperlink\n\nhttps://avd.aquasec.com/nvd/cve-2021-36159", obs[0].Recommendation.Remediation)
	// UpdatedAt, with its zone, when there is no LastObservedAt.
	assert.Equal(t, time.Date(2022, 2, 8, 4, 51, 26, 938817000, time.UTC), obs[0].ObservedAt)
}

func TestProwlerJSONLines(t *testing.T) {
	obs := parseFile(t, "prowler-sample.asff-json")
	require.Len(t, obs, 10, "the last line has no newline after it")
	assert.Equal(t, map[steward.Severity]int{steward.SeverityHigh: 10}, count(obs, bySeverity))
	assert.Equal(t, map[steward.AssessmentStatus]int{steward.StatusUnhealthy: 10}, count(obs, byStatus))
	assert.Equal(t, map[string]int{"prowler:prowler-check11": 1, "prowler:prowler-check12": 9},
		count(obs, func(o steward.Observation) string { return o.Recommendation.Key }))
	assert.Equal(t, "[check11] Avoid the use of the root account (Scored)", obs[0].Recommendation.DisplayName)
	// No Region field: the region of the resource.
	assert.Equal(t, "/aws/accounts/123456789123/regions/us-east-1/AWS::::Account:123456789123", obs[0].Resource.ID)
	assert.Equal(t, "AwsIamUser", obs[1].Resource.Type)
}

// finding is a valid ASFF finding to vary in tests.
const finding = `{"SchemaVersion":"2018-10-08","Id":"f-1","ProductArn":"arn:aws:securityhub:eu-west-1::product/aws/securityhub",
"GeneratorId":"security-control/S3.1","AwsAccountId":"111122223333","Region":"eu-west-1","Types":["Software and Configuration Checks"],
"UpdatedAt":"2025-01-02T03:04:05Z","Severity":{"Label":"HIGH"},"Title":"S3 general purpose buckets should have block public access settings enabled",
"Resources":[{"Type":"AwsS3Bucket","Id":"arn:aws:s3:::logs","Region":"eu-west-1","Tags":{"owner":"alice@example.com","env":"prod"}},
  {"Type":"AwsAccount","Id":"AWS::::Account:111122223333"}],
"Compliance":{"Status":"FAILED","SecurityControlId":"S3.1"},"Workflow":{"Status":"NEW"},"RecordState":"ACTIVE"}`

func with(old, new string) string {
	if !strings.Contains(finding, old) {
		panic("no " + old)
	}
	return strings.Replace(finding, old, new, 1)
}

func TestMapping(t *testing.T) {
	obs, err := parseString(finding)
	require.NoError(t, err)
	require.Len(t, obs, 1, "one observation per finding: Resources[0] only")
	o := obs[0]
	assert.Equal(t, "securityhub:S3.1", o.Recommendation.Key)
	assert.Equal(t, "/aws/accounts/111122223333/regions/eu-west-1/arn:aws:s3:::logs", o.Resource.ID)
	assert.Equal(t, map[string]string{"owner": "alice@example.com", "env": "prod"}, o.Resource.Tags)
	assert.Equal(t, "logs", o.Resource.Name)

	cases := []struct {
		name     string
		in       string
		status   steward.AssessmentStatus
		severity steward.Severity
	}{
		{"passed", with(`"Status":"FAILED"`, `"Status":"PASSED"`), steward.StatusHealthy, steward.SeverityHigh},
		{"warning", with(`"Status":"FAILED"`, `"Status":"WARNING"`), steward.StatusUnhealthy, steward.SeverityHigh},
		{"not available", with(`"Status":"FAILED"`, `"Status":"NOT_AVAILABLE"`), steward.StatusNotApplicable, steward.SeverityHigh},
		{"failed but suppressed", with(`"Status":"NEW"`, `"Status":"SUPPRESSED"`), steward.StatusNotApplicable, steward.SeverityHigh},
		{"failed, archived", with(`"RecordState":"ACTIVE"`, `"RecordState":"ARCHIVED"`), steward.StatusHealthy, steward.SeverityHigh},
		{"no compliance, new", with(`"Compliance":{"Status":"FAILED","SecurityControlId":"S3.1"},`, ``), steward.StatusUnhealthy, steward.SeverityHigh},
		{"no compliance, resolved", strings.Replace(with(`"Compliance":{"Status":"FAILED","SecurityControlId":"S3.1"},`, ``), `"NEW"`, `"RESOLVED"`, 1), steward.StatusHealthy, steward.SeverityHigh},
		{"no compliance, suppressed", strings.Replace(with(`"Compliance":{"Status":"FAILED","SecurityControlId":"S3.1"},`, ``), `"NEW"`, `"SUPPRESSED"`, 1), steward.StatusHealthy, steward.SeverityHigh},
		{"informational", with(`"Label":"HIGH"`, `"Label":"INFORMATIONAL"`), steward.StatusUnhealthy, steward.SeverityLow},
		{"low", with(`"Label":"HIGH"`, `"Label":"LOW"`), steward.StatusUnhealthy, steward.SeverityLow},
		{"medium", with(`"Label":"HIGH"`, `"Label":"MEDIUM"`), steward.StatusUnhealthy, steward.SeverityMedium},
		{"critical", with(`"Label":"HIGH"`, `"Label":"CRITICAL"`), steward.StatusUnhealthy, steward.SeverityCritical},
		{"normalized only", with(`{"Label":"HIGH"}`, `{"Normalized":95}`), steward.StatusUnhealthy, steward.SeverityCritical},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs, err := parseString(c.in)
			require.NoError(t, err)
			require.Len(t, obs, 1)
			assert.Equal(t, c.status, obs[0].Status)
			assert.Equal(t, c.severity, obs[0].Recommendation.Severity)
		})
	}
}

func TestKeysAndSources(t *testing.T) {
	cases := []struct{ name, in, key, source string }{
		{"consolidated control", finding, "securityhub:S3.1", "securityhub"},
		{"per-standard FSBP", with(`"SecurityControlId":"S3.1"`, `"x":"y"`), "securityhub:security-control/S3.1", "securityhub"},
		{"third party by ProductName", with(`product/aws/securityhub",`, `product/acme/scanner","ProductName":"Acme Scanner",`), "acme-scanner:S3.1", "acme-scanner"},
		{"AWS service by ARN", with(`product/aws/securityhub"`, `product/aws/guardduty"`), "guardduty:S3.1", "guardduty"},
		{"vulnerability", with(`"RecordState"`, `"Vulnerabilities":[{"Id":"CVE-2024-0001"}],"RecordState"`), "securityhub:CVE-2024-0001", "securityhub"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs, err := parseString(c.in)
			require.NoError(t, err)
			assert.Equal(t, c.key, obs[0].Recommendation.Key)
			assert.Equal(t, c.source, obs[0].Recommendation.Source)
		})
	}
}

func TestForms(t *testing.T) {
	one := strings.ReplaceAll(finding, "\n", " ")
	for name, in := range map[string]string{
		"document":          `{"Findings": [` + finding + `,` + finding + `]}`,
		"document+token":    `{"Findings": [` + finding + `,` + finding + `], "NextToken": "abc"}`,
		"token first":       `{"NextToken": null, "Findings": [` + finding + `,` + finding + `]}`,
		"array":             `[` + finding + `,` + finding + `]`,
		"json lines":        one + "\n" + one + "\n",
		"json lines no eol": one + "\n" + one,
		"bom":               "\xef\xbb\xbf" + one + "\n" + one,
	} {
		t.Run(name, func(t *testing.T) {
			obs, err := parseString(in)
			require.NoError(t, err)
			assert.Len(t, obs, 2)
		})
	}
	obs, err := parseString(`{"Findings": []}`)
	require.NoError(t, err)
	assert.Empty(t, obs)
}

func TestMalformed(t *testing.T) {
	one := strings.ReplaceAll(finding, "\n", " ")
	cases := []struct{ name, in, want string }{
		{"empty", "  ", "input is empty"},
		{"not json", "hello", "record 1"},
		{"no account", with(`"AwsAccountId":"111122223333",`, ``), `record 1 (line 1): finding "f-1": AwsAccountId is missing`},
		{"no resources", with(`"Resources":[`, `"Resources":[],"X":[`), "Resources is empty"},
		{"no resource id", with(`"Id":"arn:aws:s3:::logs",`, ``), "Resources[0].Id is missing"},
		{"bad severity", with(`"Label":"HIGH"`, `"Label":"SEVERE"`), `Severity.Label "SEVERE" is not one of`},
		{"no severity", with(`"Severity":{"Label":"HIGH"},`, ``), "Severity.Label is missing"},
		{"bad compliance", with(`"Status":"FAILED"`, `"Status":"BROKEN"`), `Compliance.Status "BROKEN"`},
		{"bad workflow", with(`"Status":"NEW"`, `"Status":"OPEN"`), `Workflow.Status "OPEN"`},
		{"bad record state", with(`"RecordState":"ACTIVE"`, `"RecordState":"GONE"`), `RecordState "GONE"`},
		{"no generator", strings.Replace(with(`"GeneratorId":"security-control/S3.1",`, ``), `"SecurityControlId":"S3.1"`, `"x":"y"`, 1), "GeneratorId is missing"},
		{"wrong type", with(`"Title":"S3`, `"Title":7,"x":"`), "Title: expected a string"},
		{"second record bad", one + "\n" + with(`"Label":"HIGH"`, `"Label":"x"`), "record 2 (line 2)"},
		{"truncated", `{"Findings": [` + finding[:100], "record 1 (line 1): unexpected end of input after record 0"},
		{"truncated after one", `{"Findings": [` + finding + `,`, "unexpected end of input after record 1"},
		{"truncated after array", `{"Findings": [` + finding + `]`, "unexpected end of input after record 1"},
		{"trailing", `{"Findings": []} x`, "after the end of the document"},
		{"no findings key", `{"NextToken": "a"}`, `no "Findings" array`},
		{"string record", `["x"]`, "record 1 (line 1): expected a finding object, found a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs, err := parseString(c.in)
			require.Error(t, err)
			se, ok := errors.AsType[*steward.Error](err)
			require.True(t, ok, "%T %v", err, err)
			assert.Equal(t, steward.CodeInvalid, se.Code)
			assert.Contains(t, se.Message, c.want)
			if c.name == "second record bad" {
				assert.Len(t, obs, 1)
			}
		})
	}
}

func TestYieldAndContextErrors(t *testing.T) {
	stop := errors.New("stop")
	err := asff.Parser{}.Parse(context.Background(), strings.NewReader(finding), func(steward.Observation) error { return stop })
	assert.Same(t, stop, err)

	var b bytes.Buffer
	one := strings.ReplaceAll(finding, "\n", " ")
	for range 2048 {
		b.WriteString(one + "\n")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = asff.Parser{}.Parse(ctx, &b, func(steward.Observation) error { return nil })
	assert.ErrorIs(t, err, context.Canceled)
}

func TestSniff(t *testing.T) {
	for _, name := range []string{"asff_sample.json", "trivy-image_golang-1.12-alpine_sample.json", "prowler-sample.asff-json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.True(t, asff.Sniff(b[:min(len(b), 4096)]), name)
	}
	assert.True(t, asff.Sniff([]byte(" {\n  \"Findings\": [")))
	assert.True(t, asff.Sniff([]byte(`[`+finding+`]`)))
	for _, other := range []string{
		``, `hello`,
		`{"assessments": []}`,
		`{"resource": {"id": "/subscriptions/x"}, "recommendation": {"key": "k", "severity": "Low"}, "status": "Healthy"}`,
		`[{"class_uid": 2004, "finding_info": {"uid": "x"}, "cloud": {"account": {"uid": "1"}}}]`,
		`{"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "runs": []}`,
	} {
		assert.False(t, asff.Sniff([]byte(other)), other)
	}
	for _, name := range []string{"prowler_example_output_aws.ocsf.json"} {
		b, err := os.ReadFile(filepath.Join("../../../testdata/findings", name))
		require.NoError(t, err)
		assert.False(t, asff.Sniff(b[:min(len(b), 4096)]), name)
	}
}
