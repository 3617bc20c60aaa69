package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// newSourcesCommand is `steward sources`: live sources, the cloud security
// services Steward pulls findings from on a schedule (docs/sources.md).
func newSourcesCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sources",
		Short: "Live sources: Defender for Cloud, Security Hub, Security Command Center pulled on a schedule",
	}
	cmd.AddCommand(newSourcesAddCommand(g), newSourcesListCommand(g), newSourcesShowCommand(g), newSourcesUpdateCommand(g),
		newSourcesDeleteCommand(g), newSourcesRunCommand(g), newSourcesStatusCommand(g))
	return cmd
}

// sourceFlags are the settable fields of a source. Secrets come from files
// or environment variables, never from a flag's value, so they stay out of
// shell history and the process list.
type sourceFlags struct {
	kind, scope, schedule, name string
	settings, settingsFile      string
	secretFiles, secretEnvs     []string
	disabled, enable            bool
}

func (f *sourceFlags) add(cmd *cobra.Command, update bool) {
	fl := cmd.Flags()
	if !update {
		fl.StringVar(&f.kind, "kind", "", "defender, securityhub or scc")
	} else {
		fl.StringVar(&f.name, "name", "", "new name")
		fl.BoolVar(&f.enable, "enable", false, "pull on the schedule again")
	}
	fl.StringVar(&f.scope, "scope", "", "what the source may write to, e.g. /subscriptions/<id>, /aws/accounts/<id>, /gcp/projects/<id>; / for all")
	fl.StringVar(&f.schedule, "schedule", "", "time between pulls, 5m..24h (default 1h)")
	fl.StringVar(&f.settings, "settings", "", "the kind's settings as JSON (see docs/sources.md)")
	fl.StringVar(&f.settingsFile, "settings-file", "", "file holding the settings as JSON")
	fl.StringArrayVar(&f.secretFiles, "secret-file", nil, "FIELD=FILE: a secret of the kind read from a file, e.g. client_secret=./secret.txt (repeatable; an empty file clears it)")
	fl.StringArrayVar(&f.secretEnvs, "secret-env", nil, "FIELD=VAR: a secret of the kind read from an environment variable (repeatable)")
	fl.BoolVar(&f.disabled, "disabled", false, "do not pull on the schedule (run by hand only)")
}

func (f *sourceFlags) input(cmd *cobra.Command) (steward.SourceInput, error) {
	var in steward.SourceInput
	changed := cmd.Flags().Changed
	if changed("kind") {
		in.Kind = &f.kind
	}
	if changed("name") {
		in.Name = &f.name
	}
	if changed("scope") {
		sc := steward.Scope(f.scope)
		in.Scope = &sc
	}
	if changed("schedule") {
		in.Schedule = &f.schedule
	}
	switch {
	case changed("disabled") && changed("enable"):
		return in, fmt.Errorf("--enable and --disabled contradict each other")
	case changed("disabled"):
		v := !f.disabled
		in.Enabled = &v
	case changed("enable"):
		in.Enabled = &f.enable
	}
	switch {
	case f.settings != "" && f.settingsFile != "":
		return in, fmt.Errorf("give --settings or --settings-file, not both")
	case f.settingsFile != "":
		b, err := os.ReadFile(f.settingsFile)
		if err != nil {
			return in, err
		}
		in.Settings = b
	case f.settings != "":
		in.Settings = json.RawMessage(f.settings)
	}
	if in.Settings != nil && !json.Valid(in.Settings) {
		return in, fmt.Errorf("settings are not valid JSON")
	}
	for _, kv := range f.secretFiles {
		field, file, ok := strings.Cut(kv, "=")
		if !ok || field == "" || file == "" {
			return in, fmt.Errorf("--secret-file %q is not FIELD=FILE", kv)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return in, err
		}
		if in.Secrets == nil {
			in.Secrets = map[string]string{}
		}
		in.Secrets[field] = strings.TrimRight(string(b), "\r\n")
	}
	for _, kv := range f.secretEnvs {
		field, env, ok := strings.Cut(kv, "=")
		if !ok || field == "" || env == "" {
			return in, fmt.Errorf("--secret-env %q is not FIELD=VAR", kv)
		}
		v, set := os.LookupEnv(env)
		if !set {
			return in, fmt.Errorf("--secret-env %s: environment variable %s is not set", field, env)
		}
		if in.Secrets == nil {
			in.Secrets = map[string]string{}
		}
		in.Secrets[field] = v
	}
	return in, nil
}

