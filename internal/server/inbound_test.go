package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api/apitest"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/testlog"
)

// startInbound starts a whole Steward like setup does, with cfg edited
// first and the log written to logs (JSON lines) when it is not nil. Its
// database, key file and spool directory are in dir.
func startInbound(t *testing.T, edit func(*config.Config), logs io.Writer, opts ...server.Option) (b *testBundle, dir string) {
	t.Helper()
	dir = t.TempDir()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = filepath.Join(dir, "steward.db")
	cfg.ShutdownTimeout = 10 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	if logs == nil {
		logs = t.Output()
	}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(t.Context(), cfg, logger, opts...)
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Shutdown(context.Background())) })
	token := authtest.Token(t, srv.DB, "tester@example.com", steward.RoleOwner)
	client, err := apiclient.New(srv.URL(), token)
	require.NoError(t, err)
	// Every answer the tests receive is checked against /api/openapi.json.
	hc := apitest.Client(t)
	client.WithHTTPClient(hc)
	return &testBundle{srv: srv, client: client, http: hc, url: srv.URL(), token: token}, dir
}

// syncBuffer is a log sink that tests may read while the server writes.
type syncBuffer = testlog.Buffer

// do sends req as is (headers included) and returns the status, the
// response headers and the JSON body, if any.
func (b *testBundle) do(t *testing.T, hc *http.Client, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	if req.Header.Get("Authorization") == "" {
		b.authorize(req)
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(raw, &out), "body %s", raw)
	}
	return resp.StatusCode, resp.Header, out
}

func (b *testBundle) request(t *testing.T, method, path string, headers map[string]string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.url+path, body)
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}

func (b *testBundle) resourceCount(t *testing.T) int {
	t.Helper()
	page, err := b.client.ListResources(t.Context(), url.Values{"limit": {"500"}})
	require.NoError(t, err)
	return len(page.Items)
}

func (b *testBundle) importCount(t *testing.T) int {
	t.Helper()
	status, body := b.rawRequest(t, "GET", "/api/v1/imports", "", nil)
	require.Equal(t, http.StatusOK, status)
	return len(body["items"].([]any))
}

// requireNoSpoolFiles fails when an upload left a file in the spool.
func requireNoSpoolFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "steward-spool"))
	if os.IsNotExist(err) {
		return
	}
	require.NoError(t, err)
	require.Empty(t, entries, "an upload left a spool file")
}

// A web page can send a cross-site POST without a CORS preflight only with
// no Content-Type or a form type; JSON routes and uploads refuse those.
func TestInboundContentType(t *testing.T) {
	t.Parallel()
	b, dir := startInbound(t, nil, nil)
	good := string(batch(row("rec-a", "High", "/subscriptions/s1/vm1", "Unhealthy")))
	refused := []struct {
		name, method, path, contentType, body string
	}{
		{"AssessmentsTextPlain", "POST", "/api/v1/assessments", "text/plain", good},
		{"AssessmentsNone", "POST", "/api/v1/assessments", "", good},
		{"AssessmentsForm", "POST", "/api/v1/assessments", "application/x-www-form-urlencoded", good},
		{"AssessmentsLatin1", "POST", "/api/v1/assessments", "application/json; charset=iso-8859-1", good},
		{"AssessmentsMalformed", "POST", "/api/v1/assessments", "application/json; charset", good},
		{"AssignmentsNone", "POST", "/api/v1/assignments", "", `{"assessment_id":1,"owner":"a@example.com"}`},
		{"AssignmentsTextPlain", "POST", "/api/v1/assignments", "text/plain", `{"assessment_id":1,"owner":"a@example.com"}`},
		{"IntegrationsNone", "POST", "/api/v1/integrations", "", `{}`},
		{"ImportTextPlain", "POST", "/api/v1/imports", "text/plain", good},
		{"ImportNone", "POST", "/api/v1/imports", "", good},
		{"ImportMultipart", "POST", "/api/v1/imports", "multipart/form-data; boundary=x", good},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			status, body := b.rawRequest(t, tc.method, tc.path, tc.contentType, []byte(tc.body))
			require.Equal(t, http.StatusUnsupportedMediaType, status)
			code, msg := errorOf(t, body)
			require.Equal(t, "unsupported_media_type", code)
			require.Contains(t, msg, "application/")
		})
	}
	require.Zero(t, b.resourceCount(t), "a refused request stored something")
	require.Zero(t, b.importCount(t), "a refused upload was recorded")
	requireNoSpoolFiles(t, dir)

	t.Run("JSONWithCharsetAccepted", func(t *testing.T) {
		status, body := b.rawRequest(t, "POST", "/api/v1/assessments", "application/json; charset=utf-8", []byte(good))
		require.Equal(t, http.StatusOK, status, "%v", body)
	})
	for _, ct := range []string{"application/octet-stream", "application/json", "application/x-ndjson"} {
		t.Run("Import "+ct, func(t *testing.T) {
			status, body := b.rawRequest(t, "POST", "/api/v1/imports", ct, []byte(good))
			require.Equal(t, http.StatusAccepted, status, "%v", body)
		})
	}
}

