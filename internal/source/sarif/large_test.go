package sarif_test

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/sarif"
)

// gen streams a SARIF log of n results (results before the tool, as
// Flawfinder writes), without holding it, and samples the heap as it goes.
type gen struct {
	n, i  int
	buf   bytes.Buffer
	done  bool
	size  int64
	reads int
	peak  uint64
}

func (g *gen) Read(p []byte) (int, error) {
	for g.buf.Len() < len(p) && !g.done {
		if g.i == 0 {
			g.buf.WriteString(`{"version": "2.1.0", "runs": [{"results": [` + "\n")
		}
		if g.i < g.n {
			if g.i > 0 {
				g.buf.WriteString(",\n")
			}
			fmt.Fprintf(&g.buf, `{"ruleId": "R%d", "level": "warning", "message": {"text": "Finding %d: a result long enough to look like a real scanner message, with a package, a version and a link to https://example.com/advisory/%d"}, "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/pkg%d/file%d.go", "uriBaseId": "%%SRCROOT%%"}, "region": {"startLine": %d}}}]}`,
				g.i%100, g.i, g.i, g.i%20, g.i%499, g.i%700+1)
			g.i++
			continue
		}
		g.buf.WriteString("\n], \"tool\": {\"driver\": {\"name\": \"Gen\"}}}]}\n")
		g.done = true
	}
	g.reads++
	if g.reads%64 == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		g.peak = max(g.peak, ms.HeapInuse)
	}
	n, err := g.buf.Read(p)
	g.size += int64(n)
	if err == io.EOF && !g.done {
		err = nil
	}
	return n, err
}

// TestLargeLogConstantMemory streams 300,000 results (~90 MB; 30,000 under
// the race detector) whose run names its tool only at the end: the results
// are spooled to disk, and the heap stays small.
func TestLargeLogConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams ~90 MB")
	}
	t.Setenv("TMPDIR", t.TempDir())
	results := 300_000
	if raceEnabled {
		results = 30_000
	}
	g := &gen{n: results}
	n := 0
	var ms runtime.MemStats
	err := sarif.Parser{}.Parse(t.Context(), g, func(steward.Observation) error {
		n++
		if n%1000 == 0 {
			runtime.ReadMemStats(&ms)
			g.peak = max(g.peak, ms.HeapInuse)
		}
		return nil
	})
	require.NoError(t, err)
	pairs := map[[2]int]bool{}
	for i := range results {
		pairs[[2]int{i % 100, i % 499}] = true
	}
	require.Equal(t, len(pairs), n, "one observation per (rule, file) pair")
	require.Greater(t, g.size, int64(results)*250)
	require.Less(t, g.peak, uint64(64<<20), "heap in use while parsing")
	t.Logf("%d results, %d MB, %d observations, peak heap in use %d MB", results, g.size>>20, n, g.peak>>20)
}
