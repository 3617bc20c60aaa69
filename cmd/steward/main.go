// Command steward turns cloud security recommendations into owned, tracked
// remediation work. `steward serve` runs the server; the client verbs
// (import, recommendations, assign, assignments) talk to a running server's
// API, as kubectl or gh do.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward/internal/apiclient"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", userMessage(err))
		os.Exit(1)
	}
}

// globals are the flags every client verb shares.
type globals struct {
	server string
	output string
	tokens tokenSource
	stdout io.Writer
	stderr io.Writer
}

// client is an API client for --server with the token tokenSource finds.
func (g *globals) client() (*apiclient.Client, error) {
	token, _ := g.tokens.token(g.server)
	return apiclient.New(g.server, token)
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr, tokens: tokenSource{getenv: os.Getenv, configDir: os.UserConfigDir}}
	root := &cobra.Command{
		Use:   "steward",
		Short: "Turn cloud security recommendations into owned, tracked remediation work",
		Long: `Steward ingests security recommendations (Prowler OCSF, Steward JSON, ...),
lets people assign owners and due dates, and keeps the history of every change.

Run the server with 'steward serve'; the other verbs talk to a running server
(--server, STEWARD_SERVER, default http://127.0.0.1:8080) with an API token
(--token, STEWARD_TOKEN, or 'steward login'; see 'steward tokens --help').`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", envOr("STEWARD_SERVER", "http://127.0.0.1:8080"), "Steward server URL for client verbs (env STEWARD_SERVER)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format of client verbs: table or json (report also csv)")
	pf.StringVar(&g.tokens.flag, "token", "", "API token for client verbs (env STEWARD_TOKEN; else the one 'steward login' saved, else, for a server on this machine, steward.token next to the database)")

	root.AddCommand(
		newDemoCommand(stdout, stderr),
		newServeCommand(stderr),
		newMigrateCommand(stderr),
		newVersionCommand(stdout),
		newImportCommand(g),
		newRecommendationsCommand(g),
		newAssessmentsCommand(g),
		newAssignCommand(g),
		newAssignmentsCommand(g),
		withSyncCommands(newIntegrationsCommand(g), g),
		newTicketsCommand(g),
		newAuditCommand(g),
		newTokensCommand(g),
		newRulesCommand(g), newScopeTagsCommand(g),
		newSourcesCommand(g),
		newNotifyCommand(g),
		newReportCommand(g),
		newLoginCommand(g),
		newLogoutCommand(g),
		newSnowEmulatorCommand(stdout, stderr), newBenchCommand(stdout, stderr),
	)
	describeTicketFilters(root)
	return root
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Steward's version and the commit it was built from",
		Args:  noArgs("version takes no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, _ := debug.ReadBuildInfo()
			fmt.Fprintln(stdout, "steward", versionString(version, info))
			return nil
		},
	}
}

// versionString names the build: the release version (set with -ldflags,
// else the module version when built with go install of a tag), else
// "dev"; then the commit, its date and whether the tree had uncommitted
// changes, from the VCS stamp Go writes into binaries built inside a git
// tree (go build and go run; not go test). For example
// "dev 0123abcd4567 (2026-11-28, modified)".
func versionString(release string, info *debug.BuildInfo) string {
	v := release
	if v == "" && info != nil && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	if v == "" {
		v = "dev"
	}
	if info == nil {
		return v
	}
	var revision, date string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				date = t.UTC().Format(time.DateOnly)
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision == "" {
		return v
	}
	v += " " + revision[:min(12, len(revision))]
	var notes []string
	if date != "" {
		notes = append(notes, date)
	}
	if modified {
		notes = append(notes, "modified")
	}
	if len(notes) > 0 {
		v += " (" + strings.Join(notes, ", ") + ")"
	}
	return v
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func defaultActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "cli"
}

// userMessage prints API errors as the server phrased them.
func userMessage(err error) string {
	if apiErr, ok := errors.AsType[*apiclient.Error](err); ok {
		if apiErr.Status == 401 {
			return apiErr.Error() + "\nGive a token with --token or STEWARD_TOKEN, or save one with 'steward login'; the first one comes from 'steward tokens create --db <database> --name <you> --role owner' on the server's machine."
		}
		return apiErr.Error()
	}
	return err.Error()
}

// withID adapts a verb that takes one numeric ID: it parses the ID and
// builds the API client, so each verb holds only its own logic.
func (g *globals) withID(run func(cmd *cobra.Command, c *apiclient.Client, id int64) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		id, err := parseID(args[0])
		if err != nil {
			return err
		}
		c, err := g.client()
		if err != nil {
			return err
		}
		return run(cmd, c, id)
	}
}

// argsFor checks a verb's positional arguments: exactly one, the thing
// named by what (e.g. "the assessment ID"). Cobra's own message ("accepts 1
// arg(s), received 0") does not say which argument is missing.
func argsFor(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return fmt.Errorf("%s needs %s", verbPath(cmd), what)
		case len(args) > 1:
			return fmt.Errorf("%s takes one argument, %s; got %d: %s", verbPath(cmd), what, len(args), strings.Join(args, " "))
		}
		return nil
	}
}

// minArgs requires at least n positional arguments, saying msg otherwise.
func minArgs(n int, msg string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return errors.New(msg)
		}
		return nil
	}
}

// verbPath is the command's path without the program name, e.g.
// "assignments show".
func verbPath(cmd *cobra.Command) string {
	path := cmd.CommandPath()
	if i := strings.IndexByte(path, ' '); i >= 0 {
		return path[i+1:]
	}
	return path
}
