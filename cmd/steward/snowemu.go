package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stewardhq/steward/internal/snowemu"
)

// snowEmulatorConfig holds the flags of `steward snow-emulator`.
type snowEmulatorConfig struct {
	addr        string
	tls         bool
	tlsCertOut  string
	dataFile    string
	instanceURL string

	adminUser, adminPassword string
	clientID, clientSecret   string
	tokenLifetime            time.Duration
	clientCredentials        bool
	noDemoData               bool
	seed                     uint64

	faults faultFlags

	webhooks         []string
	webhookSecret    string
	webhookScheme    string
	webhookDelay     time.Duration
	webhookDuplicate float64
	webhookReorder   bool

	logLevel, logFormat string
}

// snowEmulatorStarted describes a running emulator; tests receive it to
// learn the bound address of an emulator started on port 0.
type snowEmulatorStarted struct {
	URL      string
	CertPEM  []byte // nil without --tls
	Emulator *snowemu.Emulator
}

func newSnowEmulatorCommand(stdout, stderr io.Writer) *cobra.Command {
	return newSnowEmulatorCmd(stdout, stderr, nil)
}

// newSnowEmulatorCmd builds the command; started, when not nil, is called
// once the emulator accepts connections.
func newSnowEmulatorCmd(stdout, stderr io.Writer, started func(snowEmulatorStarted)) *cobra.Command {
	cfg := snowEmulatorConfig{}
	cmd := &cobra.Command{
		Use:   "snow-emulator",
		Short: "Run a local ServiceNow instance emulator for demos and tests",
		Long: `Run a local stand-in for a ServiceNow instance: the Table API, /oauth_token.do,
signed outbound webhooks, agent actions and fault injection. Connect Steward
to it as to a real instance (docs/servicenow-setup.md).

Records live in memory unless --data names a file: it is loaded at start and
saved when the emulator stops (Ctrl-C). With --tls the emulator serves HTTPS
with a certificate generated at start for 127.0.0.1, ::1 and localhost;
--tls-cert-out writes it as PEM so clients can trust it (curl --cacert,
NODE_EXTRA_CA_CERTS, SSL_CERT_FILE).

Use 'steward snow-emulator act' to act as an agent (resolve, reassign,
comment, delete) or to change the injected faults while it runs.

` + emulatorUsersHelp(),
		Example: `  steward snow-emulator --addr 127.0.0.1:8089
  steward snow-emulator --tls --tls-cert-out snow.pem --data snow.json
  steward snow-emulator --webhook http://127.0.0.1:8080/api/v1/integrations/1/events --webhook-secret s3cret --webhook-scheme steward
  steward snow-emulator --error-rate-503 0.1 --latency 200ms --jitter 300ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
			if err != nil {
				return err
			}
			if err := cfg.validate(); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", cfg.addr, err)
			}
			return runSnowEmulator(cmd.Context(), cfg, ln, stdout, logger, started)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.addr, "addr", envOr("STEWARD_SNOW_ADDR", "127.0.0.1:8089"), "listen address (env STEWARD_SNOW_ADDR)")
	f.BoolVar(&cfg.tls, "tls", false, "serve HTTPS with a self-signed ECDSA certificate generated at start (127.0.0.1, ::1, localhost)")
	f.StringVar(&cfg.tlsCertOut, "tls-cert-out", "", "with --tls, write the generated certificate (PEM) to this file so clients can trust it")
	f.StringVar(&cfg.dataFile, "data", envOr("STEWARD_SNOW_DATA", ""), "JSON file to load records from at start and save them to on stop (env STEWARD_SNOW_DATA; default in memory)")
	f.StringVar(&cfg.instanceURL, "instance-url", "", "base URL used in links and Location headers (default: the request's scheme and host)")
	f.StringVar(&cfg.adminUser, "admin-user", envOr("STEWARD_SNOW_ADMIN_USER", snowemu.DefaultAdminUser), "user_name of the seeded admin, also the admin API's user (env STEWARD_SNOW_ADMIN_USER)")
	f.StringVar(&cfg.adminPassword, "admin-password", envOr("STEWARD_SNOW_ADMIN_PASSWORD", snowemu.DefaultAdminPassword), "password of the seeded admin (env STEWARD_SNOW_ADMIN_PASSWORD)")
	f.StringVar(&cfg.clientID, "client-id", envOr("STEWARD_SNOW_CLIENT_ID", snowemu.DefaultClientID), "OAuth client ID (env STEWARD_SNOW_CLIENT_ID)")
	f.StringVar(&cfg.clientSecret, "client-secret", envOr("STEWARD_SNOW_CLIENT_SECRET", snowemu.DefaultClientSecret), "OAuth client secret (env STEWARD_SNOW_CLIENT_SECRET)")
	f.DurationVar(&cfg.tokenLifetime, "token-lifetime", snowemu.DefaultAccessTokenLifetime, "OAuth access token lifespan")
	f.BoolVar(&cfg.clientCredentials, "enable-client-credentials", false, "accept the client_credentials grant (off by default, as on real instances); tokens act as the admin")
	f.BoolVar(&cfg.noDemoData, "no-demo-users", false, "seed only the admin user, not the demo users and groups")
	f.Uint64Var(&cfg.seed, "seed", 0, "seed for fault injection and webhook duplication/reordering (0: random)")
	cfg.faults.add(f)
	f.StringArrayVar(&cfg.webhooks, "webhook", nil, "URL to POST signed change notifications to (repeatable)")
	f.StringVar(&cfg.webhookSecret, "webhook-secret", envOr("STEWARD_SNOW_WEBHOOK_SECRET", ""), "shared secret of the X-Signature-SHA256 HMAC (env STEWARD_SNOW_WEBHOOK_SECRET)")
	f.StringVar(&cfg.webhookScheme, "webhook-scheme", snowemu.SchemeBody, "what X-Signature-SHA256 signs: body (the reference's example rule) or steward (X-Steward-Timestamp + \"<timestamp>.<body>\", Steward's rule)")
	f.DurationVar(&cfg.webhookDelay, "webhook-delay", 0, "delay every webhook delivery")
	f.Float64Var(&cfg.webhookDuplicate, "webhook-duplicate-rate", 0, "fraction of webhook deliveries sent twice (0-1)")
	f.BoolVar(&cfg.webhookReorder, "webhook-reorder", false, "deliver webhooks after random delays so they may arrive out of order")
	f.StringVar(&cfg.logLevel, "log-level", envOr("STEWARD_LOG_LEVEL", "info"), "debug (logs every request), info, warn or error (env STEWARD_LOG_LEVEL)")
	f.StringVar(&cfg.logFormat, "log-format", envOr("STEWARD_LOG_FORMAT", "text"), "text or json (env STEWARD_LOG_FORMAT)")

	cmd.AddCommand(newSnowActCommand(stdout))
	return cmd
}

// emulatorUsersHelp lists the users the emulator starts with, for --help:
// whom to log in as, and whose e-mail to give as a ticket's owner.
func emulatorUsersHelp() string {
	var b strings.Builder
	b.WriteString("Users it starts with (--no-demo-users keeps only the admin):\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  USER NAME\tNAME\tE-MAIL\tPASSWORD")
	fmt.Fprintf(tw, "  %s\tSystem Administrator\tadmin@example.com\t%s  (--admin-user, --admin-password; also the admin API's)\n",
		snowemu.DefaultAdminUser, snowemu.DefaultAdminPassword)
	for _, u := range snowemu.DemoUsers() {
		note := ""
		if u.UserName == "svc.steward" {
			note = "  (the integration user Steward logs in as)"
		}
		fmt.Fprintf(tw, "  %s\t%s %s\t%s\t%s%s\n", u.UserName, u.FirstName, u.LastName, u.Email, u.Password, note)
	}
	tw.Flush()
	fmt.Fprintf(&b, "OAuth client: %s / %s.", snowemu.DefaultClientID, snowemu.DefaultClientSecret)
	return b.String()
}

func (cfg *snowEmulatorConfig) validate() error {
	if cfg.tlsCertOut != "" && !cfg.tls {
		return errors.New("--tls-cert-out needs --tls")
	}
	if cfg.tokenLifetime < time.Second {
		return fmt.Errorf("--token-lifetime %s is shorter than a second", cfg.tokenLifetime)
	}
	if cfg.webhookDuplicate < 0 || cfg.webhookDuplicate > 1 {
		return fmt.Errorf("--webhook-duplicate-rate %v is not between 0 and 1", cfg.webhookDuplicate)
	}
	for _, u := range cfg.webhooks {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("--webhook %q is not an http(s) URL", u)
		}
	}
	if cfg.webhookScheme != snowemu.SchemeBody && cfg.webhookScheme != snowemu.SchemeSteward {
		return fmt.Errorf("--webhook-scheme %q is not body or steward", cfg.webhookScheme)
	}
	if len(cfg.webhooks) > 0 && cfg.webhookSecret == "" {
		return errors.New("--webhook needs --webhook-secret: receivers verify X-Signature-SHA256")
	}
	if cfg.instanceURL != "" {
		if p, err := url.Parse(cfg.instanceURL); err != nil || p.Scheme == "" || p.Host == "" {
			return fmt.Errorf("--instance-url %q is not an absolute URL", cfg.instanceURL)
		}
	}
	return cfg.faults.validate()
}

// runSnowEmulator serves the emulator on ln until ctx is done, then saves
// the data file. It owns ln.
func runSnowEmulator(ctx context.Context, cfg snowEmulatorConfig, ln net.Listener, stdout io.Writer, logger *slog.Logger, started func(snowEmulatorStarted)) error {
	emu := snowemu.New(snowemu.Options{
		InstanceURL:         cfg.instanceURL,
		AdminUser:           cfg.adminUser,
		AdminPassword:       cfg.adminPassword,
		ClientID:            cfg.clientID,
		ClientSecret:        cfg.clientSecret,
		AccessTokenLifetime: cfg.tokenLifetime,
		ClientCredentials:   cfg.clientCredentials,
		NoSeed:              cfg.noDemoData,
		Seed:                cfg.seed,
		WebhookDelay:        cfg.webhookDelay,
		WebhookDuplicate:    cfg.webhookDuplicate,
		WebhookReorder:      cfg.webhookReorder,
	}, logger)
	// The command loads and saves the data file itself rather than through
	// Options.DataFile: New ignores an unreadable file, and saving over it on
	// stop would destroy the records a user asked to keep.
	loaded := false
	if cfg.dataFile != "" {
		switch err := loadDataFile(emu, cfg.dataFile); {
		case err == nil:
			loaded = true
		case !errors.Is(err, os.ErrNotExist):
			_ = ln.Close()
			_ = emu.Close()
			return err
		}
	}
	emu.SetFaults(cfg.faults.faults)
	for _, u := range cfg.webhooks {
		if err := emu.AddWebhook(snowemu.Webhook{URL: u, Secret: cfg.webhookSecret, Scheme: cfg.webhookScheme}); err != nil {
			_ = ln.Close()
			_ = emu.Close()
			return fmt.Errorf("add webhook %s: %w", u, err)
		}
	}

	srv := &http.Server{
		Handler:           logRequests(emu, logger),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	scheme := "http"
	var certPEM []byte
	if cfg.tls {
		cert, pemBytes, err := selfSignedCert(time.Now())
		if err != nil {
			_ = ln.Close()
			_ = emu.Close()
			return err
		}
		certPEM = pemBytes
		logger.Info("tls certificate generated", "sha256", certFingerprint(certPEM))
		if cfg.tlsCertOut != "" {
			if err := os.WriteFile(cfg.tlsCertOut, certPEM, 0o644); err != nil {
				_ = ln.Close()
				_ = emu.Close()
				return fmt.Errorf("write certificate: %w", err)
			}
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	base := scheme + "://" + displayHost(ln.Addr())
	if ip := listenIP(ln.Addr()); ip != nil && !ip.IsLoopback() {
		logger.Warn("the emulator listens beyond this machine with well-known credentials", "addr", ln.Addr().String())
	}

	serveErr := make(chan error, 1)
	go func() {
		if cfg.tls {
			serveErr <- srv.ServeTLS(ln, "", "")
			return
		}
		serveErr <- srv.Serve(ln)
	}()

	printBanner(stdout, cfg, base, emu, loaded)
	logger.Info("servicenow emulator started", "url", base)
	if started != nil {
		started(snowEmulatorStarted{URL: base, CertPEM: certPEM, Emulator: emu})
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve: %w", err)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil {
		_ = srv.Close()
	}
	// Close waits for webhook deliveries in flight.
	err = errors.Join(err, emu.Close())
	if cfg.dataFile != "" {
		if serr := saveDataFile(emu, cfg.dataFile); serr != nil {
			err = errors.Join(err, serr)
		} else {
			logger.Info("records saved", "path", cfg.dataFile,
				"incidents", emu.Count(snowemu.TableIncident), "problems", emu.Count(snowemu.TableProblem),
				"changes", emu.Count(snowemu.TableChangeRequest))
		}
	}
	logger.Info("servicenow emulator stopped")
	return err
}

func loadDataFile(emu *snowemu.Emulator, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open data file: %w", err)
	}
	defer f.Close()
	if err := emu.Load(f); err != nil {
		return fmt.Errorf("load data file %s (fix or remove it; it is overwritten on stop): %w", path, err)
	}
	return nil
}

// saveDataFile writes atomically (temp file + rename): a crash mid-write
// never leaves a truncated file behind.
func saveDataFile(emu *snowemu.Emulator, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".snow-emulator-*.json")
	if err != nil {
		return fmt.Errorf("save data file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := emu.Save(tmp); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("save data file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save data file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save data file: %w", err)
	}
	return nil
}

// selfSignedCert makes an ECDSA P-256 certificate for the loopback names.
// It is its own issuer and marked as a CA so that trust stores that want a
// root (NODE_EXTRA_CA_CERTS, OpenSSL) accept it as one.
func selfSignedCert(now time.Time) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "steward snow-emulator", Organization: []string{"Steward"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("create certificate: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pemBytes, nil
}

func listenIP(a net.Addr) net.IP {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP
	}
	return nil
}

// displayHost is the host:port clients should use: an unspecified listen
// address (0.0.0.0, ::) is shown as 127.0.0.1, which the certificate names.
func displayHost(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}

func printBanner(w io.Writer, cfg snowEmulatorConfig, base string, emu *snowemu.Emulator, loaded bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("ServiceNow emulator running at %s", base)
	p("")
	p("  Records page   %s/", base)
	p("  Table API      %s/api/now/table/incident", base)
	p("  Admin user     %s / %s  (Basic auth; also the admin API at %s/emulator/admin/)", cfg.adminUser, cfg.adminPassword, base)
	if !cfg.noDemoData {
		p("  Demo users     fred.luddy, beth.anglin, david.loo, don.goodliffe, abel.tuter, svc.steward / %s", snowemu.DefaultUserPassword)
	}
	grants := "password, refresh_token"
	if cfg.clientCredentials {
		grants += ", client_credentials"
	}
	p("  OAuth client   %s / %s  (POST %s/oauth_token.do; grants: %s; tokens live %s)", cfg.clientID, cfg.clientSecret, base, grants, cfg.tokenLifetime)
	if cfg.tls {
		if cfg.tlsCertOut != "" {
			p("  TLS            self-signed certificate in %s  (trust it: curl --cacert %[1]s, NODE_EXTRA_CA_CERTS=%[1]s)", cfg.tlsCertOut)
		} else {
			p("  TLS            self-signed certificate, not written (pass --tls-cert-out FILE so clients can trust it)")
		}
	}
	switch {
	case cfg.dataFile == "":
		p("  Data           in memory  (pass --data FILE to keep records between runs)")
	case loaded:
		p("  Data           %s  (loaded: %d incidents, %d problems, %d changes; saved on stop)", cfg.dataFile,
			emu.Count(snowemu.TableIncident), emu.Count(snowemu.TableProblem), emu.Count(snowemu.TableChangeRequest))
	default:
		p("  Data           %s  (new file, written on stop)", cfg.dataFile)
	}
	for _, u := range cfg.webhooks {
		p("  Webhook        %s  (signed X-Signature-SHA256, %s scheme)", u, cfg.webhookScheme)
	}
	p("  Faults         %s", describeFaults(cfg.faults.faults))
	p("")
	curl := "curl"
	if cfg.tls {
		curl = "curl --cacert CERT.pem"
		if cfg.tlsCertOut != "" {
			curl = "curl --cacert " + cfg.tlsCertOut
		}
	}
	act := "steward snow-emulator act"
	if base != "http://127.0.0.1:8089" {
		act += " --emulator " + base
		if cfg.tls && cfg.tlsCertOut != "" {
			act += " --cacert " + cfg.tlsCertOut
		}
	}
	p("Try it:")
	p("  %s -u %s:%s '%s/api/now/table/incident?sysparm_limit=5'", curl, cfg.adminUser, cfg.adminPassword, base)
	p("Act as an agent:")
	p("  %s state incident INC0010001 Resolved --as beth.anglin", act)
	p("Change faults while it runs:")
	p("  %s faults --error-rate-503 0.2 --latency 300ms   (or --clear)", act)
	p(`  %s -u %s:%s -X PUT %s/emulator/admin/faults -d '{"error_503":0.2,"latency_ms":300}'`, curl, cfg.adminUser, cfg.adminPassword, base)
	p("Press Ctrl-C to stop.")
}

// logRequests logs every request at debug level.
func logRequests(next http.Handler, logger *slog.Logger) http.Handler {
	if !logger.Enabled(context.Background(), slog.LevelDebug) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
				"duration", time.Since(start).Round(time.Microsecond))
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter records the status and keeps the Hijacker and Flusher the
// emulator's dropped-connection and slow-body faults need.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	return h.Hijack()
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// faultFlags maps fault flags onto snowemu.Faults; `snow-emulator` and
// `act faults` share them.
type faultFlags struct {
	faults  snowemu.Faults
	methods string
}

func (ff *faultFlags) add(f *pflag.FlagSet) {
	x := &ff.faults
	f.DurationVar(&x.Latency, "latency", 0, "fault: delay every API answer by this much")
	f.DurationVar(&x.Jitter, "jitter", 0, "fault: add a random extra delay up to this much")
	f.Float64Var(&x.Error500, "error-rate-500", 0, "fault: fraction of API requests answered 500 (0-1)")
	f.Float64Var(&x.Error503, "error-rate-503", 0, "fault: fraction of API requests answered 503 (0-1)")
	f.Float64Var(&x.Drop, "drop-rate", 0, "fault: fraction of connections closed without an answer, nothing applied (0-1)")
	f.Float64Var(&x.DropAfterCommit, "drop-after-commit-rate", 0, "fault: fraction of requests applied, then closed without an answer (0-1)")
	f.Float64Var(&x.Storm429, "storm-429", 0, "fault: fraction of API requests answered 429 with Retry-After (0-1)")
	f.DurationVar(&x.StormDuration, "storm-duration", 0, "fault: how long the 429 storm lasts (0: until changed)")
	f.IntVar(&x.StormRetryAfter, "storm-retry-after", 0, "fault: Retry-After seconds of storm 429s (default 1)")
	f.IntVar(&x.SlowBodyChunk, "slow-body-chunk", 0, "fault: write answers in chunks of this many bytes")
	f.DurationVar(&x.SlowBodyDelay, "slow-body-delay", 0, "fault: pause between slow-body chunks")
	f.StringVar(&x.PathPrefix, "fault-path", "", "restrict faults to request paths with this prefix (e.g. /api/now/table/incident)")
	f.StringVar(&ff.methods, "fault-methods", "", "restrict faults to these comma-separated HTTP methods (e.g. POST,PATCH)")
}

func (ff *faultFlags) validate() error {
	x := &ff.faults
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"--error-rate-500", x.Error500}, {"--error-rate-503", x.Error503}, {"--drop-rate", x.Drop},
		{"--drop-after-commit-rate", x.DropAfterCommit}, {"--storm-429", x.Storm429},
	} {
		if r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s %v is not between 0 and 1", r.name, r.v)
		}
	}
	if x.Latency < 0 || x.Jitter < 0 || x.StormDuration < 0 || x.SlowBodyDelay < 0 {
		return errors.New("fault durations cannot be negative")
	}
	if x.StormRetryAfter < 0 || x.SlowBodyChunk < 0 {
		return errors.New("--storm-retry-after and --slow-body-chunk cannot be negative")
	}
	x.Methods = nil
	for m := range strings.SplitSeq(ff.methods, ",") {
		if m = strings.ToUpper(strings.TrimSpace(m)); m != "" {
			x.Methods = append(x.Methods, m)
		}
	}
	return nil
}

// applyChanged copies the fault flags set on the command line onto f and
// reports whether there were any.
func (ff *faultFlags) applyChanged(fs *pflag.FlagSet, f *snowemu.Faults) bool {
	x := ff.faults
	set := map[string]func(){
		"latency":                func() { f.Latency = x.Latency },
		"jitter":                 func() { f.Jitter = x.Jitter },
		"error-rate-500":         func() { f.Error500 = x.Error500 },
		"error-rate-503":         func() { f.Error503 = x.Error503 },
		"drop-rate":              func() { f.Drop = x.Drop },
		"drop-after-commit-rate": func() { f.DropAfterCommit = x.DropAfterCommit },
		"storm-429":              func() { f.Storm429 = x.Storm429 },
		"storm-duration":         func() { f.StormDuration = x.StormDuration },
		"storm-retry-after":      func() { f.StormRetryAfter = x.StormRetryAfter },
		"slow-body-chunk":        func() { f.SlowBodyChunk = x.SlowBodyChunk },
		"slow-body-delay":        func() { f.SlowBodyDelay = x.SlowBodyDelay },
		"fault-path":             func() { f.PathPrefix = x.PathPrefix },
		"fault-methods":          func() { f.Methods = x.Methods },
	}
	changed := false
	fs.Visit(func(fl *pflag.Flag) {
		if apply, ok := set[fl.Name]; ok {
			apply()
			changed = true
		}
	})
	return changed
}

// describeFaults renders faults on one line, "none" for the zero value.
func describeFaults(f snowemu.Faults) string {
	var parts []string
	add := func(cond bool, s string) {
		if cond {
			parts = append(parts, s)
		}
	}
	add(f.Latency > 0, "latency="+f.Latency.String())
	add(f.Jitter > 0, "jitter="+f.Jitter.String())
	add(f.Error500 > 0, fmt.Sprintf("error-rate-500=%g", f.Error500))
	add(f.Error503 > 0, fmt.Sprintf("error-rate-503=%g", f.Error503))
	add(f.Drop > 0, fmt.Sprintf("drop-rate=%g", f.Drop))
	add(f.DropAfterCommit > 0, fmt.Sprintf("drop-after-commit-rate=%g", f.DropAfterCommit))
	if f.Storm429 > 0 {
		s := fmt.Sprintf("storm-429=%g", f.Storm429)
		if f.StormDuration > 0 {
			s += " for " + f.StormDuration.String()
		}
		parts = append(parts, s)
	}
	add(f.SlowBodyChunk > 0, fmt.Sprintf("slow-body=%dB/%s", f.SlowBodyChunk, f.SlowBodyDelay))
	if len(parts) == 0 {
		return "none"
	}
	if f.PathPrefix != "" {
		parts = append(parts, "on "+f.PathPrefix+"*")
	}
	if len(f.Methods) > 0 {
		parts = append(parts, "for "+strings.Join(f.Methods, ","))
	}
	return strings.Join(parts, " ")
}

// ---- act: a client of the emulator's admin API ----

// snowAdminClient calls /emulator/admin/... with the admin credentials.
type snowAdminClient struct {
	base       string
	user, pass string
	http       *http.Client
}

// snowActFlags are the connection flags of every act verb.
type snowActFlags struct {
	emulator, adminUser, adminPassword, caCert, as string
}

func (af *snowActFlags) client() (*snowAdminClient, error) {
	u, err := url.Parse(af.emulator)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--emulator %q is not an http(s) URL", af.emulator)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the emulator is local
	if af.caCert != "" {
		pemBytes, err := os.ReadFile(af.caCert)
		if err != nil {
			return nil, fmt.Errorf("read --cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--cacert %s holds no PEM certificate", af.caCert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &snowAdminClient{
		base: strings.TrimRight(af.emulator, "/"), user: af.adminUser, pass: af.adminPassword,
		http: &http.Client{Timeout: 30 * time.Second, Transport: tr},
	}, nil
}

// do sends a JSON request and decodes a JSON answer into out (when not
// nil). Non-2xx answers become errors carrying the emulator's message.
func (c *snowAdminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.SetBasicAuth(c.user, c.pass)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
			return fmt.Errorf("the emulator's certificate is not trusted: pass --cacert with the file its --tls-cert-out wrote: %w", err)
		}
		return fmt.Errorf("cannot reach the emulator at %s (is 'steward snow-emulator' running?): %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &snowAdminError{Status: resp.StatusCode, Body: data}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// snowAdminError is a non-2xx answer of the admin API.
type snowAdminError struct {
	Status int
	Body   []byte
}

func (e *snowAdminError) Error() string {
	var env struct {
		Error struct {
			Message string  `json:"message"`
			Detail  *string `json:"detail"`
		} `json:"error"`
	}
	msg := strings.TrimSpace(string(e.Body))
	if json.Unmarshal(e.Body, &env) == nil && env.Error.Message != "" {
		msg = env.Error.Message
		if env.Error.Detail != nil && *env.Error.Detail != "" {
			msg += ": " + *env.Error.Detail
		}
	}
	if e.Status == http.StatusUnauthorized {
		msg += " (check --admin-user/--admin-password)"
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("emulator answered %d: %s", e.Status, msg)
}

func recordPath(table, ref string) string {
	return "/emulator/admin/records/" + url.PathEscape(table) + "/" + url.PathEscape(ref)
}

func newSnowActCommand(stdout io.Writer) *cobra.Command {
	af := &snowActFlags{}
	cmd := &cobra.Command{
		Use:   "act",
		Short: "Act on a running emulator as an agent would, or change its faults",
		Long: `Act on a running emulator through its admin API (/emulator/admin/...): change
a record's state, reassign it, add a work note, delete it, or change the
injected faults. REF is a sys_id or a number (INC0010001). --as names the
agent (user_name, email or sys_id; default the admin user); the change is
recorded as that user, with audit rows and webhooks like a change made in
the ServiceNow UI.`,
		Example: `  steward snow-emulator act state incident INC0010001 Resolved --close-code "Solution provided" --as beth.anglin
  steward snow-emulator act assign incident INC0010001 david.loo --as beth.anglin
  steward snow-emulator act note incident INC0010001 "Waiting for the patch window" --as beth.anglin
  steward snow-emulator act delete incident INC0010001
  steward snow-emulator act faults --error-rate-503 0.2 --latency 300ms
  steward snow-emulator act faults --clear`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&af.emulator, "emulator", envOr("STEWARD_SNOW_URL", "http://127.0.0.1:8089"), "emulator URL (env STEWARD_SNOW_URL)")
	pf.StringVar(&af.adminUser, "admin-user", envOr("STEWARD_SNOW_ADMIN_USER", snowemu.DefaultAdminUser), "admin user (env STEWARD_SNOW_ADMIN_USER)")
	pf.StringVar(&af.adminPassword, "admin-password", envOr("STEWARD_SNOW_ADMIN_PASSWORD", snowemu.DefaultAdminPassword), "admin password (env STEWARD_SNOW_ADMIN_PASSWORD)")
	pf.StringVar(&af.caCert, "cacert", envOr("STEWARD_SNOW_CACERT", ""), "PEM certificate to trust for an https emulator, as written by --tls-cert-out (env STEWARD_SNOW_CACERT)")
	// Shadows the root --as (the Steward actor): here it is a ServiceNow user.
	pf.StringVar(&af.as, "as", "", "agent to act as: user_name, email or sys_id (default the admin user)")

	cmd.AddCommand(
		newSnowActStateCommand(af, stdout),
		newSnowActAssignCommand(af, stdout),
		newSnowActNoteCommand(af, stdout),
		newSnowActDeleteCommand(af, stdout),
		newSnowActFaultsCommand(af, stdout),
	)
	return cmd
}

// actRecord posts an agent action and prints the updated record.
func actRecord(cmd *cobra.Command, af *snowActFlags, stdout io.Writer, table, ref, action string, in map[string]string) error {
	c, err := af.client()
	if err != nil {
		return err
	}
	in["user"] = af.as
	var out struct {
		Result map[string]string `json:"result"`
	}
	if err := c.do(cmd.Context(), http.MethodPost, recordPath(table, ref)+"/"+action, in, &out); err != nil {
		return fmt.Errorf("%s %s %s: %w", action, table, ref, err)
	}
	return printRecord(cmd, stdout, out.Result)
}

func printRecord(cmd *cobra.Command, stdout io.Writer, rec map[string]string) error {
	if fl := cmd.Flag("output"); fl != nil && fl.Value.String() == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rec)
	}
	fmt.Fprintf(stdout, "%s  state=%s  assigned_to=%s  updated_by=%s  mod_count=%s  sys_id=%s\n",
		orDash(rec["number"]), orDash(rec["state"]), orDash(rec["assigned_to"]),
		orDash(rec["sys_updated_by"]), orDash(rec["sys_mod_count"]), rec["sys_id"])
	return nil
}

func newSnowActStateCommand(af *snowActFlags, stdout io.Writer) *cobra.Command {
	var closeCode, closeNotes string
	cmd := &cobra.Command{
		Use:   "state TABLE REF STATE",
		Short: "Move a record to a state (value or label, e.g. 6 or Resolved)",
		Long: `Move a record to a state as an agent in the UI would: the Table API's
transition rules do not apply. STATE is a value ("6") or a label ("Resolved").
Resolving or closing fills close_code and close_notes with defaults unless
--close-code/--close-notes are given.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return actRecord(cmd, af, stdout, args[0], args[1], "state",
				map[string]string{"state": args[2], "close_code": closeCode, "close_notes": closeNotes})
		},
	}
	cmd.Flags().StringVar(&closeCode, "close-code", "", "close code (incident, change_request) or resolution code (problem)")
	cmd.Flags().StringVar(&closeNotes, "close-notes", "", "close notes")
	return cmd
}

