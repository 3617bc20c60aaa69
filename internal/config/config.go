// Package config holds the settings of `steward serve`: defaults, then
// STEWARD_* environment variables, then command-line flags. Integrations,
// rules and mappings are data in the store, not configuration.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
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
	// SecretKey is the base64 of the 32-byte key that encrypts integration
	// credentials at rest (STEWARD_SECRET_KEY, or STEWARD_SECRET_KEY_FILE
	// naming a file that holds it). Without either, a key file
	// steward.key is created next to the database on first start (0600).
	SecretKey     string
	SecretKeyFile string
	// PreviousSecretKey, when set (STEWARD_SECRET_KEY_PREVIOUS), is the key
	// being rotated out: at start every stored secret is re-encrypted from
	// it to SecretKey.
	PreviousSecretKey string
	// PublicURL is Steward's base URL as users reach it, used for links in
	// ticket descriptions (STEWARD_PUBLIC_URL; default http://<addr>).
	PublicURL string
	// ReadTimeout bounds reading one request, body included
	// (STEWARD_READ_TIMEOUT, default 30s), so a client that trickles a body
	// cannot hold a connection open. Uploads are exempt from the fixed
	// bound and must instead keep a minimum data rate.
	ReadTimeout time.Duration
	// UploadMinRate is the average data rate, in bytes per second, an
	// upload must keep over every UploadRateWindow
	// (STEWARD_UPLOAD_MIN_RATE, default 1024; STEWARD_UPLOAD_RATE_WINDOW,
	// default 10s).
	UploadMinRate    int64
	UploadRateWindow time.Duration
	// TLSCertFile and TLSKeyFile, when both set (--tls-cert, --tls-key,
	// STEWARD_TLS_CERT, STEWARD_TLS_KEY), make the listener serve HTTPS.
	TLSCertFile string
	TLSKeyFile  string
	// AllowPrivateInstances lists the private address ranges (10/8,
	// 172.16/12, 192.168/16, fc00::/7 or parts of them) that integrations
	// may connect to, for on-premises instances
	// (STEWARD_ALLOW_PRIVATE_INSTANCES, comma-separated CIDRs; default none).
	AllowPrivateInstances []netip.Prefix
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Addr:             "127.0.0.1:8080",
		DatabaseURL:      "./steward.db",
		LogLevel:         "info",
		LogFormat:        "text",
		MaxImportBytes:   4 << 30,
		ShutdownTimeout:  30 * time.Second,
		ReadTimeout:      30 * time.Second,
		UploadMinRate:    1024,
		UploadRateWindow: 10 * time.Second,
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
	str("STEWARD_SECRET_KEY", &c.SecretKey)
	str("STEWARD_SECRET_KEY_FILE", &c.SecretKeyFile)
	str("STEWARD_SECRET_KEY_PREVIOUS", &c.PreviousSecretKey)
	str("STEWARD_PUBLIC_URL", &c.PublicURL)
	str("STEWARD_TLS_CERT", &c.TLSCertFile)
	str("STEWARD_TLS_KEY", &c.TLSKeyFile)
	if v := getenv("STEWARD_UPLOAD_MIN_RATE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return c, steward.Errorf(steward.CodeInvalid, "STEWARD_UPLOAD_MIN_RATE %q is not a positive number of bytes per second", v)
		}
		c.UploadMinRate = n
	}
	if v := getenv("STEWARD_UPLOAD_RATE_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return c, steward.Errorf(steward.CodeInvalid, "STEWARD_UPLOAD_RATE_WINDOW %q is not a duration of at least 1s", v)
		}
		c.UploadRateWindow = d
	}
	if v := getenv("STEWARD_READ_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, steward.Errorf(steward.CodeInvalid, "STEWARD_READ_TIMEOUT %q is not a duration such as 30s", v)
		}
		c.ReadTimeout = d
	}
	if v := strings.TrimSpace(getenv("STEWARD_ALLOW_PRIVATE_INSTANCES")); v != "" {
		prefixes, err := ParsePrefixes(v)
		if err != nil {
			return c, steward.Errorf(steward.CodeInvalid, "STEWARD_ALLOW_PRIVATE_INSTANCES: %s", err.Error())
		}
		c.AllowPrivateInstances = prefixes
	}
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
	if c.ReadTimeout <= 0 {
		return steward.Errorf(steward.CodeInvalid, "read timeout must be positive")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return steward.Errorf(steward.CodeInvalid, "TLS needs both a certificate and a key (--tls-cert and --tls-key)")
	}
	if c.SpoolDir == "" {
		c.SpoolDir = filepath.Join(filepath.Dir(SQLitePath(c.DatabaseURL)), "steward-spool")
	}
	if c.SecretKey != "" && c.SecretKeyFile != "" {
		return steward.Errorf(steward.CodeInvalid, "set STEWARD_SECRET_KEY or STEWARD_SECRET_KEY_FILE, not both")
	}
	if c.SecretKey == "" && c.SecretKeyFile == "" {
		c.SecretKeyFile = filepath.Join(filepath.Dir(SQLitePath(c.DatabaseURL)), "steward.key")
	}
	return nil
}

// LoadSecretKey returns the 32-byte key for credentials at rest: from
// SecretKey, else from SecretKeyFile, creating that file with a random key
// (mode 0600) when it does not exist yet. created reports a new file.
func (c *Config) LoadSecretKey() (key []byte, created bool, err error) {
	if c.SecretKey != "" {
		key, err := decodeKey(c.SecretKey)
		if err != nil {
			return nil, false, steward.Errorf(steward.CodeInvalid, "STEWARD_SECRET_KEY: %s", err.Error())
		}
		return key, false, nil
	}
	b, err := os.ReadFile(c.SecretKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, false, fmt.Errorf("generate secret key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(c.SecretKeyFile), 0o700); err != nil {
			return nil, false, fmt.Errorf("create secret key directory: %w", err)
		}
		// O_EXCL: two processes starting at once must not both write a key.
		f, err := os.OpenFile(c.SecretKeyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("create secret key file: %w", err)
		}
		_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, false, fmt.Errorf("write secret key file: %w", werr)
		}
		return key, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read secret key file: %w", err)
	}
	if key, err = decodeKey(string(b)); err != nil {
		return nil, false, steward.Errorf(steward.CodeInvalid, "secret key file %s: %s", c.SecretKeyFile, err.Error())
	}
	return key, false, nil
}

// LoadPreviousSecretKey returns the key being rotated out, or nil.
func (c *Config) LoadPreviousSecretKey() ([]byte, error) {
	if c.PreviousSecretKey == "" {
		return nil, nil
	}
	key, err := decodeKey(c.PreviousSecretKey)
	if err != nil {
		return nil, steward.Errorf(steward.CodeInvalid, "STEWARD_SECRET_KEY_PREVIOUS: %s", err.Error())
	}
	return key, nil
}

func decodeKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(key) != 32 {
		return nil, errors.New("want the base64 of 32 random bytes (openssl rand -base64 32)")
	}
	return key, nil
}

// ParsePrefixes reads a comma-separated list of CIDR ranges such as
// "10.20.0.0/16, fd00::/8".
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR range such as 10.20.0.0/16", part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// TokenFile is where `steward serve --sample` writes the owner token it
// creates on a new database: steward.token next to the database file.
func (c *Config) TokenFile() string {
	return filepath.Join(filepath.Dir(SQLitePath(c.DatabaseURL)), "steward.token")
}

// SQLitePath strips the URL forms store.Open accepts down to the file path.
func SQLitePath(url string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}
