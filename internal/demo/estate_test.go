package demo

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/sample"
)

// estatePlaceholder matches the upstream placeholders that name accounts,
// subscriptions, projects and resources (not those of remediation text).
var estatePlaceholder = regexp.MustCompile(`<(account|subscription|tenant|organization|project|resource|finding|region)[a-z_]*>|<uid>`)

// TestFillPlaceholders fills every estate placeholder of every bundled file
// with the same value each time, keeps the JSON valid, and leaves the
// embedded files unchanged.
func TestFillPlaceholders(t *testing.T) {
	t.Parallel()
	files := sample.Files()
	require.Len(t, files, 3)
	for _, f := range files {
		require.Regexp(t, estatePlaceholder, string(f.Data), "%s has placeholders upstream", f.Name)
		filled := fillPlaceholders(f.Name, f.Data)
		require.NotRegexp(t, estatePlaceholder, string(filled), f.Name)
		require.True(t, json.Valid(filled), f.Name)
		require.Equal(t, filled, fillPlaceholders(f.Name, f.Data), "deterministic")
		require.Regexp(t, estatePlaceholder, string(sample.Files()[0].Data), "the embedded file is unchanged")
	}
}
