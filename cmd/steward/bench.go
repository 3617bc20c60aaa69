package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stewardhq/steward/internal/bench"
	"github.com/stewardhq/steward/internal/store"
)

func newBenchCommand(stdout, stderr io.Writer) *cobra.Command {
	var opts bench.Options
	var verbose bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Steward on this machine: import, pages, tickets, webhooks, sync; prints one Markdown table",
		Long: `Run the standard scenarios on this machine against the built-in ServiceNow
emulator, with Steward started in process on fresh SQLite databases in a
temporary directory and every request over real HTTP on loopback:

  import   N generated assessments through the import API (--import-size):
           assessments/s and peak RSS
  pages    p99 of the first recommendations page: unfiltered, one
           subscription (a tenth of the estate), a scope holding all of it
  tickets  incidents opened with the emulator answering after 50 ms:
           tickets/s and Table API requests per ticket
  paced    one ServiceNow change at a time, delivered by its webhook:
           change to applied, webhook answer
  burst    --burst changes at once (rate limit lifted; at 10 requests/s;
           delivered concurrently), against Steward as built and against
           the naive baseline of one Table API read per event
  sync     poll after changes and a full reconcile of --reconcile-size
           linked tickets (one run)

Each scenario runs --runs times; the table shows the medians next to the
targets of issue 15 and the baselines. Progress goes to stderr, the table
to stdout. Nothing is sent off this machine; everything made is removed.
With --db postgres://... each Steward runs on a database the bench creates
on that PostgreSQL server and drops afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if verbose {
				opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			opts.Command = benchCommandLine(cmd.Flags())
			return bench.Run(cmd.Context(), opts, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Runs, "runs", 3, "runs of each scenario (the table shows medians; sync runs once)")
	f.StringSliceVar(&opts.Only, "only", nil, "scenarios to run, comma-separated: "+strings.Join(bench.Scenarios, ",")+" (default all)")
	f.IntVar(&opts.ImportSize, "import-size", 1_000_000, "assessments in the imported estate")
	f.IntVar(&opts.PageRequests, "page-requests", 1000, "timed GETs of each page")
	f.IntVar(&opts.Tickets, "tickets", 10_000, "tickets the ticket-creation scenario opens")
	f.IntVar(&opts.Burst, "burst", 1000, "changes in a webhook burst")
	f.IntVar(&opts.Paced, "paced", 200, "changes in the paced webhook scenario")
	f.IntVar(&opts.ReconcileSize, "reconcile-size", 100_000, "linked tickets the sync scenario reconciles")
	f.StringVar(&opts.PostgresServer, "db", "", "run every Steward on PostgreSQL: the URL of a server (any database on it) where the bench may create a database of its own per server, dropped afterwards (default: a fresh SQLite file each)")
	f.StringVar(&opts.Dir, "dir", "", "directory for the temporary files and databases (default the system's temporary directory)")
	f.BoolVar(&verbose, "verbose", false, "also print Steward's and the emulator's warnings")
	return cmd
}

// benchCommandLine is the command as run, with the flags that were set,
// for the table's heading.
func benchCommandLine(fs *pflag.FlagSet) string {
	parts := []string{"steward bench"}
	fs.Visit(func(f *pflag.Flag) {
		if f.Value.Type() == "bool" {
			parts = append(parts, "--"+f.Name)
			return
		}
		v := f.Value.String()
		if f.Name == "db" {
			v = store.RedactURL(v) // never a password in the printed command
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			v = strings.Join(sv.GetSlice(), ",")
		}
		parts = append(parts, fmt.Sprintf("--%s %s", f.Name, v))
	})
	return strings.Join(parts, " ")
}
