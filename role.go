package steward

import (
	"strings"
	"time"
)

// Role is what an authenticated identity may do. Each role may do
// everything the roles before it may:
//
//   - reader sees everything except secrets;
//   - contributor also assigns, opens and retries tickets, and imports;
//   - security-admin also manages integrations, sync settings, rules and
//     sources;
//   - owner also manages API tokens.
type Role string

// The roles, least to most privileged.
const (
	RoleReader        Role = "reader"
	RoleContributor   Role = "contributor"
	RoleSecurityAdmin Role = "security-admin"
	RoleOwner         Role = "owner"
)

// Roles lists every role, least privileged first.
var Roles = []Role{RoleReader, RoleContributor, RoleSecurityAdmin, RoleOwner}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether an identity with role r may do what needs role
// need. An unknown role allows nothing and is allowed by nothing.
func (r Role) Allows(need Role) bool {
	return r.rank() > 0 && need.rank() > 0 && r.rank() >= need.rank()
}

// ParseRole reads a role name as users type it.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r == "securityadmin" || r == "security_admin" {
		r = RoleSecurityAdmin
	}
	if !r.Valid() {
		return "", Errorf(CodeInvalid, "role %q is not one of reader, contributor, security-admin, owner", s)
	}
	return r, nil
}

// Token is an API token as Steward shows it. The secret itself is shown
// once, when the token is created, and stored only as a hash.
type Token struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Scope, when set, limits the token to resources inside it: it sees
	// and changes nothing else.
	Scope Scope `json:"scope,omitempty"`
	// Prefix is the start of the secret ("stw_Ab3x"), so a user can tell
	// which token a leaked or configured value is without the secret.
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Active reports whether the token may be used at now.
func (t *Token) Active(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// ValidateTokenName checks a token's name. Names are what history and the
// audit log record as the actor, so they are restricted to characters that
// can never spell an actor Steward records for itself: those contain a
// colon ("integration:prod", "cli:alice").
func ValidateTokenName(name string) error {
	if name == "" || len(name) > 100 {
		return Errorf(CodeInvalid, "token name is required (at most 100 characters)")
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			i > 0 && strings.ContainsRune("._@+-", r)
		if !ok {
			return Errorf(CodeInvalid, "token name %q may use letters, digits and . _ @ + - (not first), e.g. alice@example.com or ci-import", name)
		}
	}
	if reservedActors[strings.ToLower(name)] {
		return Errorf(CodeInvalid, "token name %q is reserved for Steward's own changes", name)
	}
	return nil
}

// reservedActors are actor names Steward or earlier versions record for
// their own changes.
var reservedActors = map[string]bool{"system": true, "servicenow": true, "api": true, "sample": true, "steward": true}

// IntegrationActor is how changes that sync applies from an integration are
// recorded in history and the audit log. The colon makes it impossible for
// any token (and so any API caller) to produce.
func IntegrationActor(name string) string { return "integration:" + name }

// TokenCreate is the body of POST /api/v1/tokens.
type TokenCreate struct {
	Name  string `json:"name"`
	Role  Role   `json:"role"`
	Scope Scope  `json:"scope,omitempty"`
	// Expires is the token's lifetime: "90d", "12h", or "never"/"" for
	// none.
	Expires string `json:"expires,omitempty"`
}

// IssuedToken is a token just created, with its secret: the only time the
// secret is shown.
type IssuedToken struct {
	Secret string `json:"token"`
	*Token
}