func newSnowActAssignCommand(af *snowActFlags, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "assign TABLE REF USER",
		Short: "Reassign a record to a user (user_name, email or sys_id)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return actRecord(cmd, af, stdout, args[0], args[1], "assign", map[string]string{"assigned_to": args[2]})
		},
	}
}

func newSnowActNoteCommand(af *snowActFlags, stdout io.Writer) *cobra.Command {
	var comment bool
	cmd := &cobra.Command{
		Use:   "note TABLE REF TEXT",
		Short: "Add a work note (or, with --comment, an additional comment) to a record",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[2]) == "" {
				return errors.New("the note text is empty")
			}
			action := "work_notes"
			if comment {
				action = "comments"
			}
			return actRecord(cmd, af, stdout, args[0], args[1], action, map[string]string{"text": args[2]})
		},
	}
	cmd.Flags().BoolVar(&comment, "comment", false, "add a customer-visible additional comment instead of a work note")
	return cmd
}

func newSnowActDeleteCommand(af *snowActFlags, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "delete TABLE REF",
		Short: "Delete a record",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			path := recordPath(args[0], args[1]) + "?user=" + url.QueryEscape(af.as)
			if err := c.do(cmd.Context(), http.MethodDelete, path, nil, nil); err != nil {
				return fmt.Errorf("delete %s %s: %w", args[0], args[1], err)
			}
			fmt.Fprintf(stdout, "deleted %s %s\n", args[0], args[1])
			return nil
		},
	}
}

