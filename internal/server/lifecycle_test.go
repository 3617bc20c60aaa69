package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
)

// newServer builds a Steward on dbPath and a free loopback port, as `steward
// serve` does, logging to logs (text) at level.
func newServer(t *testing.T, dbPath string, logs io.Writer, level slog.Level) (*server.Server, error) {
	t.Helper()
	return newServerOn(t, func(c *config.Config) { c.DatabaseURL = dbPath }, logs, level)
}

// newServerOn is newServer on the database that edit sets.
func newServerOn(t *testing.T, edit func(*config.Config), logs io.Writer, level slog.Level) (*server.Server, error) {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = filepath.Join(t.TempDir(), "steward.db")
	if edit != nil {
		edit(&cfg)
	}
	cfg.ShutdownTimeout = 5 * time.Second
	srv, err := server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv, srv.Start(t.Context())
}

// TestOneServerPerDatabase: a second server on a database that a running
// server uses refuses to start, naming the database and the process that
// holds it; once the first stops, a new one starts.
func TestOneServerPerDatabase(t *testing.T) {
	t.Parallel()
	dbPath := filepath.Join(t.TempDir(), "steward.db")
	first, err := newServer(t, dbPath, io.Discard, slog.LevelInfo)
	require.NoError(t, err)

	_, err = newServer(t, dbPath, io.Discard, slog.LevelInfo)
	require.Error(t, err)
	host, _ := os.Hostname()
	require.ErrorContains(t, err, "database "+dbPath+" is in use by steward serve (PID "+fmt.Sprint(os.Getpid())+" on host "+host)
	require.ErrorContains(t, err, "one steward serve (or migrate) per database file")
	require.Equal(t, steward.CodeConflict, steward.ErrorCode(err))

	require.NoError(t, first.Shutdown(context.Background()))
	second, err := newServer(t, dbPath, io.Discard, slog.LevelInfo)
	require.NoError(t, err, "the lock is released on shutdown")
	require.NoError(t, second.Shutdown(context.Background()))
}

// TestHelperHoldDatabase is not a test: TestKilledServerLeavesNoLock runs
// this test binary again with STEWARD_HELPER_DB set, to get a real server
// process it can kill -9.
func TestHelperHoldDatabase(t *testing.T) {
	dbPath := os.Getenv("STEWARD_HELPER_DB")
	if dbPath == "" {
		t.Skip("helper process for TestKilledServerLeavesNoLock")
	}
	if _, err := newServer(t, dbPath, io.Discard, slog.LevelWarn); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // killed long before
	os.Exit(1)
}

// TestKilledServerLeavesNoLock: a server process killed with SIGKILL
// holds the database while it runs and leaves no stuck lock behind.
func TestKilledServerLeavesNoLock(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts and kills a server process")
	}
	dbPath := filepath.Join(t.TempDir(), "steward.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDatabase$")
	cmd.Env = append(os.Environ(), "STEWARD_HELPER_DB="+dbPath)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); line == "ready" || strings.HasPrefix(line, "error:") {
				ready <- line
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line := <-ready:
		require.Equal(t, "ready", line)
	case <-time.After(30 * time.Second):
		require.FailNow(t, "the helper server did not start")
	}

	_, err = newServer(t, dbPath, io.Discard, slog.LevelInfo)
	require.ErrorContains(t, err, fmt.Sprintf("is in use by steward serve (PID %d on host ", cmd.Process.Pid))

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	srv, err := newServer(t, dbPath, io.Discard, slog.LevelInfo)
	require.NoError(t, err, "a killed holder leaves no stuck lock")
	require.NoError(t, srv.Shutdown(context.Background()))
}

// TestBusyPortTouchesNothing: a server whose address is taken fails with
// that address before it creates anything: no database, key file, spool
// directory or lock file.
func TestBusyPortTouchesNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { busy.Close() })
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Addr = busy.Addr().String()
	cfg.DatabaseURL = filepath.Join(dir, "data", "steward.db")
	_, err = server.New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "listen on "+busy.Addr().String()+": the address is in use by another process")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing written before the address was bound")
}

