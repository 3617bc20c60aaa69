package snowemu

import (
	"time"
)

// TransitionMode says how a blocked problem or change_request state
// transition through the Table API is answered (reference §5.2, §5.3).
type TransitionMode int

const (
	// TransitionUnchanged answers 200 with the state left unchanged; the
	// other fields of the write still apply. This matches the reports the
	// reference cites and is the default.
	TransitionUnchanged TransitionMode = iota
	// TransitionForbidden answers 403 "Operation Failed" and applies nothing.
	TransitionForbidden
)

// Default values of Options. The zero value of every Options field means
// "use the default".
const (
	DefaultAdminUser            = "admin"
	DefaultAdminPassword        = "admin"
	DefaultClientID             = "steward"
	DefaultClientSecret         = "steward-secret"
	DefaultAccessTokenLifetime  = 1800 * time.Second    // §1.2
	DefaultRefreshTokenLifetime = 8640000 * time.Second // §1.2, 100 days
	// DefaultUserPassword is the password of every seeded demo user except
	// the admin.
	DefaultUserPassword = "password"
	// DefaultMaxPayload is the request-body limit of §7.3 (10 MiB).
	DefaultMaxPayload = 10485760
)

// Options configures an Emulator. The zero value is a usable configuration
// that follows the reference's defaults; every [uncertain] behaviour of the
// reference is a field here.
type Options struct {
	// InstanceURL, when set (e.g. "https://dev12345.service-now.com"), is
	// the base of every link, Location and Link header. When empty they are
	// built from the request's Host and scheme (§2.5), so clients can follow
	// them through httptest servers.
	InstanceURL string

	// AdminUser and AdminPassword are the credentials of the seeded admin
	// sys_user, also required by the /emulator/admin API. Defaults admin/admin.
	AdminUser     string
	AdminPassword string

	// ClientID and ClientSecret identify the one OAuth application
	// registered in the emulator (§1.2). Defaults steward/steward-secret.
	ClientID     string
	ClientSecret string

	// AccessTokenLifetime and RefreshTokenLifetime are the OAuth token
	// lifespans; defaults 1800 s and 8,640,000 s (§1.2).
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration

	// ClientCredentials enables the client_credentials grant, off by default
	// like glide.oauth.inbound.client.credential.grant_type.enabled (§1.2).
	ClientCredentials bool
	// OAuthAppUser is the user_name a client_credentials token acts as
	// (the "OAuth Application User"); default the admin user.
	OAuthAppUser string

	// APIKeys maps x-sn-apikey tokens to user_names (§1.1). Empty disables
	// API-key authentication.
	APIKeys map[string]string

	// InvalidQueryReturnsNoRows mirrors glide.invalid_query.returns_no_rows
	// (§3.5): false (default) ignores invalid query terms, true makes a query
	// with any invalid field name return no rows.
	InvalidQueryReturnsNoRows bool

	// CaseSensitiveMatching makes =, !=, IN, LIKE, STARTSWITH, ENDSWITH
	// compare strings case-sensitively. Default false: real instances
	// usually compare case-insensitively (§3.6, [uncertain]).
	CaseSensitiveMatching bool

	// StrictPaging omits rel="prev" on the first page. By default the
	// observed behaviour is kept: prev is sent even with a negative offset
	// (§2.5). rel="next" is omitted on the last page in both modes.
	StrictPaging bool

	// BlockedTransitions selects how illegal problem/change_request state
	// transitions are answered (§5.2, §5.3). Default TransitionUnchanged.
	BlockedTransitions TransitionMode

	// StrictOnHold rejects an incident put On Hold without hold_reason with
	// a data-policy 403 (§5.1 rule 3, [uncertain]; default accept).
	StrictOnHold bool

	// StrictClosedIncidents rejects Table API updates of a Closed incident
	// by non-admin users with the ACL 403 (§5.1 rule 5; default allow).
	StrictClosedIncidents bool

	// RateLimitRemainingHeader adds the undocumented X-RateLimit-Remaining
	// header to rate-limited responses (§7.1; default off).
	RateLimitRemainingHeader bool

	// UnknownURIStatus is the status for a URI that matches no API
	// (§2.2, [uncertain]); default 400.
	UnknownURIStatus int

	// MaxPayload is the request body limit in bytes (default 10485760, §7.3).
	MaxPayload int64

	// NoSeed skips the demo users and groups; the admin user always exists.
	NoSeed bool

	// DataFile, when set, is loaded by New (if it exists) and written by
	// Close, so an emulator's records survive restarts.
	DataFile string

	// Webhook delivery switches (§8.1). WebhookDelay postpones every
	// delivery; WebhookDuplicate is the fraction of deliveries sent twice;
	// WebhookReorder delivers each event after a random delay in
	// [0, WebhookReorderWindow) so events may arrive out of order.
	WebhookDelay         time.Duration
	WebhookDuplicate     float64
	WebhookReorder       bool
	WebhookReorderWindow time.Duration
	// WebhookTimeout bounds one delivery (default 10 s, like the
	// setHttpTimeout(10000) of the reference's example rule).
	WebhookTimeout time.Duration

	// Seed makes every random choice (fault injection, webhook duplication
	// and reordering) deterministic when non-zero.
	Seed uint64

	// Clock returns the current time; default time.Now. Tests inject a fake
	// clock to expire tokens and rate-limit windows.
	Clock func() time.Time
}

func (o Options) withDefaults() Options {
	if o.AdminUser == "" {
		o.AdminUser = DefaultAdminUser
	}
	if o.AdminPassword == "" {
		o.AdminPassword = DefaultAdminPassword
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = DefaultClientSecret
	}
	if o.AccessTokenLifetime <= 0 {
		o.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if o.RefreshTokenLifetime <= 0 {
		o.RefreshTokenLifetime = DefaultRefreshTokenLifetime
	}
	if o.OAuthAppUser == "" {
		o.OAuthAppUser = o.AdminUser
	}
	if o.UnknownURIStatus == 0 {
		o.UnknownURIStatus = 400
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if o.WebhookTimeout <= 0 {
		o.WebhookTimeout = 10 * time.Second
	}
	if o.WebhookReorderWindow <= 0 {
		o.WebhookReorderWindow = 200 * time.Millisecond
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}
