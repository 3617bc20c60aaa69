package scc_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/securitycenter/apiv2/securitycenterpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source"
	"github.com/stewardhq/steward/internal/source/scc"
)

// The files engineer registers scc.Parser as a source.Parser.
var _ source.Parser = scc.Parser{}

const dir = "../../../testdata/scc"

func parse(t *testing.T, in []byte) ([]steward.Observation, error) {
	t.Helper()
	var out []steward.Observation
	err := scc.Parser{}.Parse(t.Context(), bytes.NewReader(in), func(o steward.Observation) error {
		require.NoError(t, o.Validate())
		out = append(out, o)
		return nil
	})
	return out, err
}

func byKeyAndName(obs []steward.Observation) map[string]steward.Observation {
	m := map[string]steward.Observation{}
	for _, o := range obs {
		m[o.Recommendation.Key+" "+o.Resource.Name] = o
	}
	return m
}

func TestParseExport(t *testing.T) {
	t.Parallel()
	in, err := os.ReadFile(filepath.Join(dir, "findings.jsonl"))
	require.NoError(t, err)
	obs, err := parse(t, in)
	require.NoError(t, err)
	// 11 results, one on an AWS resource (skipped).
	require.Len(t, obs, 10)

	count := map[steward.AssessmentStatus]int{}
	sev := map[steward.Severity]int{}
	for _, o := range obs {
		count[o.Status]++
		sev[o.Recommendation.Severity]++
		require.Equal(t, steward.CloudGCP, o.Resource.Cloud)
		require.Equal(t, "scc", o.Recommendation.Source)
		require.True(t, strings.HasPrefix(o.Recommendation.Key, "scc:"), o.Recommendation.Key)
		require.NotContains(t, o.Resource.ID, "arn:aws")
	}
	require.Equal(t, map[steward.AssessmentStatus]int{steward.StatusUnhealthy: 7, steward.StatusHealthy: 2, steward.StatusNotApplicable: 1}, count)
	require.Equal(t, map[steward.Severity]int{steward.SeverityCritical: 1, steward.SeverityHigh: 5, steward.SeverityMedium: 2, steward.SeverityLow: 2}, sev)

	m := byKeyAndName(obs)
	bucket := m["scc:PUBLIC_BUCKET_ACL web-prod-assets"]
	require.Equal(t, steward.Observation{
		Resource: steward.Resource{
			ID:     "/gcp/projects/web-prod/google.cloud.storage.Bucket/storage.googleapis.com/web-prod-assets",
			Name:   "web-prod-assets",
			Type:   "google.cloud.storage.Bucket",
			Cloud:  steward.CloudGCP,
			Region: "us",
			Tags:   map[string]string{"owner": "alice@example.com", "team": "web"},
		},
		Recommendation: steward.Recommendation{
			Key:         "scc:PUBLIC_BUCKET_ACL",
			DisplayName: "Public bucket ACL",
			Description: "Cloud Storage buckets should not be anonymously or publicly accessible.",
			Remediation: "To remediate this finding, remove allUsers and allAuthenticatedUsers from the bucket's IAM policy and ACLs.\n\nSee https://console.cloud.google.com/security/command-center/findingsv2;name=organizations/1081635000895/sources/2960810226735133461/locations/global/findings/7f5a2b1c9d3e4f60a1b2c3d4e5f60718",
			Severity:    steward.SeverityHigh,
			Category:    "Misconfiguration",
			Source:      "scc",
		},
		Status:     steward.StatusUnhealthy,
		ObservedAt: time.Date(2026, 11, 27, 8, 14, 3, 512e6, time.UTC),
	}, bucket)

	vm := m["scc:PUBLIC_IP_ADDRESS web-1"]
	require.Equal(t, "/gcp/projects/web-prod/google.compute.Instance/compute.googleapis.com/projects/web-prod/zones/us-central1-a/instances/web-1", vm.Resource.ID)
	require.Equal(t, steward.StatusNotApplicable, vm.Status, "an active muted finding")
	require.Equal(t, "muted in Security Command Center (muteConfigs/web-frontends-have-public-ips)", vm.StatusReason)

	mfa := m["scc:MFA_NOT_ENFORCED example.com"]
	require.Equal(t, "/gcp/organizations/1081635000895/google.cloud.resourcemanager.Organization/cloudresourcemanager.googleapis.com/organizations/1081635000895", mfa.Resource.ID)
	require.Equal(t, "MFA not enforced", mfa.Recommendation.DisplayName)

	fw := m["scc:OPEN_FIREWALL default-allow-ssh"]
	require.Equal(t, steward.StatusHealthy, fw.Status, "INACTIVE")
	require.Equal(t, "/gcp/projects/data-staging/google.compute.Firewall/compute.googleapis.com/projects/data-staging/global/firewalls/default-allow-ssh", fw.Resource.ID)

	// The project resource is named by its number; the scope uses the ID.
	audit := m["scc:AUDIT_LOGGING_DISABLED data-staging"]
	require.Equal(t, "/gcp/projects/data-staging/google.cloud.resourcemanager.Project/cloudresourcemanager.googleapis.com/projects/734220094161", audit.Resource.ID)
	require.Equal(t, steward.SeverityLow, audit.Recommendation.Severity)

	unspecified := m["scc:BUCKET_LOGGING_DISABLED data-staging-exports"]
	require.Equal(t, steward.SeverityLow, unspecified.Recommendation.Severity, "SEVERITY_UNSPECIFIED")
	require.Nil(t, unspecified.Resource.Tags)

	require.Equal(t, steward.SeverityCritical, m["scc:OS_VULNERABILITY etl-worker-3"].Recommendation.Severity)
	require.Equal(t, "Vulnerability", m["scc:OS_VULNERABILITY etl-worker-3"].Recommendation.Category)
	etd := m["scc:Persistence: IAM Anomalous Grant web-prod"]
	require.Equal(t, "Persistence: IAM Anomalous Grant", etd.Recommendation.DisplayName)
	require.Equal(t, "Threat", etd.Recommendation.Category)
}