// Steward answers no CORS preflight, so a browser never lets another
// origin send a JSON request, and the requests it sends without asking
// are refused for their content type.
func TestInboundNoCORS(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireNoCORS := func(t *testing.T, h http.Header) {
		t.Helper()
		for k := range h {
			require.False(t, strings.HasPrefix(strings.ToLower(k), "access-control-"), "CORS header %s: %s", k, h.Get(k))
		}
	}
	for _, path := range []string{"/api/v1/assessments", "/api/v1/imports", "/api/v1/integrations"} {
		pre := b.request(t, "OPTIONS", path, map[string]string{
			"Origin":                         "https://evil.example",
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "content-type, authorization",
		}, nil)
		status, h, _ := b.do(t, http.DefaultClient, pre)
		require.NotEqual(t, http.StatusOK, status, "preflight of %s", path)
		require.NotEqual(t, http.StatusNoContent, status, "preflight of %s", path)
		requireNoCORS(t, h)
	}

	body := batch(row("rec-a", "High", "/subscriptions/s1/vm1", "Unhealthy"))
	for _, path := range []string{"/api/v1/assessments", "/api/v1/imports"} {
		post := b.request(t, "POST", path, map[string]string{
			"Origin":       "https://evil.example",
			"Content-Type": "text/plain;charset=UTF-8", // what a page's fetch() sends for a string body
		}, bytes.NewReader(body))
		status, h, out := b.do(t, http.DefaultClient, post)
		require.Equal(t, http.StatusUnsupportedMediaType, status, "cross-origin POST %s: %v", path, out)
		requireNoCORS(t, h)
	}
	require.Zero(t, b.resourceCount(t))
}

// trickle writes data to w one chunk per interval, then closes it.
func trickle(w *io.PipeWriter, data []byte, chunk int, every time.Duration) {
	for len(data) > 0 {
		n := min(chunk, len(data))
		if _, err := w.Write(data[:n]); err != nil {
			return // the server hung up, as it should
		}
		data = data[n:]
		time.Sleep(every)
	}
	w.Close()
}

// stalledBody sends head, then nothing until stop is closed.
type stalledBody struct {
	head []byte
	stop <-chan struct{}
}

func (s *stalledBody) Read(p []byte) (int, error) {
	if len(s.head) > 0 {
		n := copy(p, s.head)
		s.head = s.head[n:]
		return n, nil
	}
	<-s.stop
	return 0, io.ErrUnexpectedEOF
}

// A JSON body that stalls is cut off by the read timeout.
func TestInboundReadTimeoutCutsStalledBody(t *testing.T) {
	t.Parallel()
	b, _ := startInbound(t, func(c *config.Config) { c.ReadTimeout = 500 * time.Millisecond }, nil)
	// The old code never answered: give up after 10 s instead of hanging.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	body := &stalledBody{head: []byte(`{"assessment_id":`), stop: ctx.Done()}
	req := b.request(t, "POST", "/api/v1/assignments", map[string]string{"Content-Type": "application/json"}, body)
	req = req.WithContext(ctx)
	req.ContentLength = 100
	hc := &http.Client{}
	start := time.Now()
	status, _, out := b.do(t, hc, req)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, http.StatusRequestTimeout, status, "%v", out)
	code, msg := errorOf(t, out)
	require.Equal(t, "timeout", code)
	require.Contains(t, msg, "not received in time")
}

