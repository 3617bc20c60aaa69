package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/sample"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
)

func newServeCommand(stderr io.Writer) *cobra.Command {
	var withSample bool
	cfg, envErr := config.FromEnv(os.Getenv)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Steward server: HTTP API and background workers in one process",
		Long: `Run the Steward server: the JSON API under /api/v1, /metrics, /healthz,
/readyz, and the background workers, on one listener. The database is created
and migrated on first start.

One serve per SQLite database file: a second one on the same file refuses to
start, naming the process that runs (a lock on <database>.lock, released when
that process ends, however it ends). 'tokens create --db' works while it runs.

On PostgreSQL (--db postgres://...) any number of serve processes share the
database and its work; they need the same STEWARD_SECRET_KEY (or _FILE).

Settings come from flags, then STEWARD_* environment variables, then defaults.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if envErr != nil {
				return envErr
			}
			logger, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			srv, err := server.New(ctx, cfg, logger)
			if err != nil {
				return err
			}
			if err := srv.Start(ctx); err != nil {
				_ = srv.Shutdown(context.Background())
				return err
			}
			if withSample {
				if err := ensureOwnerTokenFile(ctx, srv.DB, cfg.TokenFile(), logger); err != nil {
					logger.Error("creating the first owner token failed", "err", err)
				}
				if err := importSamples(ctx, srv, logger); err != nil {
					logger.Error("sample import failed", "err", err)
				}
			}
			<-ctx.Done()
			logger.Info("shutting down")
			return srv.Shutdown(context.Background())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (env STEWARD_ADDR)")
	f.StringVar(&cfg.DatabaseURL, "db", cfg.DatabaseURL, "SQLite database file or postgres:// URL (env STEWARD_DATABASE_URL)")
	f.StringVar(&cfg.SpoolDir, "spool-dir", cfg.SpoolDir, "where uploaded imports wait to be applied (env STEWARD_SPOOL_DIR; default steward-spool next to the database)")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error (env STEWARD_LOG_LEVEL)")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json (env STEWARD_LOG_FORMAT)")
	f.Int64Var(&cfg.MaxImportBytes, "max-import-bytes", cfg.MaxImportBytes, "largest accepted import file (env STEWARD_MAX_IMPORT_BYTES)")
	f.StringVar(&cfg.TLSCertFile, "tls-cert", cfg.TLSCertFile, "PEM certificate (chain) to serve HTTPS with; needs --tls-key (env STEWARD_TLS_CERT)")
	f.StringVar(&cfg.TLSKeyFile, "tls-key", cfg.TLSKeyFile, "PEM private key of --tls-cert (env STEWARD_TLS_KEY)")
	f.BoolVar(&withSample, "sample", false, "import the bundled sample findings (Prowler OCSF for AWS, Azure and GCP) at start")
	return cmd
}

// importSamples uploads the bundled findings through the API, as a user
// would, and waits for them to be applied.
func importSamples(ctx context.Context, srv *server.Server, logger *slog.Logger) error {
	// A short-lived contributor token of its own, revoked when done, so the
	// imports are recorded as "sample-import" in the audit log.
	token, done, err := temporaryToken(ctx, srv.DB, "sample-import", steward.RoleContributor)
	if err != nil {
		return err
	}
	defer done()
	client, err := apiclient.New(srv.URL(), token)
	if err != nil {
		return err
	}
	for _, f := range sample.Files() {
		imp, err := client.UploadImport(ctx, bytes.NewReader(f.Data), int64(len(f.Data)), f.Name, "")
		if err != nil {
			return fmt.Errorf("upload %s: %w", f.Name, err)
		}
		for imp.State == "queued" || imp.State == "running" {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			if imp, err = client.GetImport(ctx, imp.ID); err != nil {
				return fmt.Errorf("follow import of %s: %w", f.Name, err)
			}
		}
		if imp.State != "succeeded" {
			return fmt.Errorf("import of %s %s: %s", f.Name, imp.State, imp.Error)
		}
		logger.Info("sample imported", "file", f.Name, "observations", imp.Result.Observations,
			"created", imp.Result.AssessmentsCreated)
	}
	return nil
}

func newMigrateCommand(stderr io.Writer) *cobra.Command {
	cfg, envErr := config.FromEnv(os.Getenv)
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema, then exit",
		Long: `serve migrates on start too; migrate is for upgrading before a rollout.
It refuses to run while a steward serve uses the database: stop it first (on
PostgreSQL, every process whose heartbeat is younger than 30 seconds).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if envErr != nil {
				return envErr
			}
			logger, err := newLogger(stderr, "info", "text")
			if err != nil {
				return err
			}
			// The schema changes under a running server's feet otherwise.
			lock, err := server.LockDatabase(cfg.DatabaseURL, "migrate")
			if err != nil {
				return err
			}
			defer lock.Release()
			if err := refuseLiveProcesses(cmd.Context(), cfg.DatabaseURL); err != nil {
				return err
			}
			db, err := store.Open(cmd.Context(), cfg.DatabaseURL, logger)
			if err != nil {
				return err
			}
			logger.Info("database is up to date", "database", store.RedactURL(cfg.DatabaseURL))
			return db.Close()
		},
	}
	cmd.Flags().StringVar(&cfg.DatabaseURL, "db", cfg.DatabaseURL, "SQLite database file or postgres:// URL (env STEWARD_DATABASE_URL)")
	cmd.AddCommand(newMigrateCopyCommand()) // migrate_copy.go
	return cmd
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q is not text or json", format)
}

// refuseLiveProcesses is the PostgreSQL side of migrate's lock: processes
// share such a database, so instead of a file lock it looks for serve
// processes that renewed their heartbeat recently (they renew every 5 s).
func refuseLiveProcesses(ctx context.Context, url string) error {
	live, err := store.LiveProcesses(ctx, url, server.SilentProcessAfter)
	if err != nil {
		return err
	}
	if len(live) == 0 {
		return nil
	}
	names := make([]string, 0, len(live))
	for _, p := range live {
		names = append(names, fmt.Sprintf("%s (pid %d, started %s)", p.Host, p.PID, p.StartedAt.Format(time.RFC3339)))
	}
	return steward.Errorf(steward.CodeConflict, "database %s is in use by %d steward serve process(es): %s; stop them before migrating",
		store.RedactURL(url), len(live), strings.Join(names, ", "))
}
