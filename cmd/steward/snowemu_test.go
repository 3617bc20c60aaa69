package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/snowemu"
	"github.com/stewardhq/steward/internal/testlog"
)

// syncBuffer is a bytes.Buffer safe for the command's goroutine and the test.
type syncBuffer = testlog.Buffer

type emuBundle struct {
	snowEmulatorStarted
	stdout *syncBuffer
	client *http.Client // trusts the generated certificate with --tls
	stop   func() error // cancels the command's context, returns its error
}

// startEmulator runs `steward snow-emulator` in-process on a free loopback
// port, as a user would from the shell, and stops it at cleanup.
func startEmulator(t *testing.T, args ...string) *emuBundle {
	t.Helper()
	stdout := &syncBuffer{}
	started := make(chan snowEmulatorStarted, 1)
	cmd := newSnowEmulatorCmd(stdout, t.Output(), func(s snowEmulatorStarted) { started <- s })
	cmd.SetArgs(append([]string{"--addr", "127.0.0.1:0", "--log-level", "warn"}, args...))
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Error("snow-emulator did not stop within 15 s")
			return nil
		}
	})
	t.Cleanup(func() { _ = stop() })

	b := &emuBundle{stdout: stdout, stop: stop}
	select {
	case b.snowEmulatorStarted = <-started:
	case err := <-done:
		t.Fatalf("snow-emulator exited before it started: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("snow-emulator did not start within 15 s")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if b.CertPEM != nil {
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(b.CertPEM))
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	b.client = &http.Client{Transport: tr, Timeout: 15 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return b
}

// call sends a request and decodes the JSON answer into out (when not nil).
func (b *emuBundle) call(t *testing.T, method, path string, auth func(*http.Request), body io.Reader, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.URL+path, body)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != nil {
		auth(req)
	}
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(data) > 0 {
		require.NoError(t, json.Unmarshal(data, out), "body: %s", data)
	}
	return resp.StatusCode
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

type recordResult struct {
	Result map[string]string `json:"result"`
}

func (b *emuBundle) createIncident(t *testing.T, auth func(*http.Request), fields map[string]string) map[string]string {
	t.Helper()
	body, err := json.Marshal(fields)
	require.NoError(t, err)
	var out recordResult
	require.Equal(t, http.StatusCreated, b.call(t, http.MethodPost, "/api/now/table/incident?sysparm_exclude_reference_link=true", auth, bytes.NewReader(body), &out))
	require.Regexp(t, `^INC\d{7}$`, out.Result["number"])
	return out.Result
}

// runCLI runs the whole steward CLI (root command) with args.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout bytes.Buffer
	root := newRootCommand(&stdout, io.Discard)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return stdout.String(), err
}

