package stewardjson_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/stewardjson"
)

const record = `{"resource":{"id":"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm%d","name":"vm%d","type":"Microsoft.Compute/virtualMachines","cloud":"azure","region":"westeurope","tags":{"env":"prod","owner":"team-a@example.com"}},"recommendation":{"key":"rec-%d","display_name":"Endpoint protection should be installed","description":"Install an endpoint protection solution on your virtual machines.","remediation":"Follow the steps in the portal.","severity":"High","category":"Compute","source":"defender"},"status":"Unhealthy","status_reason":"No endpoint protection found","observed_at":"2025-02-14T13:27:03Z"}`

// gen streams n records, as JSON Lines or as a document, without holding
// them all in memory.
type gen struct {
	n, i     int
	document bool
	buf      bytes.Buffer
	done     bool
	size     int64
}

func (g *gen) Read(p []byte) (int, error) {
	for g.buf.Len() < len(p) && !g.done {
		switch {
		case g.i == 0 && g.document:
			g.buf.WriteString("{\"version\": 1, \"assessments\": [\n")
		}
		if g.i < g.n {
			if g.document && g.i > 0 {
				g.buf.WriteString(",\n")
			}
			fmt.Fprintf(&g.buf, record, g.i, g.i, g.i%500)
			if !g.document {
				g.buf.WriteByte('\n')
			}
			g.i++
			continue
		}
		if g.document {
			g.buf.WriteString("\n]}\n")
		}
		g.done = true
	}
	n, err := g.buf.Read(p)
	g.size += int64(n)
	if err == io.EOF && !g.done {
		err = nil
	}
	return n, err
}

func parse(t testing.TB, in []byte) ([]steward.Observation, error) {
	var out []steward.Observation
	err := stewardjson.Parser{}.Parse(context.Background(), bytes.NewReader(in), func(o steward.Observation) error {
		out = append(out, o)
		return nil
	})
	return out, err
}

func generate(t testing.TB, n int, document bool) []byte {
	b, err := io.ReadAll(&gen{n: n, document: document})
	require.NoError(t, err)
	return b
}

func TestForms(t *testing.T) {
	t.Parallel()
	want := steward.Observation{
		Resource: steward.Resource{
			ID: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1", Name: "vm1",
			Type: "Microsoft.Compute/virtualMachines", Cloud: steward.CloudAzure, Region: "westeurope",
			Tags: map[string]string{"env": "prod", "owner": "team-a@example.com"},
		},
		Recommendation: steward.Recommendation{
			Key: "rec-1", DisplayName: "Endpoint protection should be installed",
			Description: "Install an endpoint protection solution on your virtual machines.",
			Remediation: "Follow the steps in the portal.", Severity: steward.SeverityHigh, Category: "Compute", Source: "defender",
		},
		Status: steward.StatusUnhealthy, StatusReason: "No endpoint protection found",
		ObservedAt: time.Date(2025, 2, 14, 13, 27, 3, 0, time.UTC),
	}
	for _, tc := range []struct {
		title string
		in    []byte
	}{
		{"jsonl", generate(t, 3, false)},
		{"document", generate(t, 3, true)},
		{"document minified without version", []byte(`{"assessments":[` + strings.Join([]string{fmt.Sprintf(record, 0, 0, 0), fmt.Sprintf(record, 1, 1, 1), fmt.Sprintf(record, 2, 2, 2)}, ",") + `]}`)},
		{"jsonl with blank lines, CRLF and BOM", []byte("\xef\xbb\xbf\r\n" + fmt.Sprintf(record, 0, 0, 0) + "\r\n\r\n" + fmt.Sprintf(record, 1, 1, 1) + "\r\n" + fmt.Sprintf(record, 2, 2, 2))},
	} {
		t.Run(tc.title, func(t *testing.T) {
			t.Parallel()
			obs, err := parse(t, tc.in)
			require.NoError(t, err)
			require.Len(t, obs, 3)
			require.Equal(t, want, obs[1])
		})
	}
}

func TestEmptyDocument(t *testing.T) {
	t.Parallel()
	obs, err := parse(t, []byte(`{"assessments": []}`))
	require.NoError(t, err)
	require.Empty(t, obs)
}

func TestLongLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 1<<20)
	in := fmt.Sprintf(`{"resource":{"id":"r1","cloud":"aws","tags":{"big":%q}},"recommendation":{"key":"k","severity":"low"},"status":"pass"}`+"\n", long)
	obs, err := parse(t, []byte(in+in))
	require.NoError(t, err)
	require.Len(t, obs, 2)
	require.Len(t, obs[1].Resource.Tags["big"], 1<<20)
	require.Equal(t, steward.StatusHealthy, obs[1].Status)
	require.Equal(t, steward.SeverityLow, obs[1].Recommendation.Severity)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	ok := fmt.Sprintf(record, 0, 0, 0)
	with := func(old, new string) string { return strings.Replace(ok, old, new, 1) }
	lines := func(recs ...string) []byte { return []byte(strings.Join(recs, "\n") + "\n") }
	doc := generate(t, 3, true)
	tests := []struct {
		title string
		in    []byte
		want  string
	}{
		{"empty", nil, "input is empty"},
		{"not an object", []byte("[1]"), "record 1 (line 1): expected a JSON object, found an array"},
		{"malformed jsonl", lines(ok, ok, `{"resource": {"id": "x",}}`), `record 3 (line 3): malformed JSON at byte offset 1294: invalid character '}' looking for beginning of object key string`},
		{"malformed document", []byte("{\"assessments\": [\n" + ok + ",\n{\"resource\":\n nope}]}"), "record 2 (line 4): malformed JSON at byte offset 669: invalid character 'o' in literal null (expecting 'u')"},
		{"truncated document", doc[:len(doc)-200], "record 3 (line 4): unexpected end of input after record 2"},
		{"truncated document between records", doc[:bytes.LastIndex(doc, []byte(",\n"))+1], "record 3 (line 3): unexpected end of input after record 2"},
		{"truncated document after array", doc[:len(doc)-3], "record 4 (line 5): unexpected end of input after record 3"},
		{"truncated jsonl", lines(ok, ok, ok[:100]), "record 3 (line 3): unexpected end of input after record 2"},
		{"unknown severity", lines(ok, with(`"High"`, `"Severe"`)), `record 2 (line 2): recommendation.severity: unknown severity "Severe" (want Low, Medium, High or Critical)`},
		{"missing severity", lines(with(`"severity":"High",`, ``)), `record 1 (line 1): recommendation.severity is missing`},
		{"missing resource id", lines(ok, ok, with(`"id":"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm0",`, ``)), "record 3 (line 3): resource.id is missing"},
		{"blank resource id", lines(with(`"id":"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm0"`, `"id":"  "`)), "record 1 (line 1): resource.id is missing"},
		{"missing resource", lines(`{"recommendation":{"key":"k","severity":"Low"},"status":"Healthy"}`), "record 1 (line 1): resource is missing"},
		{"missing recommendation key", lines(with(`"key":"rec-0",`, ``)), "record 1 (line 1): recommendation.key is missing"},
		{"bad status", lines(with(`"status":"Unhealthy"`, `"status":"Sick"`)), `record 1 (line 1): status: unknown status "Sick" (want Healthy, Unhealthy or NotApplicable)`},
		{"missing status", lines(with(`"status":"Unhealthy",`, ``)), `record 1 (line 1): status is missing`},
		{"bad cloud", lines(with(`"cloud":"azure"`, `"cloud":"azur"`)), `record 1 (line 1): resource.cloud: unknown cloud "azur"`},
		{"bad time", lines(with(`"2025-02-14T13:27:03Z"`, `"yesterday"`)), `record 1 (line 1): observed_at "yesterday" is not an RFC 3339 time`},
		{"unknown field", lines(ok, with(`"status_reason"`, `"reason"`)), `record 2 (line 2): unknown field "reason"`},
		{"unknown nested field", lines(with(`"region"`, `"location"`)), `record 1 (line 1): unknown field "resource.location"`},
		{"unknown document field", []byte(`{"version":1,"findings":[]}`), `record 1 (line 1): unknown field "findings" in the document`},
		{"unsupported version", []byte(`{"version":2,"assessments":[]}`), `unsupported version 2 (want 1)`},
		{"wrong type", lines(with(`"env":"prod"`, `"env":42`)), "record 1 (line 1): resource.tags: expected a string, got number"},
		{"wrong type object", lines(with(`"status":"Unhealthy"`, `"status":{"x":1}`)), "record 1 (line 1): status: expected a string, got object"},
		{"record not an object", []byte(`{"assessments":[` + ok + `, 7]}`), "record 2 (line 1): expected an assessment object, found a number"},
		{"garbage after document", append(bytes.Clone(doc), "{}"...), "record 4 (line 6): unexpected an object after the end of the document"},
	}
	for _, tc := range tests {
		t.Run(tc.title, func(t *testing.T) {
			t.Parallel()
			_, err := parse(t, tc.in)
			require.Error(t, err)
			require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err), err.Error())
			require.Contains(t, steward.ErrorMessage(err), tc.want)
		})
	}
}

func TestYieldErrorStops(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	n := 0
	err := stewardjson.Parser{}.Parse(t.Context(), bytes.NewReader(generate(t, 10, false)), func(steward.Observation) error {
		n++
		if n == 4 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 4, n)
}

func TestContextCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := stewardjson.Parser{}.Parse(ctx, &gen{n: 5000}, func(steward.Observation) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
}

// TestMillionRecords streams 1,000,000 records (~620 MB; 100,000 under the
// race detector) and checks that the heap stays small: the parser must
// never hold the input.
func TestMillionRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("streams ~620 MB")
	}
	records := 1_000_000
	if raceEnabled {
		records = 100_000
	}
	g := &gen{n: records, document: true}
	var peak uint64
	var ms runtime.MemStats
	n := 0
	err := stewardjson.Parser{}.Parse(t.Context(), g, func(steward.Observation) error {
		n++
		if n%100_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, records, n)
	require.Greater(t, g.size, int64(records)*400)
	require.Less(t, peak, uint64(64<<20), "heap in use while parsing")
	t.Logf("%d records, %d MB, peak heap in use %d MB", n, g.size>>20, peak>>20)
}

// BenchmarkParse parses 100,000 generated records. Records/s is reported
// as rec/s.
func BenchmarkParse(b *testing.B) {
	for _, document := range []bool{false, true} {
		name := "jsonl"
		if document {
			name = "document"
		}
		in := generate(b, 100_000, document)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				err := stewardjson.Parser{}.Parse(b.Context(), bytes.NewReader(in), func(steward.Observation) error {
					n++
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rec/s")
		})
	}
}
