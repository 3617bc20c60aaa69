package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward/internal/apiclient"
)

// newRulesRunCommand is `steward rules run NAME`: apply one rule to the
// Unhealthy assessments that exist, as a job whose progress it follows.
func newRulesRunCommand(g *globals) *cobra.Command {
	var override, dryRun, noWait bool
	cmd := &cobra.Command{
		Use:   "run ID|NAME",
		Short: "Apply a rule to existing unassigned Unhealthy assessments in its scope (--override: replace what rules assigned, never a person's)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			run, err := c.RunRule(cmd.Context(), args[0], override, dryRun)
			if err != nil {
				return err
			}
			if !dryRun && !noWait {
				if run, err = followRuleRun(cmd, g, c, run); err != nil {
					return err
				}
			}
			if err := g.render(run, func(w *tabwriter.Writer) { ruleRunTable(w, run) }); err != nil {
				return err
			}
			if run.State == "failed" {
				return fmt.Errorf("run %d of rule %q failed: %s", run.ID, run.RuleName, run.Error)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&override, "override", false, "replace active assignments that rules made (never those a person made)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only count what the run would do; write nothing")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the run is queued; don't follow it")
	return cmd
}

// followRuleRun polls a run until it has finished, showing its progress.
func followRuleRun(cmd *cobra.Command, g *globals, c *apiclient.Client, run *apiclient.RuleRun) (*apiclient.RuleRun, error) {
	p := newProgress(g.stderr)
	for run.State == "queued" || run.State == "running" {
		if run.State == "running" {
			p.show(p.line("running", int64(run.Scanned), int64(run.Total), int64(run.Scanned), "assessments"))
		} else {
			p.show(fmt.Sprintf("run %d of rule %s queued", run.ID, run.RuleName))
		}
		select {
		case <-cmd.Context().Done():
			p.done()
			return nil, fmt.Errorf("stopped following run %d; it goes on on the server (GET /api/v1/rules/%d/runs/%d)", run.ID, run.RuleID, run.ID)
		case <-time.After(250 * time.Millisecond):
		}
		var err error
		if run, err = c.GetRuleRun(cmd.Context(), run.RuleID, run.ID); err != nil {
			p.done()
			return nil, err
		}
	}
	p.done()
	return run, nil
}

func ruleRunTable(w *tabwriter.Writer, run *apiclient.RuleRun) {
	if run.DryRun {
		row(w, "Rule:", run.RuleName+" (dry run: nothing written)")
	} else {
		row(w, "Run:", run.ID)
		row(w, "Rule:", run.RuleName)
		row(w, "State:", run.State)
	}
	row(w, "Override:", run.Override)
	row(w, "Unhealthy in scope:", run.Scanned)
	row(w, "Assigned:", run.Assigned)
	if run.Override {
		row(w, "Replaced:", run.Replaced)
	}
	if len(run.Skipped) > 0 {
		row(w, "Skipped:", countsText(run.Skipped))
	}
	if run.Error != "" {
		row(w, "Error:", run.Error)
	}
	if run.StartedAt != nil && run.FinishedAt != nil {
		row(w, "Took:", run.FinishedAt.Sub(*run.StartedAt).Round(time.Millisecond))
	}
}

// countsText writes counts by reason as "no_owner 3, outranked 1", by
// reason.
func countsText(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
