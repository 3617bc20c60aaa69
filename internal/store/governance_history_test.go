package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// levelPrefix must keep what snapshotLevel looks at: the level of the
// prefix is the level of the whole ID.
func TestLevelPrefix(t *testing.T) {
	t.Parallel()
	for _, id := range []string{
		"", "/", "x", "/subscriptions", "/subscriptions/s1", "/subscriptions/s1/resourcegroups",
		"/subscriptions/s1/resourcegroups/rg1", "/subscriptions/s1/resourcegroups/rg1/providers/p/vm",
		"/subscriptions/s1/providers/x/vm", "/subscriptions//resourcegroups/rg", "/subscriptions/s1//rg",
		"/aws", "/aws/accounts", "/aws/accounts/111", "/aws/accounts/111/ec2/x", "/aws/other/111/x",
		"/gcp/projects/p1/zones/z/instances/i", "/gcp/organizations/o1/folders/f", "/gcp/folders/f/x",
		"/other/thing", "/subscriptionsx/s1/x", "relative/subscriptions/s1",
	} {
		require.Equal(t, snapshotLevel(id), snapshotLevel(string(levelPrefix([]byte(id)))), id)
	}
	require.Equal(t, "/subscriptions/s1/resourcegroups", string(levelPrefix([]byte("/subscriptions/s1/resourcegroups/rg1/x"))))
}

func TestMicrosDay(t *testing.T) {
	t.Parallel()
	for _, ts := range []time.Time{
		time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 5, 23, 59, 59, 999999000, time.UTC),
		time.Unix(0, 0),
	} {
		require.Equal(t, dayOf(ts), microsDay(ts.UnixMicro()), ts)
	}
}
