package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/collector"
	"github.com/stewardhq/steward/internal/collector/collectortest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/source/pull"
)

var crashUnit = pull.Unit{ID: "crash1", Scope: "/subscriptions/crash1"}

func crashObservations() []steward.Observation {
	var obs []steward.Observation
	for i := range 6 {
		obs = append(obs, steward.Observation{Resource: steward.Resource{ID: fmt.Sprintf("/subscriptions/crash1/vm%d", i), Cloud: steward.CloudAzure},
			Recommendation: steward.Recommendation{Key: "crash-rec", DisplayName: "c", Severity: steward.SeverityHigh, Source: "test"},
			Status:         steward.StatusUnhealthy})
	}
	return obs
}

// TestHelperSourceServer is not a test: TestSourceRunSurvivesKill runs this
// test binary again with STEWARD_HELPER_SOURCES_DB set, to get a real server
// process, with the scripted kind, that it kills -9 in the middle of a pull.
func TestHelperSourceServer(t *testing.T) {
	dbPath := os.Getenv("STEWARD_HELPER_SOURCES_DB")
	if dbPath == "" {
		t.Skip("helper process for TestSourceRunSurvivesKill")
	}
	// Observe four findings (applied by the 2 s progress flush), then hang
	// until killed.
	collectortest.SetScript("crash", func(ctx context.Context, sink pull.Sink, _ secret.String) error {
		obs := crashObservations()
		for i := range 3 {
			if err := sink.Observe(ctx, crashUnit, obs[i]); err != nil {
				return err
			}
		}
		time.Sleep(2100 * time.Millisecond)
		if err := sink.Observe(ctx, crashUnit, obs[3]); err != nil {
			return err
		}
		select {}
	})
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = dbPath
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		server.WithSourceKinds(collector.Registry{collectortest.KindName: collectortest.Kind()}))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if err := srv.Start(context.Background()); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	token := authtest.Token(t, srv.DB, "crash-admin", steward.RoleOwner)
	fmt.Println("ready", srv.URL(), token)
	select {}
}

// TestSourceRunSurvivesKill kills a real server process with SIGKILL in the
// middle of a pull, after part of it was applied, starts Steward again on
// the same database, and requires the run to be retried from the start and
// end done, each finding applied once and counted once.
func TestSourceRunSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a real server process")
	}
	t.Parallel()
	dbPath := filepath.Join(t.TempDir(), "steward.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSourceServer$")
	cmd.Env = append(os.Environ(), "STEWARD_HELPER_SOURCES_DB="+dbPath)
	cmd.Stderr = io.Discard
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var url, token string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ready" {
			url, token = f[1], f[2]
			break
		}
	}
	require.NotEmpty(t, token, "helper server did not start")
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	c, err := apiclient.New(url, token)
	require.NoError(t, err)
	ctx := t.Context()
	_, err = c.CreateSource(ctx, steward.SourceInput{Name: ptr("crashy"), Kind: ptr("test"), Scope: ptr(steward.Scope("/subscriptions/crash1")),
		Enabled: ptr(false), Settings: json.RawMessage(`{"script":"crash"}`)})
	require.NoError(t, err)
	run, err := c.RunSource(ctx, "crashy")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := c.GetSourceRun(ctx, "crashy", run.ID)
		return err == nil && got.New == 4
	}, 30*time.Second, 50*time.Millisecond, "part of the pull applied before the kill")

	require.NoError(t, cmd.Process.Kill())
	_, _ = cmd.Process.Wait()

	// Steward again, on the same database; the pull now completes.
	collectortest.SetScript("crash", collectortest.Serve(collectortest.Unit{Unit: crashUnit, Obs: crashObservations()}))
	logs := &syncBuffer{}
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = dbPath
	cfg.ShutdownTimeout = 10 * time.Second
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		server.WithSourceKinds(collector.Registry{collectortest.KindName: collectortest.Kind()}))
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	c2, err := apiclient.New(srv.URL(), token)
	require.NoError(t, err)
	var done *steward.SourceRun
	require.Eventually(t, func() bool {
		done, err = c2.GetSourceRun(ctx, "crashy", run.ID)
		return err == nil && done.State.Finished()
	}, 90*time.Second, 100*time.Millisecond, "run not resumed after the kill: %s", logs)
	require.Equal(t, steward.SourceRunDone, done.State, "%+v", done)
	require.Equal(t, 2, done.Attempt)
	require.Equal(t, 6, done.Observed)
	require.Equal(t, 2, done.New)
	require.Equal(t, 4, done.Unchanged)
	page, err := c2.ListAssessments(ctx, nil)
	require.NoError(t, err)
	require.Len(t, page.Items, 6)
}
