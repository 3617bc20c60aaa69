package source_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source"
)

func TestDetect(t *testing.T) {
	t.Parallel()
	prowler, err := os.ReadFile("../../testdata/findings/prowler_example_output_aws.ocsf.json")
	require.NoError(t, err)
	trivy, err := os.ReadFile("../../testdata/sarif/trivy_alpine-310.sarif")
	require.NoError(t, err)
	tests := []struct {
		title string
		head  string
		want  source.Format
		err   string
	}{
		{"steward document", `{"assessments": []}`, source.FormatSteward, ""},
		{"steward document with version", "\xef\xbb\xbf {\n \"version\": 1, \"assessments\": []}", source.FormatSteward, ""},
		{"steward jsonl", `{"resource": {"id": "x"}, "status": "Healthy"}` + "\n", source.FormatSteward, ""},
		{"prowler ocsf", string(prowler[:2500]), source.FormatOCSF, ""},
		{"ocsf jsonl", `{"message": "m", "class_uid": 2004}`, source.FormatOCSF, ""},
		{"empty", "  \n", "", "input is empty"},
		{"asff", `{"Findings": [{"SchemaVersion": "2018-10-08"}]}`, source.FormatASFF, ""},
		{"sarif", `{"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "runs": []}`, source.FormatSARIF, ""},
		{"sarif with version first (trivy)", string(trivy), source.FormatSARIF, ""},
		{"sarif head cut inside runs", string(trivy[:600]), source.FormatSARIF, ""},
		{"sarif without $schema", `{"version": "2.1.0", "runs": [{"tool": {}}]}`, source.FormatSARIF, ""},
		{"sarif runs first", `{"runs": [{"results": []}], "$schema": "https://json.schemastore.org/sarif-2.1.0.json"}`, source.FormatSARIF, ""},
		{"checkov", `{"check_type": "terraform", "results": {}}`, source.FormatCheckov, ""},
		{"checkov array", `[{"check_type": "terraform", "results": {}}, {"check_type": "secrets"}]`, source.FormatCheckov, ""},
		{"checkov summary only", `{"passed": 0, "failed": 0, "checkov_version": "3.2.506"}`, source.FormatCheckov, ""},
		{"steward jsonl mentioning checkov", `{"resource": {"id": "x"}, "status_reason": "check_type failed_checks"}`, source.FormatSteward, ""},
		{"steward document mentioning sarif", `{"version": 1, "assessments": [{"status_reason": "runs from a sarif tool"}]}`, source.FormatSteward, ""},
		{"steward jsonl mentioning sarif", `{"resource": {"id": "x"}, "status": "Healthy", "status_reason": "$schema sarif runs"}` + "\n", source.FormatSteward, ""},
		{"csv", "Assessment;Check", "", `cannot tell the format of the input (it is not JSON); supported formats: "steward"`},
		{"array of numbers", "[1,2]", "", "cannot tell the format"},
	}
	for _, tc := range tests {
		t.Run(tc.title, func(t *testing.T) {
			t.Parallel()
			got, err := source.Detect([]byte(tc.head))
			if tc.err != "" {
				require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
				require.Contains(t, steward.ErrorMessage(err), tc.err)
				require.Contains(t, steward.ErrorMessage(err), `"ocsf" (OCSF 1.x findings`)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestOpenKeepsHead(t *testing.T) {
	t.Parallel()
	in, err := os.ReadFile("../../testdata/findings/prowler_example_output_gcp.ocsf.json")
	require.NoError(t, err)
	p, r, f, err := source.Open(bytes.NewReader(in), "")
	require.NoError(t, err)
	require.Equal(t, source.FormatOCSF, f)
	n := 0
	require.NoError(t, p.Parse(t.Context(), r, func(steward.Observation) error { n++; return nil }))
	require.Equal(t, 5, n)

	// An explicit format skips detection.
	_, r, f, err = source.Open(strings.NewReader("anything"), source.FormatSteward)
	require.NoError(t, err)
	require.Equal(t, source.FormatSteward, f)
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "anything", string(rest))
}

func TestParserFor(t *testing.T) {
	t.Parallel()
	for _, f := range source.Formats {
		p, err := source.ParserFor(f)
		require.NoError(t, err)
		require.NotNil(t, p)
	}
	_, err := source.ParserFor("xml")
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
	require.ErrorContains(t, err, `"sarif" (SARIF 2.1`)

	f, err := source.ParseFormat(" JSONL ")
	require.NoError(t, err)
	require.Equal(t, source.FormatSteward, f)
	_, err = source.ParseFormat("xml")
	require.ErrorContains(t, err, `unknown format "xml"`)
	for in, want := range map[string]source.Format{"SARIF": source.FormatSARIF, "checkov": source.FormatCheckov, "asff": source.FormatASFF, "securityhub": source.FormatASFF, "scc": source.FormatSCC} {
		f, err := source.ParseFormat(in)
		require.NoError(t, err)
		require.Equal(t, want, f, in)
	}
}

// Every sample file in testdata is detected as its format, from its head
// as Open reads it, and parses with the parser detection picks.
func TestDetectEveryTestdataFile(t *testing.T) {
	t.Parallel()
	want := map[string]source.Format{
		"findings/prowler_example_output_aws.ocsf.json":          source.FormatOCSF,
		"findings/prowler_example_output_azure.ocsf.json":        source.FormatOCSF,
		"findings/prowler_example_output_gcp.ocsf.json":          source.FormatOCSF,
		"findings/prowler_example_output_aws.ocsf.golden.json":   source.FormatSteward,
		"findings/prowler_example_output_azure.ocsf.golden.json": source.FormatSteward,
		"findings/prowler_example_output_gcp.ocsf.golden.json":   source.FormatSteward,
		"findings/trivy_alpine-310.sarif":                        source.FormatSARIF,
		"sarif/trivy_alpine-310.sarif":                           source.FormatSARIF,
		"sarif/sarif_input.sarif":                                source.FormatSARIF,
		"checkov/checkov_synthetic.json":                         source.FormatCheckov,
		"asff/asff_sample.json":                                  source.FormatASFF,
		"asff/trivy-image_golang-1.12-alpine_sample.json":        source.FormatASFF,
		"asff/prowler-sample.asff-json":                          source.FormatASFF,
		"scc/findings.jsonl":                                     source.FormatSCC,
		"scc/list_findings_page.json":                            source.FormatSCC,
	}
	// Every finding file of the format directories is listed above.
	for _, d := range []string{"findings", "sarif", "checkov", "asff", "scc"} {
		entries, err := os.ReadDir(filepath.Join("../../testdata", d))
		require.NoError(t, err)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".md") || e.IsDir() {
				continue
			}
			_, ok := want[d+"/"+e.Name()]
			require.True(t, ok, "testdata/%s/%s has no expected format here", d, e.Name())
		}
	}
	for name, format := range want {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in, err := os.ReadFile(filepath.Join("../../testdata", name))
			require.NoError(t, err)
			p, r, got, err := source.Open(bytes.NewReader(in), "")
			require.NoError(t, err)
			require.Equal(t, format, got)
			n := 0
			require.NoError(t, p.Parse(t.Context(), r, func(steward.Observation) error { n++; return nil }))
			require.Positive(t, n)
			// Each other format's parser rejects the file or makes
			// something else of it; --format is obeyed, not second-guessed.
			for _, other := range source.Formats {
				if other == format {
					continue
				}
				p, _, got, err := source.Open(bytes.NewReader(in), other)
				require.NoError(t, err)
				require.Equal(t, other, got, "an explicit format skips detection")
				require.IsType(t, mustParser(t, other), p)
			}
		})
	}
}

