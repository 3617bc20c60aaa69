package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api/apitest"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/collector"
	"github.com/stewardhq/steward/internal/collector/collectortest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/netpolicy"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/testlog"
)

// startWithSources starts a whole Steward with collectortest's scripted
// kind registered, logging at debug level to logs.
func startWithSources(t *testing.T, logs io.Writer) *testBundle {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = filepath.Join(t.TempDir(), "steward.db")
	cfg.ShutdownTimeout = 10 * time.Second
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(t.Context(), cfg, logger,
		server.WithSourceKinds(collector.Registry{collectortest.KindName: collectortest.Kind()}))
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Shutdown(context.Background())) })
	token := authtest.Token(t, srv.DB, "tester@example.com", steward.RoleOwner)
	client, err := apiclient.New(srv.URL(), token)
	require.NoError(t, err)
	hc := apitest.Client(t)
	client.WithHTTPClient(hc)
	return &testBundle{srv: srv, client: client, http: hc, url: srv.URL(), token: token}
}

func waitRun(t *testing.T, c *apiclient.Client, ref string, id int64) *steward.SourceRun {
	t.Helper()
	var run *steward.SourceRun
	require.Eventually(t, func() bool {
		var err error
		run, err = c.GetSourceRun(t.Context(), ref, id)
		require.NoError(t, err)
		return run.State.Finished()
	}, 20*time.Second, 50*time.Millisecond)
	return run
}

// TestSourcesAPI: a source is created, listed, shown, changed, run through
// River and deleted over the API; the gone rule applies end to end; its
// secret never appears in any answer or log line; changes are audited.
func TestSourcesAPI(t *testing.T) {
	logs := &testlog.Buffer{}
	b := startWithSources(t, logs)
	ctx := t.Context()
	const secretValue = "s3cr3t-token-0f1e2d3c4b5a"
	script := t.Name()
	sub := "/subscriptions/api1"
	vm := func(n string) string {
		return sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/" + n
	}
	obs := func(rec, res string) steward.Observation {
		return steward.Observation{Resource: steward.Resource{ID: res, Cloud: steward.CloudAzure},
			Recommendation: steward.Recommendation{Key: rec, DisplayName: rec, Severity: steward.SeverityHigh, Source: "test"},
			Status:         steward.StatusUnhealthy}
	}
	unit := pull.Unit{ID: "api1", Scope: steward.Scope(sub)}
	collectortest.SetScript(script, collectortest.Serve(collectortest.Unit{Unit: unit, Obs: []steward.Observation{obs("r1", vm("a")), obs("r2", vm("b"))}}))

	var bodies bytes.Buffer
	keep := func(v any) { raw, _ := json.Marshal(v); bodies.Write(raw) }

	src, err := b.client.CreateSource(ctx, steward.SourceInput{Name: ptr("azure-prod"), Kind: ptr("test"), Scope: ptr(steward.Scope(sub)),
		Schedule: ptr("30m"), Settings: json.RawMessage(`{"script":"` + script + `"}`), Secrets: map[string]string{"token": secretValue}})
	require.NoError(t, err)
	keep(src)
	require.Equal(t, map[string]bool{"has_token": true}, src.Secrets)
	require.Equal(t, "30m0s", src.Schedule)
	require.True(t, src.Enabled)

	list, err := b.client.ListSources(ctx)
	require.NoError(t, err)
	keep(list)
	require.Len(t, list.Items, 1)

	run, err := b.client.RunSource(ctx, "azure-prod")
	require.NoError(t, err)
	keep(run)
	done := waitRun(t, b.client, "azure-prod", run.ID)
	keep(done)
	require.Equal(t, steward.SourceRunDone, done.State, "%+v", done)
	require.Equal(t, 2, done.New)

	// Run 2: r1 is gone.
	collectortest.SetScript(script, collectortest.Serve(collectortest.Unit{Unit: unit, Obs: []steward.Observation{obs("r2", vm("b"))}}))
	run, err = b.client.RunSource(ctx, "azure-prod")
	require.NoError(t, err)
	done = waitRun(t, b.client, "azure-prod", run.ID)
	require.Equal(t, 1, done.Gone)
	page, err := b.client.ListAssessments(ctx, url.Values{"recommendation": {"r1"}})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.Equal(t, steward.StatusHealthy, page.Items[0].Status)

	runs, err := b.client.ListSourceRuns(ctx, "azure-prod", 0)
	require.NoError(t, err)
	keep(runs)
	require.Len(t, runs.Items, 2)

	shown, err := b.client.GetSource(ctx, src.Name)
	require.NoError(t, err)
	keep(shown)
	require.NotNil(t, shown.LastRun)
	require.Equal(t, done.ID, shown.LastRun.ID)

	upd, err := b.client.UpdateSource(ctx, "azure-prod", steward.SourceInput{Enabled: ptr(false), Schedule: ptr("2h")})
	require.NoError(t, err)
	keep(upd)
	require.False(t, upd.Enabled)
	require.Equal(t, "2h0m0s", upd.Schedule)
	require.True(t, upd.Secrets["has_token"], "secrets stay when not given")

	// Validation names the field.
	status, body := b.rawRequest(t, http.MethodPost, "/api/v1/sources", "application/json",
		[]byte(`{"name":"x","kind":"test","scope":"/","schedule":"1m","settings":{"script":"x"}}`))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "schedule", body["error"].(map[string]any)["field"])
	status, body = b.rawRequest(t, http.MethodPost, "/api/v1/sources", "application/json",
		[]byte(`{"name":"x","kind":"test","scope":"/","settings":{"script":"x"},"bogus":1}`))
	require.Equal(t, http.StatusBadRequest, status, "%v", body)

	// A scoped token sees only sources inside its scope.
	scoped := authtest.ScopedToken(t, b.srv.DB, "scoped", steward.RoleSecurityAdmin, "/subscriptions/other")
	sc, err := apiclient.New(b.url, scoped)
	require.NoError(t, err)
	sc.WithHTTPClient(b.http)
	sl, err := sc.ListSources(ctx)
	require.NoError(t, err)
	require.Empty(t, sl.Items)
	_, err = sc.GetSource(ctx, "azure-prod")
	require.Equal(t, "not_found", apiCode(err), "%v", err)
	_, err = sc.CreateSource(ctx, steward.SourceInput{Name: ptr("wide"), Kind: ptr("test"), Scope: ptr(steward.Scope("/")),
		Settings: json.RawMessage(`{"script":"x"}`)})
	require.Equal(t, "forbidden", apiCode(err))

	gone, err := b.client.DeleteSource(ctx, "azure-prod")
	require.NoError(t, err)
	keep(gone)
	_, err = b.client.GetSource(ctx, "azure-prod")
	require.Equal(t, "not_found", apiCode(err), "%v", err)

	audit, err := b.client.ListAudit(ctx, url.Values{"limit": {"100"}})
	require.NoError(t, err)
	keep(audit)
	var actions []string
	for _, e := range audit.Items {
		if strings.HasPrefix(e.Action, "source.") {
			actions = append(actions, e.Action)
		}
	}
	require.ElementsMatch(t, []string{"source.created", "source.run_requested", "source.run_requested", "source.updated", "source.deleted"}, actions)

	require.NotContains(t, bodies.String(), secretValue, "a secret in an API answer")
	require.NotContains(t, logs.String(), secretValue, "a secret in the log")
	require.Contains(t, bodies.String(), "has_token")
}

