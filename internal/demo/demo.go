// Package demo runs Steward's whole flow on one machine: the ServiceNow
// emulator, a Steward server on a fresh SQLite file, real sample findings,
// an integration, tickets of each type, and an emulated agent working them
// while Steward follows. `steward demo` narrates it for a person;
// `steward demo --check` runs it headless and verifies every step on both
// sides.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/sample"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store"
)

// Options configure a demo run.
type Options struct {
	// Dir holds the demo's database; empty means a new temporary directory,
	// removed at the end.
	Dir string
	// DatabaseURL, when set, is an empty PostgreSQL database
	// (postgres://...) the demo runs on instead of a SQLite file in Dir;
	// Dir then keeps only the secret key and the upload spool.
	DatabaseURL string
	// Addr and EmulatorAddr are the listen addresses; a busy port falls back
	// to a free one.
	Addr         string
	EmulatorAddr string
	// Check runs headless: verify every step, print a summary, return.
	Check bool
	// Timeout bounds each wait for Steward to follow a change.
	Timeout time.Duration
	// Pace is the pause before each agent action, so a person can watch
	// the change arrive (default 3s; none with Check).
	Pace time.Duration
	// Logger receives the servers' own logs (default: discarded).
	Logger *slog.Logger
	// CLI is how the user runs Steward's CLI, for the hints the demo
	// prints ("go run ./cmd/steward" or a binary's path; default "steward").
	CLI string
}

// Demo is one run.
type Demo struct {
	opts   Options
	out    io.Writer
	emu    *snowemu.Emulator
	emuURL string
	emuSrv *http.Server
	srv    *server.Server
	client *apiclient.Client
	token  string
	checks []Check
	dir    string
	tmp    bool
}

// Check is one verified step.
type Check struct {
	Step     string
	Expected string
	Observed string
	OK       bool
}

// ErrCheckFailed is returned when a verified step did not hold.
var ErrCheckFailed = errors.New("demo check failed")

const (
	webhookSecretBytes = 24
	agent              = "fred.luddy"              // the ServiceNow agent who works the tickets
	owner              = "beth.anglin@example.com" // the first owner of every ticket
	newAssignee        = "david.loo"
	newOwnerEmail      = "david.loo@example.com"
)

// Run runs the demo until ctx ends (or, with Check, until every step is
// verified). out receives the narration.
func Run(ctx context.Context, opts Options, out io.Writer) (err error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	if opts.Pace == 0 && !opts.Check {
		opts.Pace = 3 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Demo{opts: opts, out: out}
	defer func() {
		if cerr := d.close(); err == nil {
			err = cerr
		}
	}()
	if err := d.start(ctx); err != nil {
		return err
	}
	if err := d.story(ctx); err != nil {
		if opts.Check {
			d.summary()
		}
		return err
	}
	if opts.Check {
		d.summary()
		return nil
	}
	d.say("")
	d.say("The demo keeps running; try your own changes, e.g.:")
	d.say("  %s snow-emulator act --emulator %s state incident <NUMBER> Resolved", d.cli(), d.emuURL)
	d.say("  %s assignments list --state all", d.cli())
	d.say("Press Ctrl-C to stop.")
	<-ctx.Done()
	d.say("\nStopping.")
	return nil
}

func (d *Demo) cli() string {
	if d.opts.CLI == "" {
		return "steward"
	}
	return d.opts.CLI
}

func (d *Demo) say(format string, args ...any) {
	if d.opts.Check && !strings.HasPrefix(format, "Steward demo") {
		return
	}
	fmt.Fprintf(d.out, format+"\n", args...)
}

func (d *Demo) step(n int, format string, args ...any) {
	if d.opts.Check {
		return
	}
	fmt.Fprintf(d.out, "\n[%d/8] %s\n", n, fmt.Sprintf(format, args...))
}

func (d *Demo) check(step, expected, observed string, ok bool) error {
	observed = strings.TrimSpace(observed)
	d.checks = append(d.checks, Check{Step: step, Expected: expected, Observed: observed, OK: ok})
	if !ok {
		return fmt.Errorf("%w: %s: expected %s, observed %s", ErrCheckFailed, step, expected, observed)
	}
	return nil
}

// summary prints the verified steps as a table.
func (d *Demo) summary() {
	tw := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tSTEP\tEXPECTED\tOBSERVED")
	for _, c := range d.checks {
		mark, observed := "ok", c.Observed
		if !c.OK {
			mark = "FAILED"
		}
		if observed == c.Expected {
			observed = "same"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mark, c.Step, c.Expected, observed)
	}
	tw.Flush()
	passed := 0
	for _, c := range d.checks {
		if c.OK {
			passed++
		}
	}
	fmt.Fprintf(d.out, "%d passed, %d failed\n", passed, len(d.checks)-passed)
}

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	host, _, _ := net.SplitHostPort(addr)
	if host == "" {
		host = "127.0.0.1"
	}
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}

