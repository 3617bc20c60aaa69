package sarif_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/sarif"
)

const dir = "../../../testdata/sarif"

func parseAll(t testing.TB, in []byte) ([]steward.Observation, error) {
	t.Helper()
	var out []steward.Observation
	err := sarif.Parser{}.Parse(context.Background(), bytes.NewReader(in), func(o steward.Observation) error {
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

type counts map[string]int

func tally(obs []steward.Observation, field func(steward.Observation) string) counts {
	c := counts{}
	for _, o := range obs {
		c[field(o)]++
	}
	return c
}

func TestTrivy(t *testing.T) {
	t.Parallel()
	obs, err := parseAll(t, readFile(t, "trivy_alpine-310.sarif"))
	require.NoError(t, err)
	// 8 results: 4 CVEs, each in libcrypto1.1 and libssl1.1 of the same
	// image; a rule on one artifact is one assessment.
	require.Len(t, obs, 4)
	const image = "/repos/unknown/files/testdata/fixtures/images/alpine-310.tar.gz"
	want := map[string]steward.Severity{
		"trivy:CVE-2019-1549": steward.SeverityMedium,
		"trivy:CVE-2019-1551": steward.SeverityMedium,
		"trivy:CVE-2019-1563": steward.SeverityMedium,
		"trivy:CVE-2019-1547": steward.SeverityLow,
	}
	for _, o := range obs {
		require.Equal(t, want[o.Recommendation.Key], o.Recommendation.Severity, o.Recommendation.Key)
		require.Equal(t, steward.StatusUnhealthy, o.Status)
		require.Equal(t, image, o.Resource.ID)
		require.Equal(t, "testdata/fixtures/images/alpine-310.tar.gz", o.Resource.Name)
		require.Equal(t, "file", o.Resource.Type)
		require.Equal(t, steward.CloudOther, o.Resource.Cloud)
		require.Equal(t, "sarif:trivy", o.Recommendation.Source)
		require.Equal(t, "vulnerability", o.Recommendation.Category)
		require.Equal(t, strings.TrimPrefix(o.Recommendation.Key, "trivy:"), o.Recommendation.DisplayName)
		require.True(t, o.ObservedAt.IsZero(), "no invocation times: the import time")
	}
	require.Equal(t, counts{"Medium": 3, "Low": 1}, tally(obs, func(o steward.Observation) string { return string(o.Recommendation.Severity) }))
	o := obs[0]
	require.Equal(t, "trivy:CVE-2019-1549", o.Recommendation.Key)
	require.True(t, strings.HasPrefix(o.Recommendation.Description, "OpenSSL 1.1.1 introduced a rewritten random number generator"))
	require.True(t, strings.HasPrefix(o.Recommendation.Remediation, "Vulnerability CVE-2019-1549\nSeverity: MEDIUM\nPackage: libssl1.1"))
	require.True(t, strings.HasSuffix(o.Recommendation.Remediation, "\n\nReferences:\n- https://avd.aquasec.com/nvd/cve-2019-1549"))
	require.Equal(t, "line 1: Package: libcrypto1.1\nInstalled Version: 1.1.1c-r0\nVulnerability CVE-2019-1549\nSeverity: MEDIUM\nFixed Version: 1.1.1d-r0\nLink: [CVE-2019-1549](https://avd.aquasec.com/nvd/cve-2019-1549)", o.StatusReason)
}

// Flawfinder writes its results before its tool, and many results share a
// rule and a file.
func TestFlawfinder(t *testing.T) {
	t.Parallel()
	obs, err := parseAll(t, readFile(t, "sarif_input.sarif"))
	require.NoError(t, err)
	require.Len(t, obs, 42, "77 results on 42 distinct (rule, file) pairs")
	require.Equal(t, counts{"Unhealthy": 42}, tally(obs, func(o steward.Observation) string { return string(o.Status) }))
	// A rule's severity is the highest its results give: FF1010's default
	// level is "note" but its results say "error".
	require.Equal(t, counts{"High": 24, "Medium": 5, "Low": 13}, tally(obs, func(o steward.Observation) string { return string(o.Recommendation.Severity) }))
	require.Equal(t, counts{
		"/repos/unknown/files/test/test.c":              21,
		"/repos/unknown/files/test/test-patched.c":      20,
		"/repos/unknown/files/test/no-ending-newline.c": 1,
	}, tally(obs, func(o steward.Observation) string { return o.Resource.ID }))
	keys := tally(obs, func(o steward.Observation) string { return o.Recommendation.Key })
	require.Len(t, keys, 21)
	bySev := map[string]steward.Severity{}
	for _, o := range obs {
		require.Equal(t, "sarif:flawfinder", o.Recommendation.Source)
		if s, ok := bySev[o.Recommendation.Key]; ok {
			require.Equal(t, s, o.Recommendation.Severity, "one severity per recommendation")
		}
		bySev[o.Recommendation.Key] = o.Recommendation.Severity
	}
	require.Equal(t, steward.SeverityHigh, bySev["flawfinder:FF1010"])
	require.Equal(t, counts{"High": 12, "Medium": 3, "Low": 6}, func() counts {
		c := counts{}
		for _, s := range bySev {
			c[string(s)]++
		}
		return c
	}())

	first := obs[0]
	require.Equal(t, "flawfinder:FF1014", first.Recommendation.Key)
	require.Equal(t, "Does not check for buffer overflows (CWE-120, CWE-20).", first.Recommendation.DisplayName)
	require.Equal(t, "References:\n- https://cwe.mitre.org/data/definitions/120.html", first.Recommendation.Remediation)
	require.Equal(t, "/repos/unknown/files/test/test-patched.c", first.Resource.ID)
	require.Equal(t, "line 36: buffer/gets: Does not check for buffer overflows (CWE-120, CWE-20).", first.StatusReason)
}

// log builds a one-run SARIF log.
func log(run map[string]any) []byte {
	b, _ := json.MarshalIndent(map[string]any{"version": "2.1.0", "runs": []any{run}}, "", " ")
	return b
}

func driver(rules ...map[string]any) map[string]any {
	rs := make([]any, len(rules))
	for i, r := range rules {
		rs[i] = r
	}
	return map[string]any{"driver": map[string]any{"name": "Semgrep OSS", "rules": rs}}
}

func at(uri string, line int) []any {
	return []any{map[string]any{"physicalLocation": map[string]any{
		"artifactLocation": map[string]any{"uri": uri, "uriBaseId": "%SRCROOT%"},
		"region":           map[string]any{"startLine": line},
	}}}
}

func res(rule string, fields map[string]any) map[string]any {
	r := map[string]any{"ruleId": rule, "message": map[string]any{"text": "msg " + rule}, "locations": at("src/a.go", 3)}
	for k, v := range fields {
		if v == nil {
			delete(r, k)
			continue
		}
		r[k] = v
	}
	return r
}

func find(t *testing.T, obs []steward.Observation, key, id string) steward.Observation {
	t.Helper()
	var found []steward.Observation
	for _, o := range obs {
		if o.Recommendation.Key == key && o.Resource.ID == id {
			found = append(found, o)
		}
	}
	require.NotEmpty(t, found, "%s on %s", key, id)
	return found[len(found)-1] // the store keeps the last
}

func TestStatusAndSeverity(t *testing.T) {
	t.Parallel()
	const a = "/repos/unknown/files/src/a.go"
	in := log(map[string]any{
		"tool": driver(
			map[string]any{"id": "r-err", "defaultConfiguration": map[string]any{"level": "error"}},
			map[string]any{"id": "r-score", "properties": map[string]any{"security-severity": "9.1"}},
			map[string]any{"id": "r-score7", "properties": map[string]any{"security-severity": 7.0}},
			map[string]any{"id": "r-score4", "properties": map[string]any{"security-severity": "4"}},
			map[string]any{"id": "r-score0", "properties": map[string]any{"security-severity": "3.9"}},
		),
		"results": []any{
			res("r-warn", nil), // no level, no rule: warning → Medium
			res("r-note", map[string]any{"level": "note"}), // Low
			res("r-none", map[string]any{"level": "none"}), // Low
			res("r-err", nil), // rule default error → High
			res("r-score", map[string]any{"level": "note"}), // security-severity wins: Critical
			res("r-score7", nil),                            // High
			res("r-score4", nil),                            // Medium
			res("r-score0", nil),                            // Low
			res("r-pass", map[string]any{"kind": "pass", "level": "none"}), // Healthy; "none" of a pass is not the severity
			res("r-na", map[string]any{"kind": "notApplicable"}),
			res("r-review", map[string]any{"kind": "review", "level": "error"}),
			res("r-open", map[string]any{"kind": "open"}),
			res("r-info", map[string]any{"kind": "informational"}),
			res("r-supp", map[string]any{"suppressions": []any{map[string]any{"kind": "inSource", "justification": "test fixture"}}}),
			res("r-supp-review", map[string]any{"suppressions": []any{map[string]any{"kind": "external", "status": "underReview"}}}),
			res("r-fixed", map[string]any{"baselineState": "absent"}),
			res("r-new", map[string]any{"baselineState": "new"}),
		},
	})
	obs, err := parseAll(t, in)
	require.NoError(t, err)
	require.Len(t, obs, 16, "the informational result makes none")
	for _, tc := range []struct {
		rule   string
		sev    steward.Severity
		status steward.AssessmentStatus
		reason string
	}{
		{"r-warn", steward.SeverityMedium, steward.StatusUnhealthy, "line 3: msg r-warn"},
		{"r-note", steward.SeverityLow, steward.StatusUnhealthy, ""},
		{"r-none", steward.SeverityLow, steward.StatusUnhealthy, ""},
		{"r-err", steward.SeverityHigh, steward.StatusUnhealthy, ""},
		{"r-score", steward.SeverityCritical, steward.StatusUnhealthy, ""},
		{"r-score7", steward.SeverityHigh, steward.StatusUnhealthy, ""},
		{"r-score4", steward.SeverityMedium, steward.StatusUnhealthy, ""},
		{"r-score0", steward.SeverityLow, steward.StatusUnhealthy, ""},
		{"r-pass", steward.SeverityMedium, steward.StatusHealthy, ""},
		{"r-na", steward.SeverityMedium, steward.StatusNotApplicable, ""},
		{"r-review", steward.SeverityHigh, steward.StatusUnhealthy, "review: line 3: msg r-review"},
		{"r-open", steward.SeverityMedium, steward.StatusUnhealthy, "open: line 3: msg r-open"},
		{"r-supp", steward.SeverityMedium, steward.StatusNotApplicable, "suppressed: line 3: test fixture"},
		{"r-supp-review", steward.SeverityMedium, steward.StatusUnhealthy, ""},
		{"r-fixed", steward.SeverityMedium, steward.StatusHealthy, "fixed (absent since the baseline): line 3: msg r-fixed"},
		{"r-new", steward.SeverityMedium, steward.StatusUnhealthy, ""},
	} {
		o := find(t, obs, "semgrep-oss:"+tc.rule, a)
		require.Equal(t, tc.sev, o.Recommendation.Severity, tc.rule)
		require.Equal(t, tc.status, o.Status, tc.rule)
		require.Equal(t, "sarif:semgrep-oss", o.Recommendation.Source)
		if tc.reason != "" {
			require.Equal(t, tc.reason, o.StatusReason, tc.rule)
		}
	}
}

// Several results of one rule on one file are one assessment: the worst
// status is the last one yielded (the store keeps the last).
func TestWorstStatusWins(t *testing.T) {
	t.Parallel()
	const a = "/repos/unknown/files/src/a.go"
	const b = "/repos/unknown/files/src/b.go"
	in := log(map[string]any{
		"tool": driver(),
		"results": []any{
			res("r1", map[string]any{"kind": "pass", "locations": at("src/a.go", 1)}),
			res("r1", map[string]any{"locations": at("src/a.go", 20)}),
			res("r1", map[string]any{"kind": "pass", "locations": at("src/a.go", 30)}),
			res("r1", map[string]any{"locations": at("src/a.go", 40)}),
			res("r2", map[string]any{"locations": at("src/b.go", 1)}),
			res("r2", map[string]any{"kind": "pass", "locations": at("./src//b.go", 2)}),
			res("r3", map[string]any{"kind": "pass", "locations": at("src/b.go", 1)}),
			res("r3", map[string]any{"kind": "notApplicable", "locations": at("src/b.go", 1)}),
		},
	})
	obs, err := parseAll(t, in)
	require.NoError(t, err)
	var got []string
	for _, o := range obs {
		got = append(got, fmt.Sprintf("%s %s %s %s", o.Recommendation.Key, o.Resource.ID, o.Status, o.StatusReason))
	}
	require.Equal(t, []string{
		"semgrep-oss:r1 " + a + " Healthy line 1: msg r1",
		"semgrep-oss:r1 " + a + " Unhealthy line 20: msg r1",
		"semgrep-oss:r2 " + b + " Unhealthy line 1: msg r2",
		"semgrep-oss:r3 " + b + " Healthy line 1: msg r3",
		"semgrep-oss:r3 " + b + " NotApplicable line 1: msg r3",
	}, got)
}

func TestRulesAndLocations(t *testing.T) {
	t.Parallel()
	in := log(map[string]any{
		// Keys in the order that needs the whole run: results first.
		"results": []any{
			// by ruleIndex, no ruleId
			map[string]any{"ruleIndex": 1, "message": map[string]any{"text": "m"}, "locations": at("x.tf", 1)},
			// by rule.id in an extension
			map[string]any{"rule": map[string]any{"id": "EXT1", "index": 0, "toolComponent": map[string]any{"index": 0}},
				"message": map[string]any{"id": "default", "arguments": []any{"bucket-1"}}, "locations": at("y.tf", 1)},
			// hierarchical rule ID: the parent's metadata
			map[string]any{"ruleId": "R0/sub", "locations": at("z.tf", 1)},
			// artifact by index; absolute file URI under a base
			map[string]any{"ruleId": "R0", "locations": []any{map[string]any{"physicalLocation": map[string]any{"artifactLocation": map[string]any{"index": 0}}}}},
			map[string]any{"ruleId": "R0", "locations": at("file:///home/runner/work/repo/lib/c%20d.py", 1)},
			// no location: the repository itself
			map[string]any{"ruleId": "R1", "message": map[string]any{"text": "no SECURITY.md"}},
		},
		"tool": map[string]any{
			"driver": map[string]any{"name": "Checkov", "rules": []any{
				map[string]any{"id": "R0", "name": "RuleZero", "fullDescription": map[string]any{"text": "Full."}, "help": map[string]any{"markdown": "**fix**"}},
				map[string]any{"id": "R1", "shortDescription": map[string]any{"text": "Rule one"}},
			}},
			"extensions": []any{map[string]any{"name": "pack", "rules": []any{
				map[string]any{"id": "EXT1", "messageStrings": map[string]any{"default": map[string]any{"text": "Bucket {0} is public ({1})"}}},
			}}},
		},
		"artifacts":                []any{map[string]any{"location": map[string]any{"uri": "modules/s3/main.tf"}}},
		"originalUriBaseIds":       map[string]any{"SRC": map[string]any{"uri": "file:///home/runner/work/repo/"}},
		"versionControlProvenance": []any{map[string]any{"repositoryUri": "https://token:x-secret@github.com/Org/Repo.git"}},
		"invocations":              []any{map[string]any{"executionSuccessful": true, "endTimeUtc": "2025-03-01T10:00:00Z"}},
	})
	obs, err := parseAll(t, in)
	require.NoError(t, err)
	const repo = "/repos/github.com_Org_Repo"
	var got []string
	for _, o := range obs {
		got = append(got, o.Recommendation.Key+" "+o.Resource.ID+" "+o.Recommendation.DisplayName+" | "+o.StatusReason)
		require.Equal(t, "2025-03-01T10:00:00Z", o.ObservedAt.Format("2006-01-02T15:04:05Z07:00"))
		require.NotContains(t, o.Resource.ID, "secret", "credentials in a repository URI never reach an ID")
	}
	require.Equal(t, []string{
		"checkov:R1 " + repo + "/files/x.tf Rule one | line 1: m",
		"checkov:EXT1 " + repo + "/files/y.tf EXT1 | line 1: Bucket bucket-1 is public ({1})",
		"checkov:R0/sub " + repo + "/files/z.tf RuleZero | line 1: ",
		"checkov:R0 " + repo + "/files/modules/s3/main.tf RuleZero | ",
		"checkov:R0 " + repo + "/files/lib/c d.py RuleZero | line 1: ",
		"checkov:R1 " + repo + " Rule one | no SECURITY.md",
	}, got)
	require.Equal(t, "Full.", obs[2].Recommendation.Description)
	require.Equal(t, "**fix**", obs[2].Recommendation.Remediation)
	require.Equal(t, "repository", obs[5].Resource.Type)
}

func TestRepoName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://github.com/org/repo":          "github.com_org_repo",
		"https://user:pw@GitHub.com/org/repo/": "github.com_org_repo",
		"git@github.com:org/repo.git":          "github.com_org_repo",
		"https://dev.azure.com/o/p/_git/r?x=1": "dev.azure.com_o_p__git_r",
		"":                                     "",
	} {
		require.Equal(t, want, sarif.RepoName(in), in)
	}
}

// cut returns in up to the n-th occurrence of s.
func cut(in []byte, s string, n int) string {
	i := 0
	for range n {
		j := bytes.Index(in[i:], []byte(s))
		i += j + 1
	}
	return string(in[:i-1])
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	good := res("r1", nil)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "  ", "input is empty (want a SARIF 2.1 log)"},
		{"array", `[{"runs": []}]`, "record 1 (line 1): expected a SARIF log object, found an array"},
		{"no runs", `{"version": "2.1.0"}`, "record 1 (line 1): runs is missing: this is not a SARIF log"},
		{"version", `{"version": "2.0.0", "runs": []}`, `record 1 (line 1): version "2.0.0" is not SARIF 2.1 (want "2.1.0")`},
		{"truncated", cut(log(map[string]any{"tool": driver(), "results": []any{good, good}}), "msg r1", 2), "record 2 (line 24): unexpected end of input after record 1"},
		{"truncated before the tool", cut(log(map[string]any{"tool": driver(), "results": []any{good, good}}), `"tool"`, 1), "unexpected end of input after record 2"},
		{"bad json in result", "{\"runs\": [{\"tool\": {\"driver\": {\"name\": \"t\"}},\n\"results\": [{\"ruleId\": \"a\"},\n{\"ruleId\": \"b\" \"level\": \"error\"}]}]}",
			"record 2 (line 3): malformed JSON at byte offset"},
		{"result not an object", `{"runs": [{"tool": {"driver": {"name": "t"}}, "results": [{"ruleId": "a"}, 7]}]}`, "record 2 (line 1): expected a result object, found a number"},
		{"bad level", string(log(map[string]any{"tool": driver(), "results": []any{good, res("r2", map[string]any{"level": "severe"})}})), `record 2 (line 24): level "severe" is not one of error, warning, note, none`},
		{"bad kind", `{"runs": [{"tool": {"driver": {"name": "t"}}, "results": [{"ruleId": "a", "kind": "maybe"}]}]}`, `record 1 (line 1): kind "maybe" is not one of pass`},
		{"no rule id", `{"runs": [{"tool": {"driver": {"name": "t"}}, "results": [{"ruleId": "a"}, {"message": {"text": "x"}}]}]}`, "record 2 (line 1): ruleId is missing"},
		{"no tool name", `{"runs": [{"results": [{"ruleId": "a"}], "tool": {"driver": {}}}]}`, "record 1 (line 1): runs[0].tool.driver.name is missing"},
		{"bad score", `{"runs": [{"tool": {"driver": {"name": "t", "rules": [{"id": "a", "properties": {"security-severity": "high"}}]}}, "results": [{"ruleId": "a"}]}]}`, `record 1 (line 1): properties.security-severity "high" is not a score`},
		{"bad artifact index", `{"runs": [{"tool": {"driver": {"name": "t"}}, "results": [{"ruleId": "a", "locations": [{"physicalLocation": {"artifactLocation": {"index": 3}}}]}]}]}`, "record 1 (line 1): locations[0]: artifactLocation.index 3 names no entry of run.artifacts"},
		{"wrong type", `{"runs": [{"tool": {"driver": {"name": "t"}}, "results": [{"ruleId": 5}]}]}`, "record 1 (line 1): ruleId: expected a string, got number"},
		{"tool wrong type", `{"runs": [{"tool": {"driver": {"name": 1}}}]}`, "record 1 (line 1): runs[0].tool: driver.name: expected a string, got number"},
		{"trailing", `{"runs": []} {}`, "record 1 (line 1): unexpected an object after the end of the SARIF log"},
		{"invalid utf-8", "{\"runs\": [{\"tool\": {\"driver\": {\"name\": \"t\"}}, \"results\": [{\"ruleId\": \"a\", \"locations\": [{\"physicalLocation\": {\"artifactLocation\": {\"uri\": \"a\xff.go\"}}}]}]}]}", "record 1 (line 1): locations[0]: resource.id is not valid UTF-8"},
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

// Results beyond the in-memory spool go through a temporary file, which is
// removed; order and record numbers survive.
func TestLargeRunSpoolsToDisk(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	const n = 20000
	var b bytes.Buffer
	b.WriteString(`{"version": "2.1.0", "runs": [{"results": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"ruleId": "R%d", "level": "error", "message": {"text": "result %d with some padding to fill the spool"}, "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/f%d.go"}}}]}`, i%50, i, i)
	}
	b.WriteString("\n, {\"ruleId\": \"R1\", \"level\": \"bogus\"}")
	b.WriteString(`], "tool": {"driver": {"name": "Big"}}}]}`)
	require.Greater(t, b.Len(), 2<<20)

	_, err := parseAll(t, b.Bytes())
	require.Error(t, err)
	require.Equal(t, fmt.Sprintf(`record %d (line %d): level "bogus" is not one of error, warning, note, none`, n+1, n+1), steward.ErrorMessage(err))

	in := bytes.Replace(b.Bytes(), []byte(`"bogus"`), []byte(`"note"`), 1)
	seen := 0
	spooled := false
	err = sarif.Parser{}.Parse(t.Context(), bytes.NewReader(in), func(o steward.Observation) error {
		if seen < n {
			require.Equal(t, fmt.Sprintf("/repos/unknown/files/src/f%d.go", seen), o.Resource.ID)
			require.Equal(t, steward.SeverityHigh, o.Recommendation.Severity)
		}
		if !spooled {
			entries, _ := os.ReadDir(tmp)
			spooled = len(entries) == 1
		}
		seen++
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, n+1, seen)
	require.True(t, spooled, "a temporary spool file while mapping")
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, entries, "the spool file is removed")
}