func newSourcesAddCommand(g *globals) *cobra.Command {
	var f sourceFlags
	cmd := &cobra.Command{
		Use:   "add NAME --kind KIND --scope SCOPE [--settings JSON] [--secret-file FIELD=FILE]",
		Short: "Configure a live source (an enabled source is first pulled at once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := f.input(cmd)
			if err != nil {
				return err
			}
			in.Name = &args[0]
			c, err := g.client()
			if err != nil {
				return err
			}
			src, err := c.CreateSource(cmd.Context(), in)
			if err != nil {
				return err
			}
			return g.render(src, func(w *tabwriter.Writer) { sourceTable(w, src) })
		},
	}
	f.add(cmd, false)
	return cmd
}

func newSourcesUpdateCommand(g *globals) *cobra.Command {
	var f sourceFlags
	cmd := &cobra.Command{
		Use:   "update ID|NAME [flags]",
		Short: "Change a source: only the flags given change",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := f.input(cmd)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			src, err := c.UpdateSource(cmd.Context(), args[0], in)
			if err != nil {
				return err
			}
			return g.render(src, func(w *tabwriter.Writer) { sourceTable(w, src) })
		},
	}
	f.add(cmd, true)
	return cmd
}

func newSourcesListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the sources with their last run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			page, err := c.ListSources(cmd.Context())
			if err != nil {
				return err
			}
			return g.render(page, func(w *tabwriter.Writer) {
				row(w, "ID", "NAME", "KIND", "SCOPE", "SCHEDULE", "LAST RUN", "WHEN")
				for i := range page.Items {
					s := &page.Items[i]
					sched := shortDuration(s.Schedule)
					if !s.Enabled {
						sched = "disabled"
					}
					last, when := "-", "-"
					if s.LastRun != nil {
						last = runSummary(s.LastRun)
						when = s.LastRun.CreatedAt.Local().Format("2006-01-02 15:04")
					}
					row(w, s.ID, s.Name, s.Kind, s.Scope, sched, last, when)
				}
			})
		},
	}
}

func newSourcesShowCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID|NAME",
		Short: "Show a source: its settings, which secrets are set, its last run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			src, err := c.GetSource(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.render(src, func(w *tabwriter.Writer) { sourceTable(w, src) })
		},
	}
}

func newSourcesDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID|NAME",
		Short: "Delete a source and its secrets (its findings and runs stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			src, err := c.DeleteSource(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.render(src, func(w *tabwriter.Writer) { row(w, "Deleted source:", fmt.Sprintf("%s (%d)", src.Name, src.ID)) })
		},
	}
}

func newSourcesRunCommand(g *globals) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "run ID|NAME [--wait]",
		Short: "Pull a source now (or show the run already queued or running); --wait follows it to the end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			run, err := c.RunSource(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if wait {
				if run, err = followSourceRun(cmd, g, c, args[0], run); err != nil {
					return err
				}
			}
			if err := g.render(run, func(w *tabwriter.Writer) { sourceRunTable(w, run) }); err != nil {
				return err
			}
			if run.State == steward.SourceRunFailed {
				return fmt.Errorf("run %d of source %s failed: %s", run.ID, args[0], run.Error)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the run, showing its progress, until it ends")
	return cmd
}

func newSourcesStatusCommand(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "status ID|NAME",
		Short: "A source's latest runs, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			page, err := c.ListSourceRuns(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			return g.render(page, func(w *tabwriter.Writer) {
				row(w, "RUN", "STATE", "STARTED", "TOOK", "OBSERVED", "NEW", "CHANGED", "GONE", "ERRORS", "BY")
				for i := range page.Items {
					r := &page.Items[i]
					started, took := "-", "-"
					if r.StartedAt != nil {
						started = r.StartedAt.Local().Format("2006-01-02 15:04:05")
						if r.EndedAt != nil {
							took = r.EndedAt.Sub(*r.StartedAt).Round(time.Millisecond).String()
						}
					}
					row(w, r.ID, r.State, started, took, r.Observed, r.New, r.Changed, r.Gone, r.Errors, r.RequestedBy)
				}
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 10, "how many runs (1-200)")
	return cmd
}

