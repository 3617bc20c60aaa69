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
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
)

// Config is the server's configuration. Every field's default is the one
// Default returns; every field has a STEWARD_* variable (see README).
type Config struct {
	// Addr is the HTTP listen address (STEWARD_ADDR, default 127.0.0.1:8080).
	// The default binds loopback only: exposing Steward is a choice.
	Addr string
	// DatabaseURL is a SQLite file path or a postgres:// URL
	// (STEWARD_DATABASE_URL, default ./steward.db). Its password, if any,
	// is never logged: print it with store.RedactURL.
	DatabaseURL string
	// SpoolDir keeps uploaded import files until they are applied
	// (STEWARD_SPOOL_DIR, default: steward-spool next to a SQLite database,
	// ./steward-spool in the working directory with PostgreSQL). Every
	// process that shares a PostgreSQL database must see the same
	// directory: any of them may apply an upload another accepted.
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
	// steward.key is created next to a SQLite database on first start
	// (0600); with PostgreSQL one of them is required, because every
	// process sharing the database must hold the same key.
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

	// OIDCIssuer, when set (STEWARD_OIDC_ISSUER), offers sign-in to the
	// web UI through that OpenID Connect provider; it needs OIDCClientID,
	// OIDCRoles and PublicURL (the redirect URL is PublicURL +
	// /signin/oidc/callback).
	OIDCIssuer string
	// OIDCClientID is the client registered at the provider
	// (STEWARD_OIDC_CLIENT_ID).
	OIDCClientID string
	// OIDCClientSecretFile names a file holding the client's secret
	// (STEWARD_OIDC_CLIENT_SECRET_FILE); without it Steward signs in as a
	// public client (PKCE only).
	OIDCClientSecretFile string
	// OIDCName is the provider's name on the sign-in button
	// (STEWARD_OIDC_NAME, default "your identity provider").
	OIDCName string
	// OIDCRoleClaim is the ID token claim whose values OIDCRoles maps to
	// roles (STEWARD_OIDC_ROLE_CLAIM, default groups).
	OIDCRoleClaim string
	// OIDCRoles maps role claim values to roles (STEWARD_OIDC_ROLES), e.g.
	// "steward-owners=owner,engineering=contributor,*=reader": the highest
	// role among the user's values (and "*", which everyone has) wins;
	// without "*" a user with no mapped value is refused.
	OIDCRoles string
	// OIDCScopeClaim, when set (STEWARD_OIDC_SCOPE_CLAIM), is an ID token
	// claim whose value limits the session to a scope; a user without it
	// is refused ("/" means no limit).
	OIDCScopeClaim string
	// OIDCScopes are the OAuth scopes asked for (STEWARD_OIDC_SCOPES,
	// space- or comma-separated; default "openid email profile").
	OIDCScopes string

	// SMTPHost, when set (STEWARD_SMTP_HOST), turns e-mail notifications
	// on (docs/notifications.md); it needs SMTPFrom.
	SMTPHost string
	// SMTPPort is the server's port (STEWARD_SMTP_PORT; default 587, or
	// 465 with implicit TLS).
	SMTPPort int
	// SMTPTLS is starttls, tls (implicit, port 465) or none
	// (STEWARD_SMTP_TLS, default starttls).
	SMTPTLS string
	// SMTPUsername and the password in SMTPPasswordFile authenticate
	// (STEWARD_SMTP_USERNAME, STEWARD_SMTP_PASSWORD_FILE); never over a
	// connection without TLS.
	SMTPUsername     string
	SMTPPasswordFile string
	// SMTPFrom is the sender, e.g. "Steward <steward@example.com>"
	// (STEWARD_SMTP_FROM).
	SMTPFrom string
	// SMTPCAFile, when set (STEWARD_SMTP_CA_FILE), names PEM certificates
	// trusted for the SMTP server instead of the system's (an internal CA).
	SMTPCAFile string
	// DigestDay, DigestHour and DigestTimezone are when weekly digests go
	// out (STEWARD_DIGEST_DAY, default monday; STEWARD_DIGEST_HOUR, 0-23,
	// default 8; STEWARD_DIGEST_TIMEZONE, an IANA zone, default UTC).
	DigestDay      string
	DigestHour     int
	DigestTimezone string
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
		OIDCName:         "your identity provider",
		OIDCRoleClaim:    "groups",
		OIDCScopes:       "openid email profile",
		SMTPTLS:          "starttls",
		DigestDay:        "monday",
		DigestHour:       8,
		DigestTimezone:   "UTC",
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
	str("STEWARD_OIDC_ISSUER", &c.OIDCIssuer)
	str("STEWARD_OIDC_CLIENT_ID", &c.OIDCClientID)
	str("STEWARD_OIDC_CLIENT_SECRET_FILE", &c.OIDCClientSecretFile)
	str("STEWARD_OIDC_NAME", &c.OIDCName)
	str("STEWARD_OIDC_ROLE_CLAIM", &c.OIDCRoleClaim)
	str("STEWARD_OIDC_ROLES", &c.OIDCRoles)
	str("STEWARD_OIDC_SCOPE_CLAIM", &c.OIDCScopeClaim)
	str("STEWARD_OIDC_SCOPES", &c.OIDCScopes)
	str("STEWARD_SMTP_HOST", &c.SMTPHost)
	str("STEWARD_SMTP_TLS", &c.SMTPTLS)
	str("STEWARD_SMTP_USERNAME", &c.SMTPUsername)
	str("STEWARD_SMTP_PASSWORD_FILE", &c.SMTPPasswordFile)
	str("STEWARD_SMTP_FROM", &c.SMTPFrom)
	str("STEWARD_SMTP_CA_FILE", &c.SMTPCAFile)
	str("STEWARD_DIGEST_DAY", &c.DigestDay)
	str("STEWARD_DIGEST_TIMEZONE", &c.DigestTimezone)
	for _, n := range []struct {
		key string
		dst *int
	}{{"STEWARD_SMTP_PORT", &c.SMTPPort}, {"STEWARD_DIGEST_HOUR", &c.DigestHour}} {
		if v := strings.TrimSpace(getenv(n.key)); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil {
				return c, steward.Errorf(steward.CodeInvalid, "%s %q is not a whole number", n.key, v)
			}
			*n.dst = i
		}
	}
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
	if c.SecretKey != "" && c.SecretKeyFile != "" {
		return steward.Errorf(steward.CodeInvalid, "set STEWARD_SECRET_KEY or STEWARD_SECRET_KEY_FILE, not both")
	}
	if c.Postgres() {
		// No database file to put the spool and the key next to; and a
		// key made up by each process would leave every process unable
		// to read the credentials the others stored.
		if c.SpoolDir == "" {
			c.SpoolDir = "steward-spool"
		}
		if c.SecretKey == "" && c.SecretKeyFile == "" {
			return steward.Errorf(steward.CodeInvalid, "a PostgreSQL database needs STEWARD_SECRET_KEY or STEWARD_SECRET_KEY_FILE: every steward process on the database must use the same key (create one with: openssl rand -base64 32)")
		}
	} else {
		dir := filepath.Dir(SQLitePath(c.DatabaseURL))
		if c.SpoolDir == "" {
			c.SpoolDir = filepath.Join(dir, "steward-spool")
		}
		if c.SecretKey == "" && c.SecretKeyFile == "" {
			c.SecretKeyFile = filepath.Join(dir, "steward.key")
		}
	}
	if err := c.validateOIDC(); err != nil {
		return err
	}
	return c.validateSMTP()
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
// creates on a new database: steward.token next to a SQLite database file,
// or in the working directory with PostgreSQL.
func (c *Config) TokenFile() string {
	if c.Postgres() {
		return "steward.token"
	}
	return filepath.Join(filepath.Dir(SQLitePath(c.DatabaseURL)), "steward.token")
}