func TestStopsOnYieldErrorAndContext(t *testing.T) {
	t.Parallel()
	in := readFile(t, "sarif_input.sarif")
	stop := errors.New("stop")
	n := 0
	err := sarif.Parser{}.Parse(t.Context(), bytes.NewReader(in), func(steward.Observation) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 3, n)

	var b bytes.Buffer
	b.WriteString(`{"runs": [{"tool": {"driver": {"name": "t"}}, "results": [`)
	for i := range 3000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"ruleId": "a"}`)
	}
	b.WriteString(`]}]}`)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = sarif.Parser{}.Parse(ctx, &b, func(steward.Observation) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
}

func TestSniff(t *testing.T) {
	t.Parallel()
	require.True(t, sarif.Sniff(readFile(t, "trivy_alpine-310.sarif")))
	require.True(t, sarif.Sniff(readFile(t, "sarif_input.sarif")))
	require.True(t, sarif.Sniff(readFile(t, "trivy_alpine-310.sarif")[:600]), "head cut inside runs")
	require.True(t, sarif.Sniff([]byte(`{"runs": [{"results": []}], "$schema": "https://json.schemastore.org/sarif-2.1.0.json"}`)))
	require.False(t, sarif.Sniff([]byte(`{"version": 1, "assessments": [{"status_reason": "runs from a sarif tool"}]}`)))
	require.False(t, sarif.Sniff([]byte(`[{"runs": 1}]`)))
}

// FuzzParse checks that no input makes the parser panic, that every error
// is a CodeInvalid *steward.Error naming a record (or the empty input), and
// that every observation it yields is valid.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"trivy_alpine-310.sarif", "sarif_input.sarif"} {
		f.Add(readFile(f, name))
	}
	f.Add(log(map[string]any{"tool": driver(map[string]any{"id": "r", "properties": map[string]any{"security-severity": "5"}}), "results": []any{
		res("r", map[string]any{"kind": "pass"}), res("r", map[string]any{"suppressions": []any{map[string]any{}}}),
		map[string]any{"ruleIndex": 0, "locations": []any{map[string]any{"physicalLocation": map[string]any{"artifactLocation": map[string]any{"index": 0}}}}},
	}, "artifacts": []any{map[string]any{"location": map[string]any{"uri": "file:///a/b"}}}}))
	f.Add([]byte(`{"runs": [{"results": [{"ruleId": "a"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := sarif.Parser{}.Parse(context.Background(), bytes.NewReader(b), func(o steward.Observation) error {
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
