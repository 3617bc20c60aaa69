package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBenchPrintsEveryMeasure runs `steward bench` end to end with tiny
// sizes (real Steward, emulator and HTTP on loopback) and checks that the
// table has every scenario's rows, each with a figure. No speed is
// asserted: the figures of such small runs mean nothing.
func TestBenchPrintsEveryMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every bench scenario (about 30 s)")
	}
	var stdout, stderr bytes.Buffer
	root := newRootCommand(&stdout, &stderr)
	root.SetArgs([]string{"bench", "--runs", "1", "--import-size", "2000", "--page-requests", "50", "--tickets", "100",
		"--burst", "20", "--paced", "10", "--reconcile-size", "200", "--dir", t.TempDir()})
	require.NoError(t, root.ExecuteContext(t.Context()), stderr.String())

	out := stdout.String()
	require.Contains(t, out, "Machine: ")
	require.Contains(t, out, "Command: `steward bench --burst 20 ")
	var rows []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| scenario") && !strings.HasPrefix(line, "| ---") {
			rows = append(rows, line)
		}
	}
	perScenario := map[string]int{}
	figure := regexp.MustCompile(`^\*\*[0-9][0-9,.]*( ?(/s|ms|s|MiB))?\*\* \(1\)`)
	for _, row := range rows {
		cells := strings.Split(strings.Trim(row, "| "), " | ")
		require.Len(t, cells, 6, row)
		perScenario[cells[0]]++
		require.Regexp(t, figure, cells[2], "row without a figure: %s", row)
		require.Contains(t, []string{"pass", "miss", "—"}, cells[5], row)
	}
	require.Equal(t, map[string]int{"import": 2, "pages": 3, "tickets": 2, "webhook paced": 3, "webhook burst": 5, "sync": 3}, perScenario, out)
	// The measured baselines (WithSyncBatch(1)) have figures too.
	for _, row := range rows {
		if strings.HasPrefix(row, "| webhook burst") {
			require.Regexp(t, `\| [0-9][0-9,.]* ?(/s|ms|s) \(1\) \| (pass|miss) \|$`, row)
		}
	}
	require.Contains(t, stderr.String(), "bench: import/pages: run 1/1")
}
