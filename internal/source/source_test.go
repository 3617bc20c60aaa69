package source_test

import (
	"bytes"
	"io"
	"os"
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
	trivy, err := os.ReadFile("../../testdata/findings/trivy_alpine-310.sarif")
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
		{"asff", `{"Findings": [{"SchemaVersion": "2018-10-08"}]}`, "", "AWS Security Hub ASFF, which is not supported yet"},
		{"sarif", `{"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "runs": []}`, "", "SARIF, which is not supported yet"},
		{"sarif with version first (trivy)", string(trivy), "", "SARIF, which is not supported yet"},
		{"sarif head cut inside runs", string(trivy[:600]), "", "SARIF, which is not supported yet"},
		{"sarif without $schema", `{"version": "2.1.0", "runs": [{"tool": {}}]}`, "", "SARIF, which is not supported yet"},
		{"sarif runs first", `{"runs": [{"results": []}], "$schema": "https://json.schemastore.org/sarif-2.1.0.json"}`, "", "SARIF, which is not supported yet"},
		{"steward document mentioning sarif", `{"version": 1, "assessments": [{"status_reason": "runs from a sarif tool"}]}`, source.FormatSteward, ""},
		{"steward jsonl mentioning sarif", `{"resource": {"id": "x"}, "status": "Healthy", "status_reason": "$schema sarif runs"}` + "\n", source.FormatSteward, ""},
		{"csv", "Assessment;Check", "", `cannot tell the format of the input; supported formats: "steward"`},
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
	_, err := source.ParserFor("sarif")
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))

	f, err := source.ParseFormat(" JSONL ")
	require.NoError(t, err)
	require.Equal(t, source.FormatSteward, f)
	_, err = source.ParseFormat("xml")
	require.ErrorContains(t, err, `unknown format "xml"`)
}