// Postgres reports whether DatabaseURL names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func (c *Config) Postgres() bool { return store.IsPostgresURL(c.DatabaseURL) }

// SQLitePath strips the URL forms store.Open accepts down to the file path.
// It is meaningless for a PostgreSQL URL (see Postgres).
func SQLitePath(url string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}

// OIDC is the OpenID Connect sign-in setup, resolved by LoadOIDC; the web
// UI signs in with it.
type OIDC struct {
	// Issuer is the provider's issuer URL; discovery reads
	// Issuer/.well-known/openid-configuration.
	Issuer       string
	ClientID     string
	ClientSecret secret.String
	// DisplayName names the provider on the sign-in button.
	DisplayName string
	// RedirectURL is Steward's callback as the browser reaches it:
	// PublicURL + /signin/oidc/callback.
	RedirectURL string
	// RoleClaim is the ID token claim (a string or a list of strings; a
	// dotted path such as realm_access.roles reaches into objects) whose
	// values Roles maps to roles.
	RoleClaim string
	// Roles maps role claim values to roles; the key "*" is everyone's.
	// The highest role among a user's values wins; a user with none is
	// refused.
	Roles map[string]steward.Role
	// ScopeClaim, when set, names the claim whose value limits the session
	// to a scope; a user without it is refused.
	ScopeClaim string
	// Scopes are the OAuth scopes asked for; openid among them.
	Scopes []string
}

