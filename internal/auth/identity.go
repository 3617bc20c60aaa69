package auth

import (
	"context"

	"github.com/stewardhq/steward"
)

// Identity is the authenticated caller of one request.
type Identity struct {
	TokenID int64
	// Name is the token's name; history and the audit log record it as
	// the actor.
	Name string
	Role steward.Role
	// Scope, when not empty, limits what the caller sees and changes to
	// resources inside it.
	Scope steward.Scope
}

// Scoped reports whether the identity is limited to a scope.
func (id Identity) Scoped() bool { return id.Scope != "" && id.Scope != "/" }

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity WithIdentity stored, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