func TestSnowEmulatorTLSTokenCreateAndAct(t *testing.T) {
	t.Parallel()
	certPath := filepath.Join(t.TempDir(), "snow.pem")
	b := startEmulator(t, "--tls", "--tls-cert-out", certPath, "--token-lifetime", "10m")

	require.True(t, strings.HasPrefix(b.URL, "https://127.0.0.1:"), b.URL)
	written, err := os.ReadFile(certPath)
	require.NoError(t, err)
	require.Equal(t, b.CertPEM, written, "--tls-cert-out holds the served certificate")
	banner := b.stdout.String()
	for _, want := range []string{b.URL, "admin / admin", "steward / steward-secret", certPath, "/emulator/admin/faults", "Ctrl-C"} {
		require.Contains(t, banner, want)
	}

	// Password grant at /oauth_token.do, form-encoded (§1.2).
	form := url.Values{"grant_type": {"password"}, "client_id": {"steward"}, "client_secret": {"steward-secret"},
		"username": {"admin"}, "password": {"admin"}}
	req := func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	require.Equal(t, http.StatusOK, b.call(t, http.MethodPost, "/oauth_token.do", req, strings.NewReader(form.Encode()), &tok))
	require.NotEmpty(t, tok.AccessToken)
	require.Equal(t, "Bearer", tok.TokenType)
	require.InDelta(t, 600, tok.ExpiresIn, 2, "--token-lifetime 10m")

	inc := b.createIncident(t, bearer(tok.AccessToken), map[string]string{"short_description": "Storage account allows public access", "urgency": "2"})
	number := inc["number"]
	require.Equal(t, "1", inc["state"])
	require.Equal(t, "admin", inc["sys_created_by"])

	ca := []string{"snow-emulator", "act", "--emulator", b.URL, "--cacert", certPath}
	act := func(args ...string) (string, error) { return runCLI(t, append(cloneArgs(ca), args...)...) }

	out, err := act("state", "incident", number, "Resolved", "--close-notes", "Public access disabled", "--as", "beth.anglin")
	require.NoError(t, err)
	require.Contains(t, out, number)
	require.Contains(t, out, "state=6")

	var got recordResult
	require.Equal(t, http.StatusOK, b.call(t, http.MethodGet, "/api/now/table/incident/"+inc["sys_id"]+"?sysparm_exclude_reference_link=true", bearer(tok.AccessToken), nil, &got))
	beth, err := b.Emulator.UserID("beth.anglin")
	require.NoError(t, err)
	require.Equal(t, "6", got.Result["state"], "act state Resolved resolves the incident")
	require.Equal(t, "beth.anglin", got.Result["sys_updated_by"], "act --as names the agent")
	require.Equal(t, beth, got.Result["resolved_by"])
	require.Equal(t, "Public access disabled", got.Result["close_notes"])
	require.NotEmpty(t, got.Result["close_code"])

	out, err = act("assign", "incident", inc["sys_id"], "david.loo", "--as", "beth.anglin")
	require.NoError(t, err)
	david, err := b.Emulator.UserID("david.loo")
	require.NoError(t, err)
	require.Contains(t, out, "assigned_to="+david)

	_, err = act("note", "incident", number, "Checked with the owner")
	require.NoError(t, err)
	notes := b.Emulator.Records("sys_journal_field")
	require.Len(t, notes, 1)
	require.Equal(t, "Checked with the owner", notes[0]["value"])
	require.Equal(t, "admin", notes[0]["sys_created_by"], "without --as the admin acts")

	// Errors carry the emulator's message.
	_, err = act("state", "incident", "INC0999999", "Resolved")
	require.ErrorContains(t, err, "404")
	require.ErrorContains(t, err, "No Record found")
	_, err = act("state", "incident", number, "Sleeping")
	require.ErrorContains(t, err, "400")
	require.ErrorContains(t, err, "Invalid state")
	_, err = runCLI(t, "snow-emulator", "act", "--emulator", b.URL, "--cacert", certPath, "--admin-password", "wrong", "faults")
	require.ErrorContains(t, err, "401")
	_, err = runCLI(t, "snow-emulator", "act", "--emulator", b.URL, "faults")
	require.ErrorContains(t, err, "certificate is not trusted: pass --cacert", "an https emulator needs --cacert")
	_, err = runCLI(t, "snow-emulator", "act", "--emulator", "http://127.0.0.1:1", "faults")
	require.ErrorContains(t, err, "cannot reach the emulator at http://127.0.0.1:1")

	// Faults change at run time and only where asked.
	out, err = act("faults", "--error-rate-503", "1", "--fault-path", "/api/now/table/problem")
	require.NoError(t, err)
	require.Contains(t, out, "error-rate-503=1")
	require.Equal(t, 1.0, b.Emulator.CurrentFaults().Error503)
	require.Equal(t, http.StatusServiceUnavailable, b.call(t, http.MethodGet, "/api/now/table/problem", bearer(tok.AccessToken), nil, nil))
	require.Equal(t, http.StatusOK, b.call(t, http.MethodGet, "/api/now/table/incident?sysparm_limit=1", bearer(tok.AccessToken), nil, nil))
	out, err = act("faults", "--latency", "5ms")
	require.NoError(t, err)
	require.Contains(t, out, "latency=5ms error-rate-503=1", "flags change only the faults they name")
	out, err = act("faults", "--clear")
	require.NoError(t, err)
	require.Equal(t, "faults: none\n", out)
	require.Equal(t, http.StatusOK, b.call(t, http.MethodGet, "/api/now/table/problem", bearer(tok.AccessToken), nil, nil))

	out, err = act("delete", "incident", number, "--as", "beth.anglin")
	require.NoError(t, err)
	require.Contains(t, out, "deleted incident "+number)
	require.Zero(t, b.Emulator.Count(snowemu.TableIncident))

	require.NoError(t, b.stop())
}

func cloneArgs(s []string) []string { return append([]string(nil), s...) }

func TestSnowEmulatorDataFileRoundTrip(t *testing.T) {
	t.Parallel()
	dataPath := filepath.Join(t.TempDir(), "snow.json")
	admin := basic("admin", "admin")

	first := startEmulator(t, "--data", dataPath)
	require.Contains(t, first.stdout.String(), "new file, written on stop")
	a := first.createIncident(t, admin, map[string]string{"short_description": "first"})
	first.createIncident(t, admin, map[string]string{"short_description": "second"})
	require.NoError(t, first.stop())
	_, err := os.Stat(dataPath)
	require.NoError(t, err, "the data file is written on a clean stop")

	second := startEmulator(t, "--data", dataPath)
	require.Contains(t, second.stdout.String(), "loaded: 2 incidents")
	var got struct {
		Result []map[string]string `json:"result"`
	}
	require.Equal(t, http.StatusOK, second.call(t, http.MethodGet, "/api/now/table/incident?sysparm_exclude_reference_link=true&sysparm_query=number="+a["number"], admin, nil, &got))
	require.Len(t, got.Result, 1)
	require.Equal(t, a["sys_id"], got.Result[0]["sys_id"])
	require.Equal(t, "first", got.Result[0]["short_description"])
	third := second.createIncident(t, admin, map[string]string{"short_description": "third"})
	require.Equal(t, "INC0010003", third["number"], "number counters survive restarts")
	require.NoError(t, second.stop())

	// A data file that cannot be read stops the start instead of being
	// overwritten with an empty instance.
	broken := filepath.Join(t.TempDir(), "broken.json")
	require.NoError(t, os.WriteFile(broken, []byte("{not json"), 0o600))
	cmd := newSnowEmulatorCmd(io.Discard, io.Discard, nil)
	cmd.SetArgs([]string{"--addr", "127.0.0.1:0", "--data", broken})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	require.ErrorContains(t, cmd.ExecuteContext(t.Context()), "load data file")
	data, err := os.ReadFile(broken)
	require.NoError(t, err)
	require.Equal(t, "{not json", string(data))
}

