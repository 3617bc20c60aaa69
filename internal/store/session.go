package store

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardhq/steward"
)

// Session is a signed-in web UI session. TokenID is set when it was signed
// in with an API token; then the token's current name, role and scope
// apply, not the copies here.
type Session struct {
	ID        int64
	TokenID   int64
	Name      string
	Role      steward.Role
	Scope     steward.Scope
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession stores a session under the hash of its secret and removes
// expired ones, so the table does not grow with every sign-in.
func (db *DB) CreateSession(ctx context.Context, s *Session, secretHash []byte) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		now := db.now()
		if _, err := tx.tx.ExecContext(ctx, db.bind(`DELETE FROM web_session WHERE expires_at <= ?`), db.timeArg(now)); err != nil {
			return fmt.Errorf("create session: sweep: %w", err)
		}
		var tokenID any
		if s.TokenID != 0 {
			tokenID = s.TokenID
		}
		s.CreatedAt = now
		s.ExpiresAt = storedTime(s.ExpiresAt)
		err := tx.tx.QueryRowContext(ctx, db.bind(`INSERT INTO web_session (secret_hash, token_id, name, role, scope, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			secretHash, tokenID, s.Name, string(s.Role), string(s.Scope), db.timeArg(now), db.timeArg(s.ExpiresAt)).Scan(&s.ID)
		if err != nil {
			return fmt.Errorf("create session: %w", mapError(err))
		}
		return nil
	})
}

// FindSessionByHash returns the session whose secret hashes to hash.
// Errors: CodeNotFound (also for an expired session).
func (db *DB) FindSessionByHash(ctx context.Context, hash []byte) (*Session, error) {
	var (
		s                Session
		tokenID          *int64
		created, expires dbTime
	)
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT id, token_id, name, role, scope, created_at, expires_at
		FROM web_session WHERE secret_hash = ?`), hash).Scan(&s.ID, &tokenID, &s.Name, &s.Role, &s.Scope, &created, &expires)
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "no such session")
	}
	if err != nil {
		return nil, fmt.Errorf("find session: %w", err)
	}
	if tokenID != nil {
		s.TokenID = *tokenID
	}
	s.CreatedAt, s.ExpiresAt = created.T, expires.T
	if !db.now().Before(s.ExpiresAt) {
		return nil, steward.Errorf(steward.CodeNotFound, "session expired")
	}
	return &s, nil
}

// DeleteSession ends a session (sign-out). Deleting one that is gone is
// not an error.
func (db *DB) DeleteSession(ctx context.Context, id int64) error {
	return db.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, db.bind(`DELETE FROM web_session WHERE id = ?`), id); err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
		return nil
	})
}