// The same results as a gcloud JSON array and as a ListFindings response
// page map to the same observations as the JSON Lines export.
func TestParseArrayAndResponsePage(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile(filepath.Join(dir, "list_findings_page.json"))
	require.NoError(t, err)
	fromPage, err := parse(t, page)
	require.NoError(t, err)
	require.Len(t, fromPage, 3)
	// The page is a ListFindingsResponse to the Go client's own types,
	// strictly (no unknown fields).
	var resp securitycenterpb.ListFindingsResponse
	require.NoError(t, protojson.Unmarshal(page, &resp))
	require.Len(t, resp.GetListFindingsResults(), 3)
	require.EqualValues(t, 3, resp.GetTotalSize())

	lines, err := os.ReadFile(filepath.Join(dir, "findings.jsonl"))
	require.NoError(t, err)
	first3 := bytes.SplitN(lines, []byte("\n"), 4)[:3]
	array := append(append([]byte("[\n"), bytes.Join(first3, []byte(",\n"))...), "\n]\n"...)
	fromArray, err := parse(t, array)
	require.NoError(t, err)
	fromLines, err := parse(t, bytes.Join(first3, []byte("\n")))
	require.NoError(t, err)
	require.Equal(t, fromLines, fromArray)
	require.Equal(t, fromLines, fromPage)

	// snake_case (proto) field names and enum numbers are the same record.
	snake := `{"finding":{"resource_name":"//storage.googleapis.com/b1","category":"PUBLIC_BUCKET_ACL","state":1,"severity":2},"resource":{"name":"//storage.googleapis.com/b1","type":"google.cloud.storage.Bucket","gcp_metadata":{"project_display_name":"p-1"}}}`
	obs, err := parse(t, []byte(snake))
	require.NoError(t, err)
	require.Len(t, obs, 1)
	require.Equal(t, "/gcp/projects/p-1/google.cloud.storage.Bucket/storage.googleapis.com/b1", obs[0].Resource.ID)
	require.Equal(t, steward.SeverityHigh, obs[0].Recommendation.Severity)
	require.Equal(t, steward.StatusUnhealthy, obs[0].Status)
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	good := `{"finding":{"resourceName":"//storage.googleapis.com/b1","category":"PUBLIC_BUCKET_ACL","state":"ACTIVE","severity":"HIGH"},"resource":{"name":"//storage.googleapis.com/b1","gcpMetadata":{"projectDisplayName":"p-1"}}}`
	for name, tc := range map[string]struct{ in, want string }{
		"empty":           {"  \n", "input is empty"},
		"not json":        {"hello", "record 1"},
		"scalar record":   {good + "\n42\n", "record 2 (line 2): expected a finding result object"},
		"bad state":       {good + "\n" + strings.Replace(good, `"ACTIVE"`, `"OPEN"`, 1), "record 2 (line 2): finding.state STATE_UNSPECIFIED"},
		"unspecified":     {strings.Replace(good, `"ACTIVE"`, `"STATE_UNSPECIFIED"`, 1), "record 1 (line 1): finding.state STATE_UNSPECIFIED is not ACTIVE or INACTIVE"},
		"no category":     {good + "\n" + good + "\n" + strings.Replace(good, `"category":"PUBLIC_BUCKET_ACL",`, "", 1), "record 3 (line 3): finding.category is missing"},
		"no resource":     {strings.ReplaceAll(good, `"//storage.googleapis.com/b1"`, `""`), "record 1 (line 1): finding.resourceName is missing"},
		"no project":      {strings.Replace(good, `"gcpMetadata":{"projectDisplayName":"p-1"}`, `"gcpMetadata":{}`, 1), "record 1 (line 1): resource.gcpMetadata.project is missing"},
		"no finding":      {`{"resource":{}}`, "record 1 (line 1): finding is missing"},
		"truncated":       {good + "\n" + good[:40], "record 2 (line 2): unexpected end of input after record 1"},
		"array truncated": {"[" + good + ",", "unexpected end of input after record 1"},
		"array trailing":  {"[" + good + "] x", "record 2 (line 1): unexpected"},
		"wrong type":      {strings.Replace(good, `"category":"PUBLIC_BUCKET_ACL"`, `"category":7`, 1), "record 1 (line 1): not a valid SCC finding result"},
		"invalid utf8":    {strings.Replace(good, "b1", "b\xff", 2), "record 1 (line 1)"},
		"page not array":  {`{"listFindingsResults": 3}`, "listFindingsResults must be an array"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			obs, err := parse(t, []byte(tc.in))
			require.Error(t, err)
			require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err), err.Error())
			require.Contains(t, err.Error(), tc.want)
			_ = obs
		})
	}
}

