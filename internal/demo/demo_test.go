package demo_test

import (
	"bytes"
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
	require.Contains(t, out.String(), "12 passed, 0 failed")
	require.NotContains(t, out.String(), "FAILED")
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