func (d *Demo) start(ctx context.Context) error {
	d.dir = d.opts.Dir
	if d.dir == "" {
		dir, err := os.MkdirTemp("", "steward-demo-")
		if err != nil {
			return fmt.Errorf("create demo directory: %w", err)
		}
		d.dir, d.tmp = dir, true
	} else if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("create demo directory: %w", err)
	}
	dbPath, dbName := filepath.Join(d.dir, "steward.db"), "SQLite"
	if d.opts.DatabaseURL != "" {
		if !store.IsPostgresURL(d.opts.DatabaseURL) {
			return fmt.Errorf("the demo's database URL must be a postgres:// URL; for SQLite use --dir")
		}
		dbPath, dbName = d.opts.DatabaseURL, "PostgreSQL"
	} else if _, err := os.Stat(dbPath); err == nil {
		return fmt.Errorf("%s already holds a Steward database; the demo needs a fresh one (remove it or choose another --dir)", d.dir)
	}
	d.say("Steward demo: cloud security findings become ServiceNow tickets, and both sides stay in sync.")
	d.say("Everything runs on this machine; nothing is sent anywhere.")

	emuAddr := d.opts.EmulatorAddr
	if emuAddr == "" {
		emuAddr = "127.0.0.1:8089"
	}
	ln, err := listen(emuAddr)
	if err != nil {
		return fmt.Errorf("listen for the emulator: %w", err)
	}
	d.emuURL = "http://" + ln.Addr().String()
	d.emu = snowemu.New(snowemu.Options{InstanceURL: d.emuURL}, d.opts.Logger.With("component", "snow-emulator"))
	d.emuSrv = &http.Server{Handler: d.emu, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = d.emuSrv.Serve(ln) }()
	d.step(1, "Started a ServiceNow instance emulator at %s (admin / admin).", d.emuURL)

	addr := d.opts.Addr
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	sln, err := listen(addr)
	if err != nil {
		return fmt.Errorf("listen for Steward: %w", err)
	}
	addr = sln.Addr().String()
	sln.Close() // server.Start binds it again; a race here is harmless for a demo
	cfg := config.Default()
	cfg.Addr = addr
	cfg.DatabaseURL = dbPath
	// Set for PostgreSQL, where nothing is derived from the URL; the
	// SQLite defaults are these.
	cfg.SecretKeyFile = filepath.Join(d.dir, "steward.key")
	cfg.SpoolDir = filepath.Join(d.dir, "steward-spool")
	cfg.ShutdownTimeout = 5 * time.Second
	d.srv, err = server.New(ctx, cfg, d.opts.Logger.With("component", "steward"))
	if err != nil {
		return err
	}
	if d.opts.DatabaseURL != "" {
		if ins, err := d.srv.DB.FindIntegrations(ctx); err != nil || len(ins) > 0 {
			return errors.Join(err, fmt.Errorf("%s already holds Steward data; the demo needs an empty database", store.RedactURL(dbPath)))
		}
	}
	if err := d.srv.Start(ctx); err != nil {
		return err
	}
	// The demo acts as an owner token of its own; its hints hand the same
	// token to the user's CLI.
	d.token, _, err = auth.Issue(ctx, d.srv.DB, auth.TokenRequest{Name: "demo-admin@example.com", Role: steward.RoleOwner}, "system:demo")
	if err != nil {
		return fmt.Errorf("create the demo's API token: %w", err)
	}
	d.client, err = apiclient.New(d.srv.URL(), d.token)
	if err != nil {
		return err
	}
	d.step(2, "Started Steward at %s on a fresh %s database (%s).", d.srv.URL(), dbName, store.RedactURL(dbPath))
	return nil
}

func (d *Demo) close() error {
	var errs []error
	if d.srv != nil {
		errs = append(errs, d.srv.Shutdown(context.Background()))
	}
	if d.emuSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = d.emuSrv.Shutdown(ctx)
		cancel()
	}
	if d.emu != nil {
		errs = append(errs, d.emu.Close())
	}
	if d.tmp {
		errs = append(errs, os.RemoveAll(d.dir))
	}
	return errors.Join(errs...)
}

