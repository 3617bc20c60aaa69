package auth

import "github.com/stewardhq/steward"

// Access says who may call an API route or open a UI page: anyone
// (Public), or an identity whose role is at least a given one (every role
// above it may too). Both the API's route table and the UI's page table
// have it as a positional field, so an entry that does not say who may
// use it does not compile; the zero Access is invalid and refused.
type Access struct {
	role   steward.Role
	public bool
}

// The accesses a route or page may declare.
var (
	// Public needs no sign-in: health, the OpenAPI document, the sign-in
	// pages, and the webhook (which checks its HMAC signature instead).
	Public        = Access{public: true}
	Reader        = Access{role: steward.RoleReader}
	Contributor   = Access{role: steward.RoleContributor}
	SecurityAdmin = Access{role: steward.RoleSecurityAdmin}
	Owner         = Access{role: steward.RoleOwner}
)

// IsPublic reports whether anyone may use it, signed in or not.
func (a Access) IsPublic() bool { return a.public }

// Role is the least role needed ("" for public).
func (a Access) Role() steward.Role { return a.role }

// Valid reports whether the access says who may use it.
func (a Access) Valid() bool { return a.public || a.role.Valid() }

// Allows reports whether id may use it.
func (a Access) Allows(id Identity) bool { return a.public || id.Role.Allows(a.role) }

// String is "public" or the role's name, as the route × role tests write it.
func (a Access) String() string {
	if a.public {
		return "public"
	}
	return string(a.role)
}
