package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress draws a one-line status on a terminal, rewritten in place. When
// stderr is not a terminal (CI logs, pipes) it stays silent so logs are not
// flooded with carriage returns.
type progress struct {
	w     io.Writer
	tty   bool
	start time.Time // of the whole operation: for the ETA
	// phase and phaseStart make the rate that of the current phase (e.g.
	// applying), not diluted by the one before (validating).
	phase      string
	phaseStart time.Time
	phaseBase  int64 // the count when the phase was first seen
	mu         sync.Mutex
	shown      bool
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil {
			tty = st.Mode()&os.ModeCharDevice != 0
		}
	}
	now := time.Now()
	return &progress{w: w, tty: tty, start: now, phaseStart: now}
}

func (p *progress) restart() { p.start, p.phaseStart, p.phase = time.Now(), time.Now(), "" }

// line formats "phase  count unit  rate/s  pct  ETA". done/total measure the
// work for the percentage and ETA; count is what the user cares about.
func (p *progress) line(phase string, done, total, count int64, unit string) string {
	if phase != p.phase {
		p.phase, p.phaseStart, p.phaseBase = phase, time.Now(), count
	}
	elapsed := time.Since(p.start).Seconds()
	rate := "…"
	// A rate over less than half a second of samples is noise.
	if inPhase := time.Since(p.phaseStart).Seconds(); inPhase >= 0.5 {
		rate = fmt.Sprintf("%.0f", float64(count-p.phaseBase)/inPhase)
	}
	s := fmt.Sprintf("%-10s %12d %s  %10s %s/s", phase, count, unit, rate, unit)
	if total > 0 && done > 0 {
		frac := float64(done) / float64(total)
		s += fmt.Sprintf("  %5.1f%%", 100*frac)
		if frac < 1 && elapsed >= 0.5 {
			eta := time.Duration(elapsed * (1 - frac) / frac * float64(time.Second)).Round(time.Second)
			s += fmt.Sprintf("  ETA %s", eta)
		}
	}
	return s
}

func (p *progress) show(s string) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K%s", s)
	p.shown = true
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}

// every calls render and shows its line at the interval until the returned
// stop function is called.
func (p *progress) every(d time.Duration, render func() string) (stop func()) {
	if !p.tty {
		return func() {}
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				p.show(render())
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
		p.show(render())
		p.done()
	}
}