// OIDCEnabled reports whether OpenID Connect sign-in is configured.
func (c *Config) OIDCEnabled() bool { return c.OIDCIssuer != "" }

// validateOIDC checks the OpenID Connect settings, naming the variable at
// fault. A setting without STEWARD_OIDC_ISSUER is a mistake, not silence.
func (c *Config) validateOIDC() error {
	if c.OIDCIssuer == "" {
		for _, kv := range [][2]string{{"STEWARD_OIDC_CLIENT_ID", c.OIDCClientID}, {"STEWARD_OIDC_CLIENT_SECRET_FILE", c.OIDCClientSecretFile},
			{"STEWARD_OIDC_ROLES", c.OIDCRoles}, {"STEWARD_OIDC_SCOPE_CLAIM", c.OIDCScopeClaim}} {
			if kv[1] != "" {
				return steward.Errorf(steward.CodeInvalid, "%s is set but STEWARD_OIDC_ISSUER is not: set the provider's issuer URL to sign in with OpenID Connect", kv[0])
			}
		}
		return nil
	}
	u, err := url.Parse(c.OIDCIssuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		!(u.Scheme == "https" || u.Scheme == "http" && isLoopbackHost(u.Hostname())) {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_OIDC_ISSUER %q is not an https URL such as https://login.example.com/realms/main (plain http only on loopback)", c.OIDCIssuer)
	}
	if strings.TrimSpace(c.OIDCClientID) == "" {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_OIDC_CLIENT_ID is required with STEWARD_OIDC_ISSUER: the client ID registered at the provider")
	}
	if c.PublicURL == "" {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_PUBLIC_URL is required with STEWARD_OIDC_ISSUER: the provider sends browsers back to <public URL>/signin/oidc/callback")
	}
	if pu, err := url.Parse(c.PublicURL); err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http") || pu.RawQuery != "" || pu.Fragment != "" {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_PUBLIC_URL %q is not an http(s) URL such as https://steward.example.com", c.PublicURL)
	}
	if strings.TrimSpace(c.OIDCName) == "" || len(c.OIDCName) > 100 {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_OIDC_NAME must be 1 to 100 characters (the sign-in button says \"Sign in with <name>\")")
	}
	if strings.TrimSpace(c.OIDCRoleClaim) == "" {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_OIDC_ROLE_CLAIM is empty: name the ID token claim that holds the user's groups or roles (default groups)")
	}
	if _, err := ParseOIDCRoles(c.OIDCRoles); err != nil {
		return err
	}
	if _, err := parseOIDCScopes(c.OIDCScopes); err != nil {
		return err
	}
	// Read now, so a bad file fails before anything is written.
	_, err = c.readOIDCClientSecret()
	return err
}

