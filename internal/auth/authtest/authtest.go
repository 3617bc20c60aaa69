// Package authtest issues API tokens for tests that drive a real server.
package authtest

import (
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/store"
)

// Token issues a token named name with role on db and returns its secret.
// It fails the test on error.
func Token(tb testing.TB, db *store.DB, name string, role steward.Role) string {
	tb.Helper()
	return ScopedToken(tb, db, name, role, "")
}

// ScopedToken is Token limited to scope.
func ScopedToken(tb testing.TB, db *store.DB, name string, role steward.Role, scope steward.Scope) string {
	tb.Helper()
	secret, _, err := auth.Issue(tb.Context(), db, auth.TokenRequest{Name: name, Role: role, Scope: scope}, "test")
	if err != nil {
		tb.Fatalf("issue token %s: %v", name, err)
	}
	return secret
}
