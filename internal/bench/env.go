package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
)

// stewardEnv is one Steward server on a fresh database (a SQLite file in
// its own directory, or a database of its own on the PostgreSQL server of
// --db), serving on loopback, with an owner token.
type stewardEnv struct {
	dir    string
	pg     *pgDatabase
	srv    *server.Server
	token  string
	client *apiclient.Client
	// http is a keep-alive client for timed requests.
	http *http.Client
}

// startSteward starts Steward in process on a fresh database: a SQLite file
// under parent, or, when pgServer is set, a new database on that
// PostgreSQL server (dropped by close).
func startSteward(ctx context.Context, parent, pgServer string, logger *slog.Logger, opts ...server.Option) (_ *stewardEnv, err error) {
	dir, err := os.MkdirTemp(parent, "steward-")
	if err != nil {
		return nil, fmt.Errorf("create the server's directory: %w", err)
	}
	env := &stewardEnv{dir: dir}
	defer func() {
		if err != nil {
			env.close()
		}
	}()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DatabaseURL = filepath.Join(dir, "steward.db")
	cfg.SecretKeyFile = filepath.Join(dir, "steward.key")
	cfg.SpoolDir = filepath.Join(dir, "spool")
	cfg.ShutdownTimeout = 10 * time.Second
	if pgServer != "" {
		if env.pg, err = createDatabase(ctx, pgServer); err != nil {
			return nil, err
		}
		cfg.DatabaseURL, cfg.SecretKeyFile = env.pg.url, ""
		cfg.SecretKey = base64.StdEncoding.EncodeToString(randomBytes(32))
	}
	if env.srv, err = server.New(ctx, cfg, logger.With("component", "steward"), opts...); err != nil {
		return nil, fmt.Errorf("start Steward: %w", err)
	}
	if err := env.srv.Start(ctx); err != nil {
		return nil, fmt.Errorf("start Steward: %w", err)
	}
	if env.token, _, err = auth.Issue(ctx, env.srv.DB, auth.TokenRequest{Name: "bench", Role: steward.RoleOwner}, "system:bench"); err != nil {
		return nil, fmt.Errorf("create the bench's API token: %w", err)
	}
	if env.client, err = apiclient.New(env.srv.URL(), env.token); err != nil {
		return nil, err
	}
	env.http = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	return env, nil
}

func (e *stewardEnv) close() error {
	var errs []error
	if e.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, e.srv.Shutdown(ctx))
		cancel()
	}
	if e.http != nil {
		e.http.CloseIdleConnections()
	}
	if e.pg != nil {
		errs = append(errs, e.pg.drop())
	}
	errs = append(errs, os.RemoveAll(e.dir))
	return errors.Join(errs...)
}

// get sends one authenticated GET of path and returns its time to the
// full answer.
func (e *stewardEnv) get(ctx context.Context, path string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL()+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	start := time.Now()
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = drain(resp)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return d, nil
}

// emulatorEnv is the ServiceNow emulator serving on loopback.
type emulatorEnv struct {
	emu *snowemu.Emulator
	url string
	hs  *http.Server
	// polls counts Table API reads whose query starts at a
	// sys_updated_on watermark: an incremental poll's pages (the
	// ServiceNow wire format, docs/servicenow-setup.md), as opposed to
	// reads by sys_id.
	polls atomic.Int64
}

func (e *emulatorEnv) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Query().Get("sysparm_query"), "sys_updated_on") {
		e.polls.Add(1)
	}
	e.emu.ServeHTTP(w, r)
}

func startEmulator(opts snowemu.Options, logger *slog.Logger) (*emulatorEnv, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the emulator: %w", err)
	}
	e := &emulatorEnv{url: "http://" + ln.Addr().String()}
	e.emu = snowemu.New(opts, logger.With("component", "snow-emulator"))
	e.hs = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.hs.Serve(ln) }()
	return e, nil
}

func (e *emulatorEnv) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.hs.Shutdown(ctx)
	return e.emu.Close()
}

// waitFor polls cond every interval until it holds, fails, or timeout
// passes.
func waitFor(ctx context.Context, timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