// readOIDCClientSecret reads the client secret's file, if one is set.
func (c *Config) readOIDCClientSecret() (secret.String, error) {
	if c.OIDCClientSecretFile == "" {
		return secret.String{}, nil
	}
	b, err := os.ReadFile(c.OIDCClientSecretFile)
	if err != nil {
		// The path and the OS's reason only; never the content.
		return secret.String{}, steward.Errorf(steward.CodeInvalid, "STEWARD_OIDC_CLIENT_SECRET_FILE: cannot read %s: %s", c.OIDCClientSecretFile, pathErrReason(err))
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return secret.String{}, steward.Errorf(steward.CodeInvalid, "STEWARD_OIDC_CLIENT_SECRET_FILE: %s is empty", c.OIDCClientSecretFile)
	}
	return secret.New(v), nil
}

// LoadOIDC returns the OpenID Connect setup with the client secret read
// from its file, or nil when OIDC is not configured. Call after Validate.
func (c *Config) LoadOIDC() (*OIDC, error) {
	if !c.OIDCEnabled() {
		return nil, nil
	}
	roles, err := ParseOIDCRoles(c.OIDCRoles)
	if err != nil {
		return nil, err
	}
	scopes, err := parseOIDCScopes(c.OIDCScopes)
	if err != nil {
		return nil, err
	}
	o := &OIDC{Issuer: c.OIDCIssuer, ClientID: strings.TrimSpace(c.OIDCClientID), DisplayName: strings.TrimSpace(c.OIDCName),
		RedirectURL: strings.TrimRight(c.PublicURL, "/") + "/signin/oidc/callback",
		RoleClaim:   strings.TrimSpace(c.OIDCRoleClaim), Roles: roles, ScopeClaim: strings.TrimSpace(c.OIDCScopeClaim), Scopes: scopes}
	if o.ClientSecret, err = c.readOIDCClientSecret(); err != nil {
		return nil, err
	}
	return o, nil
}

func pathErrReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// ParseOIDCRoles reads STEWARD_OIDC_ROLES: comma-separated value=role
// pairs, the value being a role claim value or "*" (everyone). A value
// may itself contain "=": the pair splits at the last one.
func ParseOIDCRoles(s string) (map[string]steward.Role, error) {
	out := map[string]steward.Role{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		i := strings.LastIndexByte(part, '=')
		if i <= 0 {
			return nil, steward.Errorf(steward.CodeInvalid, "STEWARD_OIDC_ROLES: %q is not value=role, e.g. steward-owners=owner", part)
		}
		value := strings.TrimSpace(part[:i])
		role, err := steward.ParseRole(part[i+1:])
		if err != nil {
			return nil, steward.Errorf(steward.CodeInvalid, "STEWARD_OIDC_ROLES: %s", steward.ErrorMessage(err))
		}
		if _, dup := out[value]; dup {
			return nil, steward.Errorf(steward.CodeInvalid, "STEWARD_OIDC_ROLES maps %q twice", value)
		}
		out[value] = role
	}
	if len(out) == 0 {
		return nil, steward.Errorf(steward.CodeInvalid, "STEWARD_OIDC_ROLES is required with STEWARD_OIDC_ISSUER: map role claim values to roles, e.g. steward-owners=owner,engineering=contributor,*=reader")
	}
	return out, nil
}

func parseOIDCScopes(s string) ([]string, error) {
	scopes := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
	if !slices.Contains(scopes, "openid") {
		return nil, steward.Errorf(steward.CodeInvalid, "STEWARD_OIDC_SCOPES %q must include openid", s)
	}
	return scopes, nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
