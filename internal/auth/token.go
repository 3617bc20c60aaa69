// Package auth owns Steward's API identities: it issues API tokens (random,
// shown once, stored as a hash), turns a request's bearer token into an
// Identity, and limits and logs failed attempts without flooding. What each
// identity may do is declared per route by internal/api; this package only
// says who the caller is.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
)

// tokenPrefix marks Steward tokens, so secret scanners and people can tell
// them apart from other credentials.
const tokenPrefix = "stw_"

// TokenRequest asks for a new token.
type TokenRequest struct {
	Name  string
	Role  steward.Role
	Scope steward.Scope
	// ExpiresAt, when set, is when the token stops working.
	ExpiresAt *time.Time
}

// Issue creates a token and returns its secret, which exists nowhere else
// afterwards: only its hash is stored. actor is recorded in the audit log.
func Issue(ctx context.Context, db *store.DB, req TokenRequest, actor string) (string, *steward.Token, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("generate token: %w", err)
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	var tok *steward.Token
	err := db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		tok, err = tx.CreateToken(ctx, store.NewToken{
			Name: req.Name, Role: req.Role, Scope: req.Scope, ExpiresAt: req.ExpiresAt,
			SecretHash: Hash(secret), Prefix: secret[:len(tokenPrefix)+4],
		}, actor)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return secret, tok, nil
}

// Hash is how a token's secret is stored and looked up.
func Hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// ParseExpiry reads a token lifetime as users type it: "90d", "12h",
// "30m", or "never" / "" for no expiry. It returns the expiry time from now.
func ParseExpiry(s string, now time.Time) (*time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "never" {
		return nil, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 3650 {
			return nil, steward.Errorf(steward.CodeInvalid, "expiry %q: want a number of days from 1 to 3650 such as 90d, a duration such as 12h, or never", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < time.Minute {
			return nil, steward.Errorf(steward.CodeInvalid, "expiry %q: want a number of days such as 90d, a duration of at least 1m such as 12h, or never", s)
		}
	}
	t := now.Add(d).UTC()
	return &t, nil
}
