package auth

import (
	"testing"
	"time"
)

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "12h": 12 * time.Hour, "1m": time.Minute} {
		got, err := ParseExpiry(in, now)
		if err != nil || got == nil || !got.Equal(now.Add(want)) {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", in, got, err, now.Add(want))
		}
	}
	for _, in := range []string{"", "never"} {
		if got, err := ParseExpiry(in, now); err != nil || got != nil {
			t.Errorf("ParseExpiry(%q) = %v, %v; want no expiry", in, got, err)
		}
	}
	for _, in := range []string{"0d", "-1d", "5000d", "10s", "soon", "1.5d"} {
		if _, err := ParseExpiry(in, now); err == nil {
			t.Errorf("ParseExpiry(%q) succeeded", in)
		}
	}
}
