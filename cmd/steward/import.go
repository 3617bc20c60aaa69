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
		Use:   "import FILE...",
		Short: "Upload findings files (Steward JSON, OCSF, SARIF, Checkov, ASFF, SCC) and follow their imports",
		Long: `Upload findings files to the server, which applies each in the background,
one after the other. The format is detected unless --format is given. A file
with any bad record is rejected whole, naming the record and what is wrong;
nothing of it is stored. On a terminal, progress (count, rate, ETA) is shown
while it runs. To import a directory, name its files: steward import findings/*.json`,
		Example: "  steward import prowler-output.ocsf.json\n  steward import trivy.sarif --format sarif\n  steward import findings/*.json",
		Args:    minArgs(1, "import needs a findings file, e.g. steward import prowler-output.ocsf.json"),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Check every path before the first upload, so a typo or a
			// directory in a list fails before anything is imported.
			for _, path := range args {
				if err := checkImportFile(path); err != nil {
					return err
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			for i, path := range args {
				if i > 0 && g.output != "json" {
					fmt.Fprintln(g.stdout)
				}
				imp, err := importFile(cmd, g, c, path, format, noWait)
				if err != nil {
					if len(args) > 1 {
						return fmt.Errorf("%s: %w", path, err)
					}
					return err
				}
				if err := g.render(imp, func(w *tabwriter.Writer) { importTable(w, imp) }); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "steward, ocsf, sarif, checkov, asff or scc (default: detect from the content)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once uploaded; don't follow the import")
	return cmd
}

// checkImportFile says, before any request, why a path cannot be uploaded.
func checkImportFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory; import takes files: pass a file, or its files with a shell glob, e.g. steward import %s", path, filepath.Join(path, "*.json"))
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file; import takes files", path)
	}
	return nil
}

// importFile uploads one file and, unless noWait, follows its import to
// the end; a failed import is an error.
func importFile(cmd *cobra.Command, g *globals, c *apiclient.Client, path, format string, noWait bool) (*apiclient.Import, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	p := newProgress(g.stderr)
	counter := &countingReader{r: f}
	stopUpload := p.every(250*time.Millisecond, func() string {
		return p.line("uploading", counter.n.Load(), st.Size(), counter.n.Load(), "bytes")
	})
	imp, err := c.UploadImport(cmd.Context(), counter, st.Size(), filepath.Base(path), format)
	stopUpload()
	if err != nil || noWait {
		return imp, err
	}
	p.restart()
	for imp.State == "queued" || imp.State == "running" {
		if pr := imp.Progress; pr != nil {
			// One pass over the file: the share read is the share done.
			p.show(p.line(pr.Phase, pr.BytesRead, pr.BytesTotal, int64(pr.Records), "records"))
		} else {
			p.show(fmt.Sprintf("import %d %s", imp.ID, imp.State))
		}
		select {
		case <-cmd.Context().Done():
			p.done()
			return nil, fmt.Errorf("stopped following import %d; it goes on on the server (steward import status is GET /api/v1/imports/%d)", imp.ID, imp.ID)
		case <-time.After(250 * time.Millisecond):
		}
		if imp, err = c.GetImport(cmd.Context(), imp.ID); err != nil {
			p.done()
			return nil, err
		}
	}
	p.done()
	if imp.State != "succeeded" {
		return nil, fmt.Errorf("import %d failed: %s", imp.ID, imp.Error)
	}
	return imp, nil
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
		if r.RuleAssignments > 0 || len(r.RuleSkipped) > 0 {
			row(w, "Assigned by rules:", r.RuleAssignments)
		}
		if len(r.RuleSkipped) > 0 {
			row(w, "Skipped by rules:", countsText(r.RuleSkipped))
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
