package logthrottle

import (
	"testing"
	"time"
)

func TestBurstThenOnePerInterval(t *testing.T) {
	l := New(3, time.Minute)
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	written := 0
	for i := range 100 {
		if ok, _ := l.Allow("a", t0.Add(time.Duration(i)*time.Millisecond)); ok {
			written++
		}
	}
	if written != 3 {
		t.Fatalf("written %d lines of 100 in one interval, want 3", written)
	}
	ok, suppressed := l.Allow("a", t0.Add(time.Minute))
	if !ok || suppressed != 97 {
		t.Fatalf("next interval: ok %v suppressed %d, want true 97", ok, suppressed)
	}
	if ok, _ := l.Allow("b", t0); !ok {
		t.Fatal("another key has its own budget")
	}
}

func TestKeySprayIsBounded(t *testing.T) {
	l := New(1, time.Minute)
	t0 := time.Now()
	written := 0
	for i := range 10 * maxKeys {
		if ok, _ := l.Allow(i, t0); ok {
			written++
		}
	}
	if len(l.keys) > maxKeys+1 {
		t.Fatalf("tracks %d keys, want at most %d", len(l.keys), maxKeys+1)
	}
	if written > maxKeys+1 {
		t.Fatalf("wrote %d lines for a spray of keys, want at most %d", written, maxKeys+1)
	}
}
