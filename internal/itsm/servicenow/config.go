package servicenow

import (
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/netpolicy"
	"github.com/stewardhq/steward/internal/secret"
)

// AuthMode selects how the client authenticates (reference §1).
type AuthMode string

// The authentication modes.
const (
	// AuthOAuthPassword uses the OAuth password grant at /oauth_token.do
	// with the client ID/secret and user name/password, then refresh
	// tokens. The default when ClientID is set.
	AuthOAuthPassword AuthMode = "oauth-password"
	// AuthBasic sends the user name and password on every request. The
	// default when ClientID is empty.
	AuthBasic AuthMode = "basic"
	// AuthClientCredentials uses the OAuth client_credentials grant; the
	// token acts as the OAuth application user. Disabled on instances by
	// default (reference §1.2).
	AuthClientCredentials AuthMode = "client-credentials"
)

// Defaults of Config. A zero field means "use the default".
const (
	DefaultRequestsPerSecond = 10
	DefaultTimeout           = 60 * time.Second // the Table API transaction quota (reference §7.3)
	DefaultMaxRetries        = 4
	DefaultPageSize          = 500
	MaxPageSize              = 10000 // the Table API's own default limit (reference §2.3)
	DefaultMinRetryDelay     = time.Second
	DefaultMaxRetryDelay     = 60 * time.Second // reference §7.2: start 1–2 s, cap ~60 s
	DefaultUserCacheTTL      = 10 * time.Minute
	DefaultMaxResponseBytes  = 32 << 20
)

// DefaultTables are the tables Validate checks when Config.Tables is empty.
var DefaultTables = []string{"incident", "problem", "change_request"}

