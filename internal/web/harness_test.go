package web_test

// The browser test kit: a real Steward server (internal/server, the code
// `steward serve` runs) beside the ServiceNow emulator, driven by Debian's
// Chromium through chromedp. Every browser test in this package uses it.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/testlog"
)

// uiBundle is one Steward server with an emulator next to it.
type uiBundle struct {
	srv    *server.Server
	url    string
	emu    *snowemu.Emulator
	emuURL string
	// token is an owner's API token; client calls the API with it.
	token  string
	client *apiclient.Client
	logs   *testlog.Buffer
}

// startUI starts Steward (SQLite in a temp dir) and an emulator.
func startUI(t *testing.T, edit ...func(*config.Config)) *uiBundle {
	t.Helper()
	emu := snowemu.New(snowemu.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = emu.Close() })
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)

	dir := t.TempDir()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL, cfg.SecretKey, cfg.SpoolDir = storetest.ServerDatabase(t, dir)
	cfg.ShutdownTimeout = 10 * time.Second
	for _, e := range edit {
		e(&cfg)
	}
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewJSONHandler(io.MultiWriter(logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(t.Context(), cfg, logger)
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Shutdown(context.Background())) })
	token := authtest.Token(t, srv.DB, "admin@example.com", steward.RoleOwner)
	client, err := apiclient.New(srv.URL(), token)
	require.NoError(t, err)
	return &uiBundle{srv: srv, url: srv.URL(), emu: emu, emuURL: hs.URL, token: token, client: client, logs: logs}
}

// tokenFor issues a token with role for a browser to sign in with.
func (b *uiBundle) tokenFor(t *testing.T, name string, role steward.Role) string {
	t.Helper()
	return authtest.Token(t, b.srv.DB, name, role)
}

// chromiumPath finds Debian's Chromium. Under CI a missing browser fails
// the test (.ci/run installs it); elsewhere the test is skipped.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; .ci/run installs Debian's chromium package (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); browser tests skipped outside CI")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns a
// tab's context. Background networking is off: this machine has no
// internet, and the tests must not reach it.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	// The profile is not a t.TempDir: Chromium's helper processes may still
	// write to it for a moment after the browser exits, which fails
	// TempDir's cleanup. It is removed with retries instead.
	profile, err := os.MkdirTemp("", "steward-chromium-")
	require.NoError(t, err)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx) // closes the browser and waits for it
		cancel()
		cancelAlloc()
		for range 50 {
			if err := os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove the browser profile %s", profile)
	})
	// Bound the whole test; a hung page fails rather than hangs CI.
	ctx, cancelTimeout := context.WithTimeout(ctx, 10*time.Minute)
	t.Cleanup(cancelTimeout)
	require.NoError(t, chromedp.Run(ctx), "start chromium")
	return ctx
}

// run runs browser actions, failing the test with the page's URL on error.
func run(t *testing.T, ctx context.Context, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var loc string
		_ = chromedp.Run(ctx, chromedp.Location(&loc))
		t.Fatalf("browser at %s: %v", loc, err)
	}
}

// signIn signs the browser in with an API token through the sign-in form.
func signIn(t *testing.T, ctx context.Context, b *uiBundle, token string) {
	t.Helper()
	run(t, ctx,
		chromedp.Navigate(b.url+"/signin"),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.SendKeys(`#token`, token, chromedp.ByID),
		chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`nav[aria-label="Main"]`, chromedp.ByQuery),
	)
}

// textOf returns the visible text of the first element matching sel.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	run(t, ctx, chromedp.Text(sel, &s, chromedp.ByQuery))
	return strings.TrimSpace(s)
}

// axeSource is axe-core, installed by .ci/run (and `make test`) into
// test/axe with npm.
func axeSource(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "test", "axe", "node_modules", "axe-core", "axe.min.js")
	src, err := os.ReadFile(p)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("axe-core is not installed (%v); run: (cd test/axe && npm ci)", err)
		}
		t.Skipf("axe-core is not installed (cd test/axe && npm ci): %v", err)
	}
	return string(src)
}

type axeResult struct {
	Violations []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []any  `json:"target"`
			HTML   string `json:"html"`
		} `json:"nodes"`
	} `json:"violations"`
}

// checkA11y runs axe-core on the current page and fails on any serious or
// critical violation (WCAG 2.1 A and AA rules, and axe's best practices).
func checkA11y(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	src := axeSource(t)
	var raw string
	run(t, ctx,
		chromedp.Evaluate(src, nil),
		chromedp.Evaluate(`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}).then(r => JSON.stringify(r))`,
			&raw, func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }),
	)
	var res axeResult
	require.NoError(t, json.Unmarshal([]byte(raw), &res))
	var bad []string
	for _, v := range res.Violations {
		if v.Impact != "serious" && v.Impact != "critical" {
			continue
		}
		for _, n := range v.Nodes {
			bad = append(bad, fmt.Sprintf("%s (%s): %s at %v: %s", v.ID, v.Impact, v.Help, n.Target, n.HTML))
		}
	}
	require.Empty(t, bad, "accessibility violations on the %s page", name)
}

// screenshot saves a full-page PNG. With STEWARD_SCREENSHOTS=1 it writes
// docs/screenshots/<name>.png (the README shows them); otherwise a temp
// file, so every run still exercises it.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	run(t, ctx, chromedp.FullScreenshot(&png, 100))
	dir := t.TempDir()
	if os.Getenv("STEWARD_SCREENSHOTS") == "1" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "docs", "screenshots")
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// waitText waits until the element matching sel contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		_ = chromedp.Run(ctx, chromedp.Text(sel, &last, chromedp.ByQuery, chromedp.AtLeast(0)))
		if strings.Contains(last, want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s never showed %q within %s; last text: %q", sel, want, within, last)
}
