package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward/internal/demo"
)

func newDemoCommand(stdout, stderr io.Writer) *cobra.Command {
	var opts demo.Options
	var verbose bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole flow on this machine: findings → ServiceNow tickets → sync, with nothing to set up",
		Long: `Run the whole flow on this machine, with nothing to install or configure:
the built-in ServiceNow emulator, Steward on a fresh SQLite database (or an
empty PostgreSQL one with --db postgres://...), real
Prowler findings for AWS, Azure and GCP, a ServiceNow integration, tickets of
each type, and an agent in ServiceNow who resolves, cancels and reassigns
them while Steward follows. It keeps running so you can look around; Ctrl-C
stops everything.

--check runs the same flow headless, verifies every step on both sides,
prints a summary and exits non-zero on the first failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if verbose {
				opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			}
			if opts.Check {
				// Never collide with a demo or server already running.
				opts.Addr, opts.EmulatorAddr = "127.0.0.1:0", "127.0.0.1:0"
			}
			opts.CLI = cliInvocation()
			err := demo.Run(cmd.Context(), opts, stdout)
			if errors.Is(err, demo.ErrCheckFailed) {
				cmd.SilenceErrors = false
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Check, "check", false, "run headless, verify every step, exit non-zero on the first failure")
	f.StringVar(&opts.Dir, "dir", "", "directory for the demo database (default: a temporary one, removed at the end)")
	f.StringVar(&opts.DatabaseURL, "db", "", "run on this empty PostgreSQL database (postgres://...) instead of a SQLite file in --dir")
	f.StringVar(&opts.Addr, "addr", "127.0.0.1:8080", "Steward's listen address (a free port is used if busy)")
	f.StringVar(&opts.EmulatorAddr, "emulator-addr", "127.0.0.1:8089", "the ServiceNow emulator's listen address (a free port is used if busy)")
	f.DurationVar(&opts.Timeout, "timeout", 15*time.Second, "how long to wait for Steward to follow each change")
	f.BoolVar(&verbose, "verbose", false, "also print Steward's and the emulator's logs")
	return cmd
}

// cliInvocation is how the user ran this binary, for hints that work as
// printed: `go run` builds into a temporary go-build directory that is gone
// afterwards, so its users are told `go run ./cmd/steward`.
func cliInvocation() string {
	exe, err := os.Executable()
	if err != nil || strings.Contains(exe, "go-build") {
		return "go run ./cmd/steward"
	}
	return exe
}
