package stewardjson_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/stewardjson"
)

// TestDocExamples parses the examples of docs/formats.md, so the
// documentation cannot drift from the parser.
func TestDocExamples(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../../docs/formats.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```(?:json|text)\n(\\{.*?)```").FindAllStringSubmatch(string(doc), -1)
	require.GreaterOrEqual(t, len(blocks), 2)
	for _, want := range []struct {
		block, n int
	}{{0, 2}, {1, 2}} {
		n := 0
		err := stewardjson.Parser{}.Parse(t.Context(), strings.NewReader(blocks[want.block][1]), func(steward.Observation) error { n++; return nil })
		require.NoError(t, err, "example %d", want.block)
		require.Equal(t, want.n, n)
	}
}