// TestLinksOnAllInterfacesUseHostName: listening on 0.0.0.0 without
// STEWARD_PUBLIC_URL, the links in ticket descriptions name the machine's
// host name (an unspecified address reaches nobody), with a warning.
func TestLinksOnAllInterfacesUseHostName(t *testing.T) {
	t.Parallel()
	emu := snowemu.New(snowemu.Options{AdminPassword: "emu-pw"}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = emu.Close() })
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)

	var logs syncBuffer
	cfg := config.Default()
	cfg.Addr = "0.0.0.0:0"
	cfg.DatabaseURL = filepath.Join(t.TempDir(), "steward.db")
	cfg.ShutdownTimeout = 5 * time.Second
	srv, err := server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	require.NoError(t, srv.Start(t.Context()))
	_, port, err := net.SplitHostPort(srv.Addr())
	require.NoError(t, err)
	host, err := os.Hostname()
	require.NoError(t, err)
	want := "http://" + net.JoinHostPort(host, port)
	require.Contains(t, logs.String(), "listening on every interface without STEWARD_PUBLIC_URL")
	require.Contains(t, logs.String(), "links="+want)

	// A ticket made through the API carries the link ServiceNow users can
	// follow. Only loopback is ever connected to.
	client, err := apiclient.New("http://127.0.0.1:"+port, authtest.Token(t, srv.DB, "tester@example.com", steward.RoleOwner))
	require.NoError(t, err)
	_, err = client.PostAssessments(t.Context(), bytes.NewReader(batch(row("disk-encryption", "High", "/subscriptions/s1/vm0", "Unhealthy"))))
	require.NoError(t, err)
	page, err := client.ListAssessments(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	_, err = client.CreateIntegration(t.Context(), apiclient.IntegrationRequest{
		Name: ptrTo("emulator"), Scope: ptrTo("/subscriptions/s1"), InstanceURL: ptrTo(hs.URL), Local: ptrTo(true),
		AuthMode: ptrTo("basic"), Username: ptrTo("admin"), Password: ptrTo("emu-pw"),
	})
	require.NoError(t, err)
	a, err := client.CreateAssignment(t.Context(), apiclient.AssignmentRequest{
		AssessmentID: page.Items[0].ID, Type: "servicenow", TicketType: "incident", AssignedTo: "beth.anglin@example.com",
		RemediationTimeframeDays: 30,
	})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return emu.Count("incident") == 1 }, 20*time.Second, 50*time.Millisecond)
	rec := emu.Records("incident")[0]
	require.Contains(t, rec["description"], fmt.Sprintf("%s/api/v1/assignments/%d", want, a.ID))
	require.NotContains(t, rec["description"], "0.0.0.0")
	require.NotContains(t, rec["description"], "[::]")
}

// TestIdleLogsAtInfo: an idle server logs nothing at info about River's
// routine (producer job counts, every few seconds) or its own heartbeat,
// and each migration of a new database once, on either store.
func TestIdleLogsAtInfo(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for River's periodic reports")
	}
	forEachStore(t, func(t *testing.T, st storeKind) {
		var logs syncBuffer
		_, err := newServerOn(t, st.configure(t), &logs, slog.LevelInfo)
		require.NoError(t, err)
		time.Sleep(11 * time.Second) // River reports job counts every 5 s
		out := logs.String()
		require.NotContains(t, out, "Producer job counts")
		require.NotContains(t, out, "component=jobs", "River's routine is debug: %s", out)
		require.NotContains(t, out, "heartbeat", "renewing the heartbeat is routine: %s", out)
		require.Equal(t, 1, strings.Count(out, `msg="river migration applied" component=store version=1 `), out)
		require.NotContains(t, out, "Applied migration", "the migrator's own lines repeat ours")
	})
}