// An upload is not bound by the read timeout but by a minimum data rate
// (1 KiB/s over 10 s): a trickled upload is cut off with nothing kept,
// while a steady one that outlasts the read timeout is accepted.
func TestInboundUploadMinimumRate(t *testing.T) {
	t.Parallel()
	b, dir := startInbound(t, func(c *config.Config) {
		c.ReadTimeout = time.Second
		// Scaled down so a trickle is cut off in seconds: 1 KiB/s over 2 s.
		c.UploadRateWindow = 2 * time.Second
	}, nil)
	hc := &http.Client{Timeout: 40 * time.Second}

	t.Run("SteadyUploadOutlastsReadTimeout", func(t *testing.T) {
		t.Parallel()
		var file bytes.Buffer
		for i := range 400 {
			file.Write(batchLine(i))
		}
		pr, pw := io.Pipe()
		// ~2.5 s at ~40 KiB/s: well above the minimum, well past the timeout.
		go trickle(pw, file.Bytes(), file.Len()/25+1, 100*time.Millisecond)
		req := b.request(t, "POST", "/api/v1/imports", map[string]string{"Content-Type": "application/x-ndjson"}, pr)
		status, _, body := b.do(t, hc, req)
		require.Equal(t, http.StatusAccepted, status, "%v", body)
		imp := b.waitImport(t, int64(body["id"].(float64)))
		require.Equal(t, "succeeded", imp.State, imp.Error)
		require.Equal(t, 400, imp.Result.Observations)
	})

	t.Run("TrickleCutOff", func(t *testing.T) {
		t.Parallel()
		pr, pw := io.Pipe()
		defer pw.Close()
		go trickle(pw, bytes.Repeat([]byte(" "), 1000), 1, 200*time.Millisecond)
		req := b.request(t, "POST", "/api/v1/imports?filename=slow.json", map[string]string{"Content-Type": "application/octet-stream"}, pr)
		start := time.Now()
		status, _, body := b.do(t, hc, req)
		require.Less(t, time.Since(start), 10*time.Second)
		require.Equal(t, http.StatusRequestTimeout, status, "%v", body)
		code, msg := errorOf(t, body)
		require.Equal(t, "timeout", code)
		require.Contains(t, msg, "upload too slow")
		entries, err := os.ReadDir(filepath.Join(dir, "steward-spool"))
		require.NoError(t, err)
		for _, e := range entries {
			require.NotContains(t, e.Name(), "slow", "the spool file of the cut-off upload is left")
		}
	})
}

// batchLine is one Steward JSON Lines record.
func batchLine(i int) []byte {
	b, _ := json.Marshal(row("rec-a", "High", fmt.Sprintf("/subscriptions/s1/resourceGroups/rg/providers/vm-%04d", i), "Unhealthy"))
	return append(b, '\n')
}

// utf8Batch is the batch of the issue: two identifiers differing only in
// an invalid byte, which a lenient decoder turns into one resource.
const utf8Batch = `{"assessments":[` +
	`{"resource":{"id":"/subscriptions/u8/vm-` + "\xff" + `","cloud":"azure"},"recommendation":{"key":"rec-u8","severity":"High"},"status":"Unhealthy"},` +
	`{"resource":{"id":"/subscriptions/u8/vm-` + "\xfe" + `","cloud":"azure"},"recommendation":{"key":"rec-u8","severity":"High"},"status":"Healthy"}` +
	`]}`