func ptr[T any](v T) *T { return &v }

func apiCode(err error) string {
	var e *apiclient.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// TestSourceRunRetriedByRiver: a pull that dies half way is retried by
// River; the run resumes by pulling again from the start, ends done on its
// second attempt, and counts each finding once.
func TestSourceRunRetriedByRiver(t *testing.T) {
	b := startWithSources(t, io.Discard)
	ctx := t.Context()
	script := t.Name()
	unit := pull.Unit{ID: "retry1", Scope: "/subscriptions/retry1"}
	var obs []steward.Observation
	for i := range 4 {
		obs = append(obs, steward.Observation{Resource: steward.Resource{ID: fmt.Sprintf("/subscriptions/retry1/vm%d", i), Cloud: steward.CloudAzure},
			Recommendation: steward.Recommendation{Key: "retry-rec", DisplayName: "r", Severity: steward.SeverityMedium, Source: "test"},
			Status:         steward.StatusUnhealthy})
	}
	var calls atomic.Int32
	collectortest.SetScript(script, func(ctx context.Context, sink pull.Sink, _ secret.String) error {
		first := calls.Add(1) == 1
		for i, o := range obs {
			if first && i == 2 {
				return errors.New("connection reset by peer")
			}
			if err := sink.Observe(ctx, unit, o); err != nil {
				return err
			}
		}
		return sink.Done(ctx, unit)
	})
	_, err := b.client.CreateSource(ctx, steward.SourceInput{Name: ptr("retry"), Kind: ptr("test"), Scope: ptr(steward.Scope("/subscriptions/retry1")),
		Enabled: ptr(false), Settings: json.RawMessage(`{"script":"` + script + `"}`)})
	require.NoError(t, err)
	run, err := b.client.RunSource(ctx, "retry")
	require.NoError(t, err)
	done := waitRun(t, b.client, "retry", run.ID)
	require.Equal(t, steward.SourceRunDone, done.State, "%+v", done)
	require.Equal(t, 2, done.Attempt)
	require.Equal(t, 4, done.Observed)
	require.Equal(t, 4, done.New+done.Unchanged)
	require.Equal(t, int32(2), calls.Load())
	page, err := b.client.ListAssessments(ctx, url.Values{"recommendation": {"retry-rec"}})
	require.NoError(t, err)
	require.Len(t, page.Items, 4)
}

// TestBuiltinSourceKinds: the three providers are wired in, each with its
// secret fields, and a source of each refuses empty settings naming a
// settings field.
func TestBuiltinSourceKinds(t *testing.T) {
	kinds := server.SourceKinds()
	require.Equal(t, []string{"defender", "scc", "securityhub"}, kinds.Names())
	for _, name := range kinds.Names() {
		k := kinds[name]
		require.NotEmpty(t, k.SecretFields, name)
		err := k.Check(json.RawMessage(`{}`), nil)
		require.Error(t, err, name)
		require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err), "%s: %v", name, err)
		require.True(t, strings.HasPrefix(steward.ErrorField(err), "settings"), "%s: field %q", name, steward.ErrorField(err))
	}
}

// TestSourceEnvObeysOutboundPolicy: a source's HTTP client reaches a
// loopback server only when its settings say local: true.
func TestSourceEnvObeysOutboundPolicy(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(hs.Close)
	env := server.SourceEnv(slog.New(slog.DiscardHandler), netpolicy.Policy{})
	get := func(settings string) error {
		rec := &store.SourceRecord{Source: steward.Source{Name: "n", Kind: "test", Settings: json.RawMessage(settings)}}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, hs.URL, nil)
		require.NoError(t, err)
		resp, err := env(rec).HTTPClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	err := get(`{"script":"x"}`)
	require.Error(t, err)
	var refused *netpolicy.RefusedError
	require.ErrorAs(t, err, &refused)
	require.NoError(t, get(`{"script":"x","local":true}`))
}