// story is the demo itself, steps 3 to 7.
func (d *Demo) story(ctx context.Context) error {
	if err := d.importFindings(ctx); err != nil {
		return err
	}
	integrationID, secret, err := d.connect(ctx)
	if err != nil {
		return err
	}
	if err := d.emu.AddWebhook(snowemu.Webhook{URL: d.webhookURL(integrationID), Secret: secret, Scheme: snowemu.SchemeSteward}); err != nil {
		return fmt.Errorf("wire the emulator's webhook to Steward: %w", err)
	}
	tickets, err := d.openTickets(ctx)
	if err != nil {
		return err
	}
	d.say("")
	d.say("Have a look while the demo runs:")
	d.say("  ServiceNow list view  %s/   (the tickets as an agent sees them)", d.emuURL)
	d.say("  Steward's web UI      %s/   (sign in with the STEWARD_TOKEN below)", d.srv.URL())
	d.say("  Steward's CLI         first, in another terminal: export STEWARD_SERVER=%s STEWARD_TOKEN=%s", d.srv.URL(), d.token)
	d.say("                        then: %s tickets list", d.cli())
	d.say("  Steward's API         curl -H \"Authorization: Bearer $STEWARD_TOKEN\" %s/api/v1/tickets", d.srv.URL())
	if err := d.agentWorks(ctx, tickets); err != nil {
		return err
	}
	return d.governanceReport(ctx)
}

func (d *Demo) importFindings(ctx context.Context) error {
	total, unhealthy := 0, 0
	clouds := map[string]int{}
	for _, f := range sample.Files() {
		data := fillPlaceholders(f.Name, f.Data)
		imp, err := d.client.UploadImport(ctx, bytes.NewReader(data), int64(len(data)), f.Name, "")
		if err != nil {
			return fmt.Errorf("import %s: %w", f.Name, err)
		}
		for imp.State == "queued" || imp.State == "running" {
			time.Sleep(50 * time.Millisecond)
			if imp, err = d.client.GetImport(ctx, imp.ID); err != nil {
				return err
			}
		}
		if err := d.check("import "+f.Name, "succeeded", imp.State+" "+imp.Error, imp.State == "succeeded"); err != nil {
			return err
		}
		total += imp.Result.Observations
	}
	page, err := d.client.ListAssessments(ctx, url.Values{"status": {"Unhealthy"}, "limit": {"500"}})
	if err != nil {
		return err
	}
	for _, a := range page.Items {
		unhealthy++
		clouds[string(a.Cloud)]++
	}
	observed := fmt.Sprintf("aws %d, azure %d, gcp %d", clouds["aws"], clouds["azure"], clouds["gcp"])
	if err := d.check("unhealthy findings in aws, azure and gcp", "all three clouds", observed,
		clouds["aws"] > 0 && clouds["azure"] > 0 && clouds["gcp"] > 0); err != nil {
		return err
	}
	d.step(3, "Imported real Prowler scan results (bundled, public): %d findings, %d unhealthy resources (AWS %d, Azure %d, GCP %d).\n"+
		"      The samples' placeholder account IDs and names are filled with fictitious ones (Contoso, 123456789012).",
		total, unhealthy, clouds["aws"], clouds["azure"], clouds["gcp"])
	return nil
}

func (d *Demo) webhookURL(integrationID int64) string {
	return fmt.Sprintf("%s/api/v1/integrations/%d/events", d.srv.URL(), integrationID)
}

func (d *Demo) connect(ctx context.Context) (int64, string, error) {
	buf := make([]byte, webhookSecretBytes)
	_, _ = rand.Read(buf)
	secret := hex.EncodeToString(buf)
	str := func(s string) *string { return &s }
	yes, rps := true, 50.0
	in, err := d.client.CreateIntegration(ctx, apiclient.IntegrationRequest{
		Name: str("demo-servicenow"), Scope: str("/"), InstanceURL: str(d.emuURL), Local: &yes,
		AuthMode: str("oauth_password"), Username: str("admin"), Password: str("admin"),
		ClientID: str("steward"), ClientSecret: str("steward-secret"), WebhookSecret: &secret,
		RequestsPerSecond: &rps,
	})
	if err != nil {
		return 0, "", fmt.Errorf("connect the emulator: %w", err)
	}
	if err := d.check("integration validated and saved", "active", string(in.State), in.State == steward.IntegrationActive); err != nil {
		return 0, "", err
	}
	d.step(4, "Connected Steward to ServiceNow (OAuth; connection checked before saving; credentials stored encrypted).\n      ServiceNow reports changes to %s (signed webhooks).", d.webhookURL(in.ID))
	return in.ID, secret, nil
}