// followSourceRun polls a run until it has ended, showing its progress.
func followSourceRun(cmd *cobra.Command, g *globals, c *apiclient.Client, ref string, run *steward.SourceRun) (*steward.SourceRun, error) {
	p := newProgress(g.stderr)
	for !run.State.Finished() {
		if run.State == steward.SourceRunRunning {
			p.show(p.line("pulling", 0, 0, int64(run.Observed), "findings") + fmt.Sprintf("  units %d, gone %d", len(run.Units), run.Gone))
		} else {
			p.show(fmt.Sprintf("run %d of source %s queued", run.ID, ref))
		}
		select {
		case <-cmd.Context().Done():
			p.done()
			return nil, fmt.Errorf("stopped following run %d; it goes on on the server (steward sources status %s)", run.ID, ref)
		case <-time.After(250 * time.Millisecond):
		}
		var err error
		if run, err = c.GetSourceRun(cmd.Context(), ref, run.ID); err != nil {
			p.done()
			return nil, err
		}
	}
	p.done()
	return run, nil
}

func shortDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s
	}
	out := d.String() // 1h0m0s, 30m0s, 1h30m0s
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return out
}

func runSummary(r *steward.SourceRun) string {
	if !r.State.Finished() {
		return string(r.State)
	}
	return fmt.Sprintf("%s (%d new, %d changed, %d gone, %d errors)", r.State, r.New, r.Changed, r.Gone, r.Errors)
}

func sourceTable(w *tabwriter.Writer, s *steward.Source) {
	row(w, "Source:", fmt.Sprintf("%s (%d)", s.Name, s.ID))
	row(w, "Kind:", s.Kind)
	row(w, "Scope:", s.Scope)
	sched := "every " + shortDuration(s.Schedule)
	if !s.Enabled {
		sched += " (disabled: runs by hand only)"
	} else if s.NextRunAt != nil {
		sched += ", next " + s.NextRunAt.Local().Format("2006-01-02 15:04")
	}
	row(w, "Schedule:", sched)
	row(w, "Settings:", string(s.Settings))
	var secrets []string
	for k, set := range s.Secrets {
		secrets = append(secrets, fmt.Sprintf("%s %t", strings.TrimPrefix(k, "has_"), set))
	}
	if len(secrets) > 0 {
		slices.Sort(secrets)
		row(w, "Secrets set:", strings.Join(secrets, ", "))
	}
	if s.LastRun != nil {
		row(w, "Last run:", fmt.Sprintf("%d: %s", s.LastRun.ID, runSummary(s.LastRun)))
	}
}

func sourceRunTable(w *tabwriter.Writer, r *steward.SourceRun) {
	row(w, "Run:", r.ID)
	row(w, "State:", r.State)
	row(w, "Observed:", r.Observed)
	row(w, "New:", r.New)
	row(w, "Changed:", r.Changed)
	row(w, "Unchanged:", r.Unchanged)
	row(w, "Gone:", r.Gone)
	row(w, "Errors:", r.Errors)
	for _, u := range r.Units {
		state := fmt.Sprintf("%d observed, %d gone", u.Observed, u.Gone)
		if u.Refused > 0 {
			state += fmt.Sprintf(", %d refused", u.Refused)
		}
		if !u.Done {
			state = "FAILED: " + u.Error + " (" + state + "; nothing marked gone)"
		}
		row(w, "Unit "+u.ID+":", state)
	}
	if r.Error != "" {
		row(w, "Error:", r.Error)
	}
	if r.StartedAt != nil && r.EndedAt != nil {
		row(w, "Took:", r.EndedAt.Sub(*r.StartedAt).Round(time.Millisecond))
	}
}