// Config configures a Client. Only InstanceURL and the credentials of the
// chosen AuthMode are required.
type Config struct {
	// Name names the integration in logs and metrics (bounded: one per
	// configured integration).
	Name string

	// InstanceURL is the instance's base URL, e.g.
	// https://dev12345.service-now.com. It must be https, except that
	// http is allowed for loopback hosts when AllowInsecureLoopback is set
	// (the emulator in tests and demos).
	InstanceURL           string
	AllowInsecureLoopback bool

	Username     string
	Password     secret.String
	ClientID     string
	ClientSecret secret.String
	// AuthMode defaults to AuthOAuthPassword when ClientID is set and to
	// AuthBasic otherwise.
	AuthMode AuthMode

	// RequestsPerSecond and Burst bound this integration's request rate
	// (token bucket; default 10/s, burst = max(1, RequestsPerSecond)). A
	// negative RequestsPerSecond disables the limit.
	RequestsPerSecond float64
	Burst             int

	// Timeout bounds one HTTP attempt including reading the answer
	// (default 60 s).
	Timeout time.Duration
	// MaxRetries is how many times a failed retryable request is sent
	// again (default 4; negative: never).
	MaxRetries int
	// MinRetryDelay and MaxRetryDelay bound the exponential backoff
	// (defaults 1 s and 60 s). A Retry-After longer than MaxRetryDelay is
	// not waited for in the call: the error carries it for the job queue.
	MinRetryDelay time.Duration
	MaxRetryDelay time.Duration

	// PageSize is the sysparm_limit of list reads (default 500, at most
	// 10000).
	PageSize int
	// Tables are the tables Validate checks read access to (default
	// incident, problem, change_request).
	Tables []string
	// TableBase maps tables extending incident, problem or change_request
	// (e.g. "u_security_incident": "incident") to the base table whose
	// state model and fields they follow.
	TableBase map[string]string
	// UserCacheTTL is how long user lookups are cached (default 10 min;
	// negative: no cache).
	UserCacheTTL time.Duration
	// MaxResponseBytes caps one answer's body (default 32 MiB).
	MaxResponseBytes int64

	// HTTPClient, when set, supplies the transport (e.g. TLS roots for the
	// emulator). The client uses a copy without its cookie jar (reference
	// §0, session serialization) and never follows redirects.
	HTTPClient *http.Client
	// Policy, when set, decides which addresses the client may connect
	// to, checked on each connection's resolved address (see netpolicy).
	// The client then uses a copy of HTTPClient's transport (or of
	// http.DefaultTransport) that dials through the policy and uses no
	// proxy; HTTPClient's transport must then be an *http.Transport.
	// Steward's provider factory always sets it; nil connects anywhere.
	Policy *netpolicy.Policy
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

var tableName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,79}$`)

func invalidConfig(format string, args ...any) error {
	return steward.Errorf(steward.CodeInvalid, "servicenow: "+format, args...)
}

// Validate checks the configuration and names the first bad field. It
// does not contact the instance; Client.Validate does.
func (c Config) Validate() error {
	if _, err := c.instanceURL(); err != nil {
		return err
	}
	switch c.authMode() {
	case AuthBasic:
		if c.Username == "" {
			return invalidConfig("Username is required for basic authentication")
		}
		if c.Password.IsZero() {
			return invalidConfig("Password is required for basic authentication")
		}
	case AuthOAuthPassword:
		if c.ClientID == "" {
			return invalidConfig("ClientID is required for OAuth password authentication")
		}
		if c.ClientSecret.IsZero() {
			return invalidConfig("ClientSecret is required for OAuth password authentication")
		}
		if c.Username == "" {
			return invalidConfig("Username is required for OAuth password authentication")
		}
		if c.Password.IsZero() {
			return invalidConfig("Password is required for OAuth password authentication")
		}
	case AuthClientCredentials:
		if c.ClientID == "" {
			return invalidConfig("ClientID is required for OAuth client-credentials authentication")
		}
		if c.ClientSecret.IsZero() {
			return invalidConfig("ClientSecret is required for OAuth client-credentials authentication")
		}
	default:
		return invalidConfig("AuthMode %q is not one of oauth-password, basic, client-credentials", c.AuthMode)
	}
	if c.RequestsPerSecond > 0 && c.Burst < 0 {
		return invalidConfig("Burst %d must not be negative", c.Burst)
	}
	if c.Timeout < 0 {
		return invalidConfig("Timeout %s must not be negative", c.Timeout)
	}
	if c.PageSize < 0 || c.PageSize > MaxPageSize {
		return invalidConfig("PageSize %d must be between 1 and %d", c.PageSize, MaxPageSize)
	}
	if c.MinRetryDelay < 0 || c.MaxRetryDelay < 0 || (c.MaxRetryDelay > 0 && c.MinRetryDelay > c.MaxRetryDelay) {
		return invalidConfig("MinRetryDelay %s and MaxRetryDelay %s must be positive with min <= max", c.MinRetryDelay, c.MaxRetryDelay)
	}
	if c.Policy != nil && c.HTTPClient != nil && c.HTTPClient.Transport != nil {
		if _, ok := c.HTTPClient.Transport.(*http.Transport); !ok {
			// Any other RoundTripper would connect without the policy.
			return invalidConfig("HTTPClient.Transport must be an *http.Transport when a Policy is set, so that the policy checks each connection")
		}
	}
	for _, t := range c.Tables {
		if !tableName.MatchString(t) {
			return invalidConfig("Tables: %q is not a table name", t)
		}
	}
	for t, b := range c.TableBase {
		if !tableName.MatchString(t) {
			return invalidConfig("TableBase: %q is not a table name", t)
		}
		if itsm.BaseTable(b) == "" {
			return invalidConfig("TableBase[%q]: %q is not incident, problem or change_request", t, b)
		}
	}
	return nil
}

func (c Config) authMode() AuthMode {
	if c.AuthMode != "" {
		return c.AuthMode
	}
	if c.ClientID != "" {
		return AuthOAuthPassword
	}
	return AuthBasic
}

// instanceURL parses and checks InstanceURL; it returns the base without
// a trailing slash.
func (c Config) instanceURL() (*url.URL, error) {
	raw := strings.TrimSpace(c.InstanceURL)
	if raw == "" {
		return nil, invalidConfig("InstanceURL is required (e.g. https://dev12345.service-now.com)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, invalidConfig("InstanceURL %q is not an absolute URL such as https://dev12345.service-now.com", itsm.RedactURL(raw))
	}
	if u.User != nil {
		return nil, invalidConfig("InstanceURL must not contain credentials; use Username and Password")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, invalidConfig("InstanceURL %q must not have a query or fragment", itsm.RedactURL(raw))
	}
	if p := strings.TrimRight(u.Path, "/"); p != "" {
		return nil, invalidConfig("InstanceURL %q must be the instance root, without a path such as %q", itsm.RedactURL(raw), p)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !c.AllowInsecureLoopback {
			return nil, invalidConfig("InstanceURL %q must use https", u.Redacted())
		}
		if !isLoopback(u.Hostname()) {
			return nil, invalidConfig("InstanceURL %q: http is allowed only for loopback hosts (the emulator); use https", u.Redacted())
		}
	default:
		return nil, invalidConfig("InstanceURL %q must use https", itsm.RedactURL(raw))
	}
	u.Path, u.RawPath = "", ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c Config) withDefaults() Config {
	if c.RequestsPerSecond == 0 {
		c.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if c.Burst <= 0 {
		c.Burst = max(1, int(c.RequestsPerSecond))
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.MinRetryDelay == 0 {
		c.MinRetryDelay = DefaultMinRetryDelay
	}
	if c.MaxRetryDelay == 0 {
		c.MaxRetryDelay = max(DefaultMaxRetryDelay, c.MinRetryDelay)
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if len(c.Tables) == 0 {
		c.Tables = DefaultTables
	}
	if c.UserCacheTTL == 0 {
		c.UserCacheTTL = DefaultUserCacheTTL
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.AuthMode = c.authMode()
	return c
}
