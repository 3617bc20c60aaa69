package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
)

// newMigrateCopyCommand is `steward migrate copy`: it moves an installation
// from its SQLite file to PostgreSQL (docs/postgres.md).
func newMigrateCopyCommand() *cobra.Command {
	var from, to string
	var batch int
	cmd := &cobra.Command{
		Use:   "copy --from ./steward.db --to postgres://...",
		Short: "Copy a SQLite installation into an empty PostgreSQL database, then verify it",
		Long: `Copy every row of a Steward SQLite database (assessments, assignments,
tickets, integrations, rules, sources, audit log, tokens, queued jobs, ...)
into an empty PostgreSQL database, whose schema it creates, then read both
back and compare each table's row count and checksum.

It refuses to run while a steward serve (or migrate) uses the SQLite file,
and refuses a target that already holds data. A source at an older schema is
migrated first, as 'steward migrate' would. Sealed integration and source
credentials are copied as they are: the PostgreSQL processes must use the
same secret key (STEWARD_SECRET_KEY_FILE=<the steward.key next to the
SQLite file>, or STEWARD_SECRET_KEY). Progress goes to stderr, the
verification table to stdout; the exit status is non-zero when any table
differs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMigrateCopy(cmd, from, to, batch)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the SQLite database file to copy (its server must be stopped)")
	f.StringVar(&to, "to", "", "the PostgreSQL database to copy into: postgres://user@host/db (must be empty)")
	f.IntVar(&batch, "batch", store.DefaultCopyBatch, "rows per transaction on the target")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func runMigrateCopy(cmd *cobra.Command, from, to string, batch int) error {
	ctx := cmd.Context()
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if store.IsPostgresURL(from) {
		return steward.Errorf(steward.CodeInvalid, "--from must be a SQLite database file, not %s", store.RedactURL(from))
	}
	if !store.IsPostgresURL(to) {
		return steward.Errorf(steward.CodeInvalid, "--to must be a postgres:// URL")
	}
	if batch < 1 || batch > 100000 {
		return steward.Errorf(steward.CodeInvalid, "--batch must be from 1 to 100000")
	}
	// Checked first so that a mistyped path leaves no lock file behind.
	path, err := store.FilePath(from)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return steward.Errorf(steward.CodeNotFound, "no SQLite database at %s", path)
	}
	// A server writing the source while it is copied would be copied
	// half-way; migrations of the source would change it under the server.
	lock, err := server.LockDatabase(from, "migrate copy")
	if err != nil {
		return err
	}
	defer lock.Release()
	before, err := store.SQLiteSchemaVersion(ctx, from)
	if err != nil {
		return err
	}
	// Warnings only: the migrations' own lines are summarized below.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, err := store.Open(ctx, from, logger)
	if err != nil {
		return fmt.Errorf("open the source: %w", err)
	}
	defer src.Close()
	sv, err := src.Versions(ctx)
	if err != nil {
		return err
	}
	if sv.Latest() != before {
		fmt.Fprintf(stderr, "The source's schema was at migration %04d: migrated it to %04d first (as 'steward migrate' does).\n", before, sv.Latest())
	}
	dst, err := store.Open(ctx, to, logger)
	if err != nil {
		return fmt.Errorf("open the target: %w", err)
	}
	defer dst.Close()

	fmt.Fprintf(stderr, "Copying %s to %s (schema %04d).\n", src.Path(), dst.Path(), sv.Latest())
	start := time.Now()
	p := newProgress(stderr)
	report, err := store.Copy(ctx, src, dst, store.CopyOptions{BatchRows: batch, Progress: func(cp store.CopyProgress) {
		if !cp.Finished {
			if cp.Done == 0 {
				p.restart() // the rate and ETA are the table's
			}
			p.show(p.line(cp.Table, cp.Done, cp.Total, cp.Done, "rows"))
			return
		}
		p.replaceLine(fmt.Sprintf("  %-26s %10d rows  %7.1fs  %9s rows/s", cp.Table, cp.Done, cp.Elapsed.Seconds(), rate(cp.Done, cp.Elapsed)))
	}})
	p.done()
	if err != nil {
		return err // it says whether the target was emptied again
	}
	var rows int64
	for _, t := range report.Tables {
		rows += t.Rows
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stderr, "Copied %d rows of %d tables in %.1fs (%s rows/s; indexes and foreign keys built in %.1fs); %d sequences set past the highest ID; installation ID %s kept.\n",
		rows, len(report.Tables), elapsed.Seconds(), rate(rows, elapsed), report.Rebuild.Seconds(), report.Sequences, report.InstallationID)
	if report.RescuedJobs > 0 {
		fmt.Fprintf(stderr, "%d jobs the stopped server left running were copied as available, to run again on PostgreSQL (SQLite's next start would have done the same).\n", report.RescuedJobs)
	}
	for _, s := range report.Skipped {
		fmt.Fprintf(stderr, "Not copied: %s (%s).\n", s.Table, s.Reason)
	}

	fmt.Fprintln(stderr, "Verifying: reading both databases back in primary-key order...")
	vstart := time.Now()
	checks, err := store.Verify(ctx, src, dst)
	if err != nil {
		return err
	}
	bad := printChecks(stdout, checks)
	fmt.Fprintf(stderr, "Verified in %.1fs.\n", time.Since(vstart).Seconds())
	if bad > 0 {
		return steward.Errorf(steward.CodeConflict, "verification failed: %d of %d tables differ between %s and %s", bad, len(checks), src.Path(), dst.Path())
	}
	fmt.Fprintf(stdout, "All %d tables match. Run steward serve with STEWARD_DATABASE_URL set to the --to URL and the same secret key.\n", len(checks))
	return nil
}

// replaceLine writes s as a line of its own, in place of the progress
// line on a terminal.
func (p *progress) replaceLine(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
	fmt.Fprintln(p.w, s)
}

// printChecks prints the verification table and returns how many tables
// differ.
func printChecks(w io.Writer, checks []store.TableCheck) int {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row(tw, "TABLE", "ROWS", "CHECKSUM", "MATCH")
	bad := 0
	for _, c := range checks {
		rows := fmt.Sprint(c.SourceRows)
		if c.TargetRows != c.SourceRows {
			rows = fmt.Sprintf("%d (target %d)", c.SourceRows, c.TargetRows)
		}
		match := "yes"
		if !c.Match() {
			bad++
			match = "NO: " + c.Difference
			if c.Difference == "" {
				match = "NO: target checksum " + c.TargetSum[:16]
			}
		}
		row(tw, c.Table, rows, c.SourceSum[:16], match)
	}
	_ = tw.Flush()
	return bad
}

func rate(n int64, d time.Duration) string {
	if d < time.Millisecond {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}
