package demo_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/demo"
)

// TestCheck runs the whole demo headless: emulator, server, import,
// integration, tickets of each type, and the agent's changes followed by
// Steward, each verified on both sides.
func TestCheck(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := demo.Run(t.Context(), demo.Options{Check: true, Addr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0", Dir: t.TempDir()}, &out)
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "13 passed, 0 failed")
	require.NotContains(t, out.String(), "FAILED")
	require.Regexp(t, `aws \d+, azure \d+, gcp \d+`, out.String(), "unhealthy findings per cloud, readable")
	require.NotContains(t, out.String(), "map[")
}

// TestNarration runs the narrated demo (no pauses) until it waits for
// Ctrl-C: tickets name fictitious accounts rather than the samples'
// placeholders, the output says so, and the hints work as printed.
func TestNarration(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &cancelOn{marker: "Press Ctrl-C to stop.", cancel: cancel}
	err := demo.Run(ctx, demo.Options{Pace: -1, Addr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0", Dir: t.TempDir(), CLI: "go run ./cmd/steward"}, out)
	require.NoError(t, err)
	text := out.String()
	require.Contains(t, text, "Press Ctrl-C to stop.")
	require.Contains(t, text, "filled with fictitious ones")
	require.Contains(t, text, "/subscriptions/5f3c1e2a-7b9d-4e60-a1c4-0de5a7b9c2f1/")
	require.NotRegexp(t, `<(subscription|account|resource|project)_[a-z]+>`, text)
	require.Contains(t, text, "then: go run ./cmd/steward tickets list")
}

// cancelOn collects output and cancels once marker has been written.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel func()
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.marker) {
		c.cancel()
	}
	return n, err
}

func (c *cancelOn) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// TestRefusesUsedDirectory keeps the demo from touching a real database.
func TestRefusesUsedDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, demo.Run(t.Context(), demo.Options{Check: true, Addr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0", Dir: dir}, &out))
	err := demo.Run(t.Context(), demo.Options{Check: true, Addr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0", Dir: dir}, &out)
	require.ErrorContains(t, err, "already holds a Steward database")
}