func newSnowActFaultsCommand(af *snowActFlags, stdout io.Writer) *cobra.Command {
	var ff faultFlags
	var clear bool
	cmd := &cobra.Command{
		Use:   "faults [--clear] [fault flags]",
		Short: "Show or change the injected faults",
		Long: `Show or change the faults the emulator injects into Table API and token
answers. Without flags it prints the current faults; fault flags change only
the faults they name; --clear turns every fault off first.`,
		Example: `  steward snow-emulator act faults
  steward snow-emulator act faults --error-rate-503 0.2 --latency 300ms
  steward snow-emulator act faults --storm-429 1 --storm-duration 30s
  steward snow-emulator act faults --clear`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := ff.validate(); err != nil {
				return err
			}
			c, err := af.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var cur snowemu.Faults
			if err := c.do(ctx, http.MethodGet, "/emulator/admin/faults", nil, &cur); err != nil {
				return fmt.Errorf("get faults: %w", err)
			}
			next := cur
			if clear {
				next = snowemu.Faults{}
			}
			if ff.applyChanged(cmd.Flags(), &next) || clear {
				cur = next
				if err := c.do(ctx, http.MethodPut, "/emulator/admin/faults", cur, &cur); err != nil {
					return fmt.Errorf("set faults: %w", err)
				}
			}
			fmt.Fprintln(stdout, "faults:", describeFaults(cur))
			return nil
		},
	}
	ff.add(cmd.Flags())
	cmd.Flags().BoolVar(&clear, "clear", false, "turn every fault off (before applying any other fault flag)")
	return cmd
}

// certFingerprint is the SHA-256 fingerprint of a PEM certificate, for logs.
func certFingerprint(pemBytes []byte) string {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return ""
	}
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:])
}
