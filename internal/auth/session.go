package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
)

// SessionTTL is how long a web UI session lasts after sign-in.
const SessionTTL = 12 * time.Hour

// SignInWithToken checks an API token typed into the sign-in form, under
// the same per-address failure limit as bearer tokens.
func (a *Authenticator) SignInWithToken(r *http.Request, secret string) (Identity, error) {
	if err := a.CheckFailureLimit(r); err != nil {
		return Identity{}, err
	}
	if secret == "" {
		return Identity{}, steward.Errorf(steward.CodeUnauthorized, "enter an API token")
	}
	id, err := a.identify(r.Context(), "Bearer "+secret)
	if err != nil {
		a.fail(r.Context(), clientAddr(r), r, err)
		return Identity{}, err
	}
	a.touch(r.Context(), id.TokenID)
	return id, nil
}

// StartSession stores a session for id and returns the secret the browser
// keeps in its cookie.
func (a *Authenticator) StartSession(ctx context.Context, id Identity) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("start session: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	s := &store.Session{TokenID: id.TokenID, Name: id.Name, Role: id.Role, Scope: id.Scope, ExpiresAt: a.now().Add(SessionTTL)}
	if err := a.db.CreateSession(ctx, s, Hash(secret)); err != nil {
		return "", err
	}
	return secret, nil
}

// Session turns a session cookie's secret into the identity it carries.
// A session signed in with a token takes the token's current name, role
// and scope, and ends when the token is revoked or expires. Errors:
// CodeUnauthorized.
func (a *Authenticator) Session(ctx context.Context, secret string) (Identity, int64, error) {
	if secret == "" || len(secret) > 100 {
		return Identity{}, 0, steward.Errorf(steward.CodeUnauthorized, "not signed in")
	}
	s, err := a.db.FindSessionByHash(ctx, Hash(secret))
	if steward.ErrorCode(err) == steward.CodeNotFound {
		return Identity{}, 0, steward.Errorf(steward.CodeUnauthorized, "your session ended; sign in again")
	}
	if err != nil {
		return Identity{}, 0, err
	}
	if s.TokenID == 0 {
		return Identity{Name: s.Name, Role: s.Role, Scope: s.Scope}, s.ID, nil
	}
	tok, err := a.db.FindTokenByID(ctx, s.TokenID)
	if err != nil {
		return Identity{}, 0, err
	}
	switch {
	case tok.RevokedAt != nil:
		return Identity{}, 0, steward.Errorf(steward.CodeUnauthorized, "the API token %q you signed in with was revoked; sign in again", tok.Name)
	case tok.ExpiresAt != nil && !a.now().Before(*tok.ExpiresAt):
		return Identity{}, 0, steward.Errorf(steward.CodeUnauthorized, "the API token %q you signed in with expired; sign in again", tok.Name)
	}
	return Identity{TokenID: tok.ID, Name: tok.Name, Role: tok.Role, Scope: tok.Scope}, s.ID, nil
}

// EndSession signs a session out.
func (a *Authenticator) EndSession(ctx context.Context, sessionID int64) error {
	return a.db.DeleteSession(ctx, sessionID)
}
