// Package config holds the settings of `steward serve`: defaults, then
// STEWARD_* environment variables, then command-line flags. Integrations,
// rules and mappings are data in the store, not configuration.
package config

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// Config is the server's configuration. Every field's default is the one
// Default returns; every field has a STEWARD_* variable (see README).
type Config struct {
	// Addr is the HTTP listen address (STEWARD_ADDR, default 127.0.0.1:8080).
	// The default binds loopback only: exposing Steward is a choice.
	Addr string
	// DatabaseURL is a SQLite file path (STEWARD_DATABASE_URL, default
	// ./steward.db).
	DatabaseURL string
	// SpoolDir keeps uploaded import files until they are applied
	// (STEWARD_SPOOL_DIR, default: steward-spool next to the database).
	SpoolDir string
	// LogLevel is debug, info, warn or error (STEWARD_LOG_LEVEL, default info).
	LogLevel string
	// LogFormat is text or json (STEWARD_LOG_FORMAT, default text).
	LogFormat string
	// MaxImportBytes bounds one uploaded file (STEWARD_MAX_IMPORT_BYTES,
	// default 4 GiB).
	MaxImportBytes int64
	// ShutdownTimeout bounds a graceful stop (STEWARD_SHUTDOWN_TIMEOUT,
	// default 30s).
	ShutdownTimeout time.Duration
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DatabaseURL:     "./steward.db",
		LogLevel:        "info",
		LogFormat:       "text",
		MaxImportBytes:  4 << 30,
		ShutdownTimeout: 30 * time.Second,
	}
}

// FromEnv returns the defaults overridden by STEWARD_* variables read
// through getenv (os.Getenv in production).
func FromEnv(getenv func(string) string) (Config, error) {
	c := Default()
	str := func(key string, dst *string) {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			*dst = v
		}
	}
	str("STEWARD_ADDR", &c.Addr)
	str("STEWARD_DATABASE_URL", &c.DatabaseURL)
	str("STEWARD_SPOOL_DIR", &c.SpoolDir)
	str("STEWARD_LOG_LEVEL", &c.LogLevel)
	str("STEWARD_LOG_FORMAT", &c.LogFormat)
	if v := getenv("STEWARD_MAX_IMPORT_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return c, steward.Errorf(steward.CodeInvalid, "STEWARD_MAX_IMPORT_BYTES %q is not a number of bytes", v)
		}
		c.MaxImportBytes = n
	}
	if v := getenv("STEWARD_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, steward.Errorf(steward.CodeInvalid, "STEWARD_SHUTDOWN_TIMEOUT %q is not a duration such as 30s", v)
		}
		c.ShutdownTimeout = d
	}
	return c, nil
}

// Validate names the first bad setting and fills derived defaults.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return steward.Errorf(steward.CodeInvalid, "addr %q is not host:port", c.Addr)
	}
	if strings.TrimSpace(c.DatabaseURL) == "" {
		return steward.Errorf(steward.CodeInvalid, "database URL is empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return steward.Errorf(steward.CodeInvalid, "log level %q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return steward.Errorf(steward.CodeInvalid, "log format %q is not text or json", c.LogFormat)
	}
	if c.MaxImportBytes < 1 {
		return steward.Errorf(steward.CodeInvalid, "max import bytes must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		return steward.Errorf(steward.CodeInvalid, "shutdown timeout must be positive")
	}
	if c.SpoolDir == "" {
		c.SpoolDir = filepath.Join(filepath.Dir(sqlitePath(c.DatabaseURL)), "steward-spool")
	}
	return nil
}

// sqlitePath strips the URL forms store.Open accepts down to the file path.
func sqlitePath(url string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}