func TestInboundInvalidUTF8Rejected(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("Batch", func(t *testing.T) {
		status, body := b.rawRequest(t, "POST", "/api/v1/assessments", "application/json", []byte(utf8Batch))
		require.Equal(t, http.StatusBadRequest, status, "%v", body)
		code, msg := errorOf(t, body)
		require.Equal(t, "invalid", code)
		require.Equal(t, "record 1 (line 1): resource.id is not valid UTF-8", msg)
	})

	t.Run("ImportFile", func(t *testing.T) {
		imp, err := b.client.UploadImport(t.Context(), strings.NewReader(utf8Batch), int64(len(utf8Batch)), "u8.json", "")
		require.NoError(t, err)
		imp = b.waitImport(t, imp.ID)
		require.Equal(t, "failed", imp.State)
		require.Contains(t, imp.Error, "record 1 (line 1): resource.id is not valid UTF-8")
	})

	require.Zero(t, b.resourceCount(t), "a rejected record was stored")
	require.Zero(t, b.recommendationCount(t), "a rejected record was stored")
}

// The database, its WAL and shared-memory files and the spool directory
// hold findings and credentials: only Steward's user may read them.
func TestInboundFileModes(t *testing.T) {
	t.Parallel()
	b, dir := startInbound(t, nil, nil)
	_, err := b.client.PostAssessments(t.Context(), bytes.NewReader(batch(row("rec-a", "High", "/subscriptions/s1/vm1", "Unhealthy"))))
	require.NoError(t, err)
	good := batch(row("rec-b", "Low", "/subscriptions/s1/vm2", "Healthy"))
	imp, err := b.client.UploadImport(t.Context(), bytes.NewReader(good), int64(len(good)), "b.json", "")
	require.NoError(t, err)
	require.Equal(t, "succeeded", b.waitImport(t, imp.ID).State)

	db := filepath.Join(dir, "steward.db")
	for path, want := range map[string]os.FileMode{
		db:                                  0o600,
		db + "-wal":                         0o600,
		db + "-shm":                         0o600,
		filepath.Join(dir, "steward.key"):   0o600,
		filepath.Join(dir, "steward-spool"): os.ModeDir | 0o700,
	} {
		st, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, want, st.Mode(), "%s is %s", filepath.Base(path), st.Mode())
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files
// and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "steward test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

func TestInboundTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := selfSigned(t)
	var logs syncBuffer
	b, _ := startInbound(t, func(c *config.Config) {
		c.Addr = "0.0.0.0:0" // TLS: no warning even on every interface
		c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
	}, &logs)
	require.True(t, strings.HasPrefix(b.srv.URL(), "https://"), b.srv.URL())
	_, port, err := net.SplitHostPort(b.srv.Addr())
	require.NoError(t, err)
	base := "https://127.0.0.1:" + port

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 10 * time.Second}
	resp, err := hc.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotNil(t, resp.TLS)

	// Plain HTTP gets no answer from the API.
	resp, err = http.Get("http://127.0.0.1:" + port + "/healthz")
	if err == nil {
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}
	require.NotContains(t, logs.String(), "without TLS")

	t.Run("BadCertificateFailsStart", func(t *testing.T) {
		t.Parallel()
		cfg := config.Default()
		cfg.Addr = "127.0.0.1:0"
		cfg.DatabaseURL = filepath.Join(t.TempDir(), "steward.db")
		cfg.TLSCertFile, cfg.TLSKeyFile = keyFile, keyFile // a key is not a certificate
		srv, err := server.New(t.Context(), cfg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		err = srv.Start(t.Context())
		require.ErrorContains(t, err, "load TLS certificate "+keyFile)
	})
}

func TestInboundPlainHTTPWarning(t *testing.T) {
	t.Parallel()

	t.Run("AllInterfaces", func(t *testing.T) {
		t.Parallel()
		var logs syncBuffer
		b, _ := startInbound(t, func(c *config.Config) { c.Addr = "0.0.0.0:0" }, &logs)
		require.Contains(t, logs.String(), `"level":"WARN","msg":"listening on a non-loopback address without TLS`)
		_, port, err := net.SplitHostPort(b.srv.Addr())
		require.NoError(t, err)
		resp, err := http.Get("http://127.0.0.1:" + port + "/healthz") // only ever connect to loopback
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("LoopbackIsQuiet", func(t *testing.T) {
		t.Parallel()
		var logs syncBuffer
		startInbound(t, nil, &logs)
		require.NotContains(t, logs.String(), "without TLS")
	})
}
