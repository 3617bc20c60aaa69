package store_test

import (
	"testing"

	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestStore runs the behaviour suite on every backend.
func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t)
}