func TestParseYieldErrorAndContext(t *testing.T) {
	t.Parallel()
	in, err := os.ReadFile(filepath.Join(dir, "findings.jsonl"))
	require.NoError(t, err)
	stop := steward.Errorf(steward.CodeConflict, "stop")
	n := 0
	err = scc.Parser{}.Parse(t.Context(), bytes.NewReader(in), func(steward.Observation) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	require.Same(t, stop, err, "yield's error is returned unchanged")

	// The context is checked every 1024 records.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	many := bytes.Repeat(append(bytes.SplitN(in, []byte("\n"), 2)[0], '\n'), 2048)
	err = scc.Parser{}.Parse(ctx, bytes.NewReader(many), func(steward.Observation) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
}

func TestSniff(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"findings.jsonl", "list_findings_page.json"} {
		in, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		require.True(t, scc.Sniff(in[:min(len(in), 4096)]), name)
	}
	ocsf, err := os.ReadFile("../../../testdata/findings/prowler_example_output_gcp.ocsf.json")
	require.NoError(t, err)
	require.False(t, scc.Sniff(ocsf))
	require.False(t, scc.Sniff([]byte(`{"version":1,"assessments":[]}`)))
	require.False(t, scc.Sniff([]byte(`"finding" "category" "resourceName"`)))
}

func TestHumanize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"PUBLIC_BUCKET_ACL":                "Public bucket ACL",
		"OPEN_FIREWALL":                    "Open firewall",
		"MFA_NOT_ENFORCED":                 "MFA not enforced",
		"SQL_NO_ROOT_PASSWORD":             "SQL no root password",
		"Persistence: IAM Anomalous Grant": "Persistence: IAM Anomalous Grant",
		"ÉTAT_X":                           "État x",
	} {
		require.Equal(t, want, scc.Humanize(in))
	}
}
