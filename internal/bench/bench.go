// Package bench is `steward bench`: it runs the standard scenarios of
// issue 15 on this machine — import, page latency, ticket creation,
// webhook paced and burst, poll and reconcile — each against Steward
// started in process (server.New on a fresh SQLite database, real HTTP on
// loopback) and the ServiceNow emulator (snowemu) on loopback, and prints
// one Markdown table: the median of several runs of each measure next to
// its target and, where one exists, the naive baseline.
//
// It measures only through public surfaces — the HTTP API, the emulator,
// server options — so it measures whatever the code does at run time.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/store"
)

// Scenario names, in the order they run.
const (
	ScenarioImport  = "import"
	ScenarioPages   = "pages"
	ScenarioTickets = "tickets"
	ScenarioPaced   = "paced"
	ScenarioBurst   = "burst"
	ScenarioSync    = "sync"
)

// Scenarios are every scenario name, in order.
var Scenarios = []string{ScenarioImport, ScenarioPages, ScenarioTickets, ScenarioPaced, ScenarioBurst, ScenarioSync}

// Options configure a bench run. Zero values take the defaults.
type Options struct {
	// Runs is how many times each scenario runs (default 3); the table
	// shows medians. The sync scenario runs once.
	Runs int
	// Only lists the scenarios to run (default all).
	Only []string
	// ImportSize is the estate's assessments (default 1,000,000).
	ImportSize int
	// PageRequests is how many timed GETs each page gets (default 1,000).
	PageRequests int
	// Tickets is how many tickets the ticket-creation scenario opens
	// (default 10,000).
	Tickets int
	// Burst is the burst size (default 1,000).
	Burst int
	// Paced is how many changes the paced scenario makes (default 200).
	Paced int
	// ReconcileSize is how many linked tickets the sync scenario
	// reconciles (default 100,000).
	ReconcileSize int
	// PostgresServer, when set, is the URL of a PostgreSQL server (any
	// database on it) where the bench creates a database of its own for
	// each Steward it starts and drops it afterwards; by default each
	// Steward runs on a fresh SQLite file.
	PostgresServer string
	// Dir holds the temporary files and databases (default the system's
	// temporary directory); everything made is removed at the end.
	Dir string
	// Command is how the bench was run, printed above the table.
	Command string
	// Logger receives Steward's and the emulator's logs (default discarded).
	Logger *slog.Logger
}

func (o *Options) defaults() error {
	setDefault := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setDefault(&o.Runs, 3)
	setDefault(&o.ImportSize, 1_000_000)
	setDefault(&o.PageRequests, 1000)
	setDefault(&o.Tickets, 10_000)
	setDefault(&o.Burst, 1000)
	setDefault(&o.Paced, 200)
	setDefault(&o.ReconcileSize, 100_000)
	if len(o.Only) == 0 {
		o.Only = Scenarios
	}
	for _, s := range o.Only {
		if !slices.Contains(Scenarios, s) {
			return fmt.Errorf("unknown scenario %q (scenarios: %s)", s, strings.Join(Scenarios, ", "))
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func (o *Options) selected(s string) bool { return slices.Contains(o.Only, s) }

// runner is one bench run: its options, where progress goes, the rows.
type runner struct {
	opts     Options
	progress io.Writer
	dir      string
	rows     []*Row
}

// Run runs the selected scenarios and writes the machine, the command and
// the table to out; progress lines go to progress. A scenario that fails
// shows its error in its rows; Run then returns an error after the table.
// When ctx ends (Ctrl-C), the table holds the runs finished so far.
func Run(ctx context.Context, opts Options, out, progress io.Writer) error {
	if err := opts.defaults(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(opts.Dir, "steward-bench-")
	if err != nil {
		return fmt.Errorf("create the bench directory: %w", err)
	}
	defer os.RemoveAll(dir)
	r := &runner{opts: opts, progress: progress, dir: dir}
	machine := Machine()
	if opts.PostgresServer != "" {
		if _, err := createDatabaseCheck(ctx, opts.PostgresServer); err != nil {
			return err
		}
		machine += "; store: PostgreSQL at " + store.RedactURL(opts.PostgresServer) + " (a fresh database for each server)"
	} else {
		machine += "; store: SQLite (a fresh file for each server)"
	}
	start := time.Now()
	var failed []string
	for _, s := range []struct {
		names []string
		run   func(context.Context) error
	}{
		{[]string{ScenarioImport, ScenarioPages}, r.importAndPages},
		{[]string{ScenarioTickets}, r.tickets},
		{[]string{ScenarioPaced, ScenarioBurst}, r.webhooks},
		{[]string{ScenarioSync}, r.sync},
	} {
		if !slices.ContainsFunc(s.names, opts.selected) {
			continue
		}
		if err := s.run(ctx); err != nil {
			if ctx.Err() != nil {
				// Interrupted: print what was measured so far.
				failed = append(failed, "interrupted")
				break
			}
			r.logf("%s: %v", strings.Join(s.names, "/"), err)
			failed = append(failed, fmt.Sprintf("%s: %v", strings.Join(s.names, "/"), err))
		}
	}
	fmt.Fprintf(out, "Machine: %s\n\n", machine)
	if opts.Command != "" {
		fmt.Fprintf(out, "Command: `%s` (%s in all)\n\n", opts.Command, time.Since(start).Round(time.Second))
	}
	rows := make([]Row, 0, len(r.rows))
	for _, row := range r.rows {
		rows = append(rows, *row)
	}
	if err := Render(out, rows); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d scenario(s) failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}

// row adds a row to the table and returns it, for the runs to fill.
func (r *runner) row(row Row) *Row {
	p := &row
	r.rows = append(r.rows, p)
	return p
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.progress, "bench: "+format+"\n", args...)
}

// fail marks rows whose runs did not all give a figure; an interrupted
// bench keeps the runs that finished.
func fail(err error, rows ...*Row) {
	for _, row := range rows {
		switch {
		case errors.Is(err, context.Canceled):
			row.Note = "interrupted"
		case row.Err == "":
			row.Err = err.Error()
		}
	}
}

// createDatabaseCheck creates and drops one database, so a server the
// bench cannot use fails before anything runs.
func createDatabaseCheck(ctx context.Context, server string) (bool, error) {
	d, err := createDatabase(ctx, server)
	if err != nil {
		return false, err
	}
	return true, d.drop()
}
