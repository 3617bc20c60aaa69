package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/rules"
)

// newRulesCommand is `steward rules`: governance rules as code
// (docs/rules.md).
func newRulesCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Governance rules: who owns which findings, by when, with which tickets (docs/rules.md)",
	}
	cmd.AddCommand(newRulesApplyCommand(g), newRulesListCommand(g), newRulesShowCommand(g), newRulesDeleteCommand(g),
		newRulesExportCommand(g), newRulesImportCommand(g), newRulesRunCommand(g))
	return cmd
}

// planFlags are apply's and import's shared flags.
type planFlags struct {
	dryRun, yes bool
}

func (p *planFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&p.dryRun, "dry-run", false, "only print the plan")
	cmd.Flags().BoolVar(&p.yes, "yes", false, "apply without asking")
}

// planAndApply prints the plan of set, then applies it with --yes or when
// the user types y on a terminal.
func planAndApply(cmd *cobra.Command, g *globals, set *rules.Doc, partial bool, pf planFlags) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	plan, err := c.PlanRules(cmd.Context(), set, partial, false)
	if err != nil {
		return err
	}
	if g.output == "json" && (pf.dryRun || planEmpty(plan)) {
		return g.render(plan, nil)
	}
	printPlan(g.stdout, plan)
	if pf.dryRun || planEmpty(plan) {
		return nil
	}
	if !pf.yes {
		if !isTerminal(os.Stdin) {
			fmt.Fprintln(g.stdout, "Not applied: run again with --yes to apply this plan.")
			return nil
		}
		fmt.Fprint(g.stderr, "Apply this plan? [y/N] ")
		line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(g.stdout, "Not applied: run again with --yes to apply this plan.")
			return nil
		}
	}
	applied, err := c.PlanRules(cmd.Context(), set, partial, true)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return g.render(applied, nil)
	}
	fmt.Fprintf(g.stdout, "Applied: %d created, %d changed, %d deleted.\n", len(applied.Create), len(applied.Change), len(applied.Delete))
	return nil
}

func planEmpty(p *apiclient.RulePlan) bool { return len(p.Create)+len(p.Change)+len(p.Delete) == 0 }

func printPlan(w io.Writer, p *apiclient.RulePlan) {
	if planEmpty(p) {
		fmt.Fprintf(w, "No changes: the rules are as described (%d unchanged).\n", p.Unchanged)
		return
	}
	fmt.Fprintf(w, "Plan: %d to create, %d to change, %d to delete, %d unchanged.\n", len(p.Create), len(p.Change), len(p.Delete), p.Unchanged)
	effect := func(ch apiclient.RuleChange) string {
		return fmt.Sprintf("would assign %d unassigned unhealthy assessment(s) and open %d ticket(s)", ch.Assign, ch.Tickets)
	}
	for _, ch := range p.Create {
		fmt.Fprintf(w, "  + %s: %s\n", ch.Name, effect(ch))
	}
	for _, ch := range p.Change {
		fmt.Fprintf(w, "  ~ %s (%s): %s\n", ch.Name, strings.Join(ch.Fields, ", "), effect(ch))
	}
	for _, ch := range p.Delete {
		fmt.Fprintf(w, "  - %s (what it assigned stays)\n", ch.Name)
	}
}

func newRulesApplyCommand(g *globals) *cobra.Command {
	var file string
	var pf planFlags
	cmd := &cobra.Command{
		Use:   "apply -f rules.yaml",
		Short: "Make the rules what the file says: print the plan, apply it with --yes (or when confirmed)",
		Long: `Compares the rules file with the server's rules by name and prints the plan:
rules created, changed and deleted, and how many of today's unassigned
unhealthy assessments each created or changed rule would assign, with how
many tickets. Rules the file does not name are deleted. --dry-run only plans;
--yes applies without asking; on a terminal you are asked.`,
		Args: noArgs("rules apply takes the file with -f"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errors.New("name the rules file with -f (see docs/rules.md)")
			}
			data, err := readFileOrStdin(cmd, file)
			if err != nil {
				return err
			}
			doc, err := rules.ParseYAML(data)
			if err != nil {
				return err
			}
			return planAndApply(cmd, g, doc, false, pf)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "rules file (YAML; - for standard input)")
	pf.add(cmd)
	return cmd
}

func readFileOrStdin(cmd *cobra.Command, file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return data, nil
}

func newRulesListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List rules by priority",
		Args:  noArgs("rules list takes no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			page, err := c.ListRules(cmd.Context())
			if err != nil {
				return err
			}
			return g.render(page, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tPRIORITY\tNAME\tENABLED\tSCOPE\tOWNER\tDUE\tTICKET")
				for _, r := range page.Items {
					owner := r.Owner.Email
					if owner == "" {
						owner = "tag " + r.Owner.Tag
						if r.Owner.Fallback != "" {
							owner += ", else " + r.Owner.Fallback
						}
					}
					ticket := "-"
					if r.Ticket != nil {
						ticket = string(r.Ticket.Type) + " via " + r.Ticket.Integration
					}
					fmt.Fprintf(w, "%d\t%d\t%s\t%t\t%s\t%s\t%dd\t%s\n", r.ID, r.Priority, r.Name, r.Enabled, r.Scope, owner, r.DueInDays, ticket)
				}
			})
		},
	}
}

func newRulesShowCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID|NAME",
		Short: "Show one rule as a rules file writes it (-o json: as the API answers)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			r, err := c.GetRule(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.render(r, nil)
			}
			out, err := rules.ExportYAML([]*steward.Rule{r})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "# rule %d, created %s by %s, updated %s\n", r.ID, r.CreatedAt.Format("2006-01-02 15:04"), r.CreatedBy, r.UpdatedAt.Format("2006-01-02 15:04"))
			_, err = g.stdout.Write(out)
			return err
		},
	}
}

func newRulesDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID|NAME",
		Short: "Delete a rule; what it assigned stays",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			r, err := c.DeleteRule(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.render(r, nil)
			}
			fmt.Fprintf(g.stdout, "Deleted rule %d (%s); what it assigned stays.\n", r.ID, r.Name)
			return nil
		},
	}
}

func newRulesExportCommand(g *globals) *cobra.Command {
	var defender bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write every rule as a rules file (YAML), or as Defender for Cloud JSON with --defender",
		Args:  noArgs("rules export takes no arguments; redirect its output to a file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			page, err := c.ListRules(cmd.Context())
			if err != nil {
				return err
			}
			rs := make([]*steward.Rule, len(page.Items))
			for i := range page.Items {
				rs[i] = &page.Items[i]
			}
			var out []byte
			if defender {
				out, err = rules.ExportDefender(rs)
			} else {
				out, err = rules.ExportYAML(rs)
			}
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().BoolVar(&defender, "defender", false, "write Defender for Cloud governance rule JSON ({\"value\": [...]})")
	return cmd
}

func newRulesImportCommand(g *globals) *cobra.Command {
	var (
		file       string
		opts       rules.DefenderOptions
		ticketType string
		pf         planFlags
	)
	cmd := &cobra.Command{
		Use:   "import --defender FILE",
		Short: "Add or update rules from Defender for Cloud governance rule JSON (plan first; apply with --yes)",
		Long: `Reads one Defender for Cloud governance rule, or a list ({"value": [...]}),
and plans adding them to Steward's rules by name (rules the file does not
name stay). The scope comes from each rule's id (subscriptions/<id>/...),
else --scope. Defender names no integration or ticket type: ServiceNow-type
rules take --integration and --ticket-type (default incident).`,
		Args: noArgs("rules import takes the file with --defender"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errors.New("name the Defender JSON file with --defender")
			}
			if ticketType != "" {
				tt, err := steward.ParseTicketType(ticketType)
				if err != nil {
					return err
				}
				opts.TicketType = tt
			}
			data, err := readFileOrStdin(cmd, file)
			if err != nil {
				return err
			}
			doc, err := rules.ImportDefender(data, opts)
			if err != nil {
				return err
			}
			return planAndApply(cmd, g, doc, true, pf)
		},
	}
	cmd.Flags().StringVar(&file, "defender", "", "Defender for Cloud governance rule JSON file (- for standard input)")
	cmd.Flags().Var((*scopeFlag)(&opts.Scope), "scope", "scope for rules whose id names no subscription")
	cmd.Flags().StringVar(&opts.Integration, "integration", "", "integration (by name) that ServiceNow-type rules open tickets with")
	cmd.Flags().StringVar(&ticketType, "ticket-type", "", "ticket type of ServiceNow-type rules: incident (default), problem or change_request")
	pf.add(cmd)
	return cmd
}

// scopeFlag reads a steward.Scope flag.
type scopeFlag steward.Scope

func (s *scopeFlag) String() string     { return string(*s) }
func (s *scopeFlag) Set(v string) error { *s = scopeFlag(v); return nil }
func (s *scopeFlag) Type() string       { return "scope" }

// newScopeTagsCommand is `steward scope-tags`: tags of resource groups,
// subscriptions, accounts and projects that owner lookups climb to.
func newScopeTagsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scope-tags",
		Short: "Tags of scope levels (resource group, subscription, account, project) that rule owner lookups climb to",
	}
	set := &cobra.Command{
		Use:   "set SCOPE [key=value...]",
		Short: "Replace a scope's tags (no key=value removes them)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tags := map[string]string{}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || strings.TrimSpace(k) == "" {
					return fmt.Errorf("tag %q is not key=value", kv)
				}
				tags[k] = v
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.SetScopeTags(cmd.Context(), steward.Scope(args[0]), tags)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.render(st, nil)
			}
			fmt.Fprintf(g.stdout, "Scope %s has %d tag(s).\n", st.Scope, len(st.Tags))
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List scopes and their tags",
		Args:  noArgs("scope-tags list takes no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			page, err := c.ListScopeTags(cmd.Context())
			if err != nil {
				return err
			}
			return g.render(page, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "SCOPE\tTAGS\tUPDATED BY")
				for _, st := range page.Items {
					var kv []string
					for k, v := range st.Tags {
						kv = append(kv, k+"="+strconv.Quote(v))
					}
					slices.Sort(kv)
					fmt.Fprintf(w, "%s\t%s\t%s\n", st.Scope, strings.Join(kv, " "), st.UpdatedBy)
				}
			})
		},
	}
	cmd.AddCommand(set, list)
	return cmd
}
