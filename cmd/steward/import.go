package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward/internal/apiclient"
)

func newImportCommand(g *globals) *cobra.Command {
	var format string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Upload a findings file (Steward JSON/JSON Lines, Prowler OCSF) and follow its import",
		Long: `Upload a findings file to the server, which applies it in the background.
The format is detected unless --format is given. A file with any bad record is
rejected whole, naming the record and what is wrong; nothing is stored.
On a terminal, progress (count, rate, ETA) is shown while it runs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p := newProgress(g.stderr)
			counter := &countingReader{r: f}
			stopUpload := p.every(250*time.Millisecond, func() string {
				return p.line("uploading", counter.n.Load(), st.Size(), counter.n.Load(), "bytes")
			})
			imp, err := c.UploadImport(cmd.Context(), counter, st.Size(), filepath.Base(args[0]), format)
			stopUpload()
			if err != nil {
				return err
			}
			if noWait {
				return g.render(imp, func(w *tabwriter.Writer) { importTable(w, imp) })
			}
			p.restart()
			for imp.State == "queued" || imp.State == "running" {
				if pr := imp.Progress; pr != nil {
					// Two passes over the file: validate everything, then apply.
					done := pr.BytesRead
					if pr.Phase == "applying" {
						done += pr.BytesTotal
					}
					p.show(p.line(pr.Phase, done, 2*pr.BytesTotal, int64(pr.Records), "records"))
				} else {
					p.show(fmt.Sprintf("import %d %s", imp.ID, imp.State))
				}
				select {
				case <-cmd.Context().Done():
					p.done()
					return fmt.Errorf("stopped following import %d; it goes on on the server (steward import status is GET /api/v1/imports/%d)", imp.ID, imp.ID)
				case <-time.After(250 * time.Millisecond):
				}
				if imp, err = c.GetImport(cmd.Context(), imp.ID); err != nil {
					p.done()
					return err
				}
			}
			p.done()
			if imp.State != "succeeded" {
				return fmt.Errorf("import %d failed: %s", imp.ID, imp.Error)
			}
			return g.render(imp, func(w *tabwriter.Writer) { importTable(w, imp) })
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "steward or ocsf (default: detect)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once uploaded; don't follow the import")
	return cmd
}

func importTable(w *tabwriter.Writer, imp *apiclient.Import) {
	r := imp.Result
	row(w, "Import:", imp.ID)
	row(w, "File:", fmt.Sprintf("%s (%s, %d bytes)", imp.Filename, imp.Format, imp.Size))
	row(w, "State:", imp.State)
	if imp.State == "succeeded" {
		row(w, "Observations:", r.Observations)
		row(w, "Assessments created:", r.AssessmentsCreated)
		row(w, "Status changes:", r.StatusChanged)
		row(w, "Unchanged:", r.Unchanged)
		row(w, "New resources:", r.ResourcesCreated)
		row(w, "New recommendations:", r.RecommendationsCreated)
		if n := len(r.CompletedAssignments); n > 0 {
			row(w, "Assignments completed:", n)
		}
	}
	if imp.StartedAt != nil && imp.FinishedAt != nil {
		row(w, "Took:", imp.FinishedAt.Sub(*imp.StartedAt).Round(time.Millisecond))
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
