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
	"syscall"

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
	pf.StringVarP(&g.output, "output", "o", "table", "output format of client verbs: table or json")
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
		newLoginCommand(g),
		newLogoutCommand(g),
		newSnowEmulatorCommand(stdout, stderr),
	)
	return root
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Steward's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(stdout, "steward", versionString())
			return nil
		},
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	if v == "" {
		return "dev"
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
