package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeStorm writes n Unhealthy High assessments, never seen before, as
// Steward JSON Lines: 1,000 resources in 10 resource groups, each failing
// n/1,000 recommendations.
func writeStorm(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	w := bufio.NewWriter(f)
	for i := range n {
		res, rec := i%1000, i/1000
		fmt.Fprintf(w, `{"resource":{"id":"/subscriptions/storm/resourceGroups/rg-%d/providers/Microsoft.Compute/virtualMachines/vm-%d","cloud":"azure"},`+
			`"recommendation":{"key":"storm-rec-%d","display_name":"Storm recommendation %d","severity":"High"},"status":"Unhealthy"}`+"\n",
			res%10, res, rec, rec)
	}
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
}

// requestClock records when the emulator was asked something.
type requestClock struct {
	mu    sync.Mutex
	times []time.Time
	what  []string
}

func (c *requestClock) tick(what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.times = append(c.times, time.Now())
	c.what = append(c.what, what)
}

func (c *requestClock) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.times)
}

// stats returns the most requests in any one-second window and the mean
// rate over the seconds that saw requests (so the restart's pause does not
// dilute it).
func (c *requestClock) stats() (peak int, rate float64) {
	c.mu.Lock()
	ts := slices.Clone(c.times)
	c.mu.Unlock()
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	seconds := map[int64]bool{}
	j := 0
	for i, tm := range ts {
		for tm.Sub(ts[j]) >= time.Second {
			j++
		}
		peak = max(peak, i-j+1)
		seconds[tm.Unix()] = true
	}
	if len(seconds) > 0 {
		rate = float64(len(ts)) / float64(len(seconds))
	}
	return peak, rate
}

func (c *requestClock) peakIn(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	peak, j := 0, 0
	for i, tm := range c.times {
		for tm.Sub(c.times[j]) >= d {
			j++
		}
		peak = max(peak, i-j+1)
	}
	return peak
}

// span is when the first and the last request of what (method and path)
// came, and how many there were.
func (c *requestClock) span(what string) (first, last time.Time, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, w := range c.what {
		if w != what {
			continue
		}
		if n == 0 || c.times[i].Before(first) {
			first = c.times[i]
		}
		if c.times[i].After(last) {
			last = c.times[i]
		}
		n++
	}
	return first, last, n
}