func TestSnowEmulatorWebhook(t *testing.T) {
	t.Parallel()
	type delivery struct {
		body []byte
		sig  string
	}
	got := make(chan delivery, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- delivery{body: body, sig: r.Header.Get("X-Signature-SHA256")}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)

	b := startEmulator(t, "--webhook", recv.URL, "--webhook-secret", "s3cret")
	inc := b.createIncident(t, basic("admin", "admin"), map[string]string{"short_description": "webhook", "correlation_id": "steward-42"})

	select {
	case d := <-got:
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write(d.body)
		require.Equal(t, base64.StdEncoding.EncodeToString(mac.Sum(nil)), d.sig, "X-Signature-SHA256 = base64(HMAC-SHA256(secret, body))")
		var p map[string]string
		require.NoError(t, json.Unmarshal(d.body, &p))
		require.Equal(t, "insert", p["event"])
		require.Equal(t, "incident", p["table"])
		require.Equal(t, inc["number"], p["number"])
		require.Equal(t, "New", p["state_label"])
		require.Equal(t, "steward-42", p["correlation_id"])
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery")
	}
}

func TestSnowEmulatorFlagErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"rate above 1":         {[]string{"--error-rate-500", "1.5"}, "--error-rate-500"},
		"negative rate":        {[]string{"--storm-429", "-0.1"}, "--storm-429"},
		"webhook sans secret":  {[]string{"--webhook", "http://127.0.0.1:1/hook"}, "--webhook-secret"},
		"webhook not a URL":    {[]string{"--webhook", "ftp://x", "--webhook-secret", "s"}, "not an http(s) URL"},
		"cert out sans tls":    {[]string{"--tls-cert-out", "x.pem"}, "needs --tls"},
		"bad address":          {[]string{"--addr", "256.0.0.1:99999"}, "listen on"},
		"relative instance":    {[]string{"--instance-url", "dev123.service-now.com"}, "--instance-url"},
		"tiny token lifetime":  {[]string{"--token-lifetime", "10ms"}, "--token-lifetime"},
		"bad log level":        {[]string{"--log-level", "loud"}, "log level"},
		"unexpected arguments": {[]string{"now"}, "unknown command"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := newSnowEmulatorCmd(io.Discard, io.Discard, func(snowEmulatorStarted) { t.Error("started") })
			cmd.SetArgs(append([]string{"--addr", "127.0.0.1:0"}, tc.args...))
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			require.ErrorContains(t, cmd.ExecuteContext(t.Context()), tc.want)
		})
	}
}

// TestNPMClientAgainstEmulator runs an independent client, the npm package
// servicenow-rest-api (test/npmclient), against `snow-emulator --tls`,
// trusting the generated certificate through NODE_EXTRA_CA_CERTS.
func TestNPMClientAgainstEmulator(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "test", "npmclient")
	missing := func(what string) {
		msg := what + " missing; run (cd test/npmclient && npm ci --no-audit --no-fund)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "servicenow-rest-api")); err != nil {
		missing("test/npmclient/node_modules")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}

	certPath := filepath.Join(t.TempDir(), "snow.pem")
	b := startEmulator(t, "--tls", "--tls-cert-out", certPath)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.js")
	cmd.Dir = dir
	cmd.Env = append(clientEnv(os.Environ()),
		"SNOW_URL="+b.URL, "SNOW_USER=admin", "SNOW_PASSWORD=admin", "NODE_EXTRA_CA_CERTS="+certPath)
	out, err := cmd.CombinedOutput()
	t.Logf("node client.js:\n%s", out)
	require.NoError(t, err, "the npm client failed against the emulator")
	require.Contains(t, string(out), "npm client: ok")

	reqs := b.Emulator.Requests()
	require.NotEmpty(t, reqs)
	require.Zero(t, b.Emulator.Count(snowemu.TableIncident), "the client deleted what it created")
	require.Len(t, b.Emulator.Records("sys_journal_field"), 1, "the update's work note was journaled")
}

// clientEnv drops proxy settings (the emulator is on loopback) and Node
// options that could turn certificate checks off.
func clientEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "NODE_TLS_REJECT_UNAUTHORIZED", "NODE_OPTIONS", "NODE_EXTRA_CA_CERTS":
			continue
		}
		out = append(out, kv)
	}
	return out
}