func mustParser(t *testing.T, f source.Format) source.Parser {
	t.Helper()
	p, err := source.ParserFor(f)
	require.NoError(t, err)
	return p
}

// --format overrides detection: a SARIF file given as Checkov is read by
// the Checkov parser, which rejects it naming the record.
func TestFormatOverridesDetection(t *testing.T) {
	t.Parallel()
	in, err := os.ReadFile("../../testdata/sarif/trivy_alpine-310.sarif")
	require.NoError(t, err)
	p, r, f, err := source.Open(bytes.NewReader(in), source.FormatCheckov)
	require.NoError(t, err)
	require.Equal(t, source.FormatCheckov, f)
	err = p.Parse(t.Context(), r, func(steward.Observation) error { return nil })
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
	require.Equal(t, "record 1 (line 1): the report is not a Checkov report (none of check_type, results, summary)", steward.ErrorMessage(err))

	// And a Steward file given as SARIF is refused by the SARIF parser.
	p, r, _, err = source.Open(strings.NewReader(`{"assessments": []}`), source.FormatSARIF)
	require.NoError(t, err)
	err = p.Parse(t.Context(), r, func(steward.Observation) error { return nil })
	require.Equal(t, "record 1 (line 1): runs is missing: this is not a SARIF log", steward.ErrorMessage(err))
}
