package store

import (
	"context"
	"fmt"
	"time"

	"github.com/stewardhq/steward"
)

// Audit actions for API tokens.
const (
	AuditTokenCreated = "token.created"
	AuditTokenRevoked = "token.revoked"
)

// NewToken is what CreateToken stores: the token's settings and the hash of
// its secret (internal/auth makes both).
type NewToken struct {
	Name       string
	Role       steward.Role
	Scope      steward.Scope
	SecretHash []byte
	Prefix     string
	ExpiresAt  *time.Time
}

const tokenColumns = `id, name, role, scope, prefix, created_at, created_by, expires_at, last_used_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }) (*steward.Token, error) {
	var (
		t                          steward.Token
		created                    dbTime
		expires, lastUsed, revoked dbTime
	)
	if err := row.Scan(&t.ID, &t.Name, &t.Role, &t.Scope, &t.Prefix, &created, &t.CreatedBy, &expires, &lastUsed, &revoked); err != nil {
		return nil, err
	}
	t.CreatedAt = created.T
	t.ExpiresAt, t.LastUsedAt, t.RevokedAt = expires.ptr(), lastUsed.ptr(), revoked.ptr()
	return &t, nil
}

// CreateToken stores a new token and audits it as actor. Errors:
// CodeInvalid for a bad name, role or scope; CodeConflict when an active
// token already has the name.
func (tx *Tx) CreateToken(ctx context.Context, nt NewToken, actor string) (*steward.Token, error) {
	if err := steward.ValidateTokenName(nt.Name); err != nil {
		return nil, err
	}
	if !nt.Role.Valid() {
		return nil, steward.Errorf(steward.CodeInvalid, "role %q is not one of reader, contributor, security-admin, owner", nt.Role)
	}
	if err := nt.Scope.Validate(); err != nil {
		return nil, err
	}
	if nt.Scope != "" {
		nt.Scope = nt.Scope.Normalize()
		if nt.Scope == "/" {
			nt.Scope = ""
		}
	}
	if len(nt.SecretHash) == 0 || nt.Prefix == "" {
		return nil, fmt.Errorf("create token: no secret hash")
	}
	now := tx.db.now()
	if nt.ExpiresAt != nil {
		exp := storedTime(*nt.ExpiresAt)
		if !exp.After(now) {
			return nil, steward.Errorf(steward.CodeInvalid, "expiry %s is in the past", exp.Format(time.RFC3339))
		}
		nt.ExpiresAt = &exp
	}
	row := tx.tx.QueryRowContext(ctx, tx.db.bind(`INSERT INTO api_token (name, role, scope, secret_hash, prefix, created_at, created_by, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+tokenColumns),
		nt.Name, string(nt.Role), string(nt.Scope), nt.SecretHash, nt.Prefix, tx.db.timeArg(now), actor, tx.db.nullTimeArg(nt.ExpiresAt))
	t, err := scanToken(row)
	if err != nil {
		if steward.ErrorCode(mapError(err)) == steward.CodeConflict {
			return nil, steward.Errorf(steward.CodeConflict, "a token named %q already exists; revoke it first or pick another name", nt.Name)
		}
		return nil, fmt.Errorf("create token: %w", mapError(err))
	}
	details := map[string]any{"name": t.Name, "role": string(t.Role)}
	if t.Scope != "" {
		details["scope"] = string(t.Scope)
	}
	if t.ExpiresAt != nil {
		details["expires_at"] = t.ExpiresAt.Format(time.RFC3339)
	}
	if err := tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: actor, Action: AuditTokenCreated, Details: details}); err != nil {
		return nil, err
	}
	return t, nil
}

// FindTokenByHash returns the token whose secret hashes to hash, active or
// not (the caller decides). Errors: CodeNotFound.
func (db *DB) FindTokenByHash(ctx context.Context, hash []byte) (*steward.Token, error) {
	t, err := scanToken(db.read.QueryRowContext(ctx, db.bind(`SELECT `+tokenColumns+` FROM api_token WHERE secret_hash = ?`), hash))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "no such token")
	}
	if err != nil {
		return nil, fmt.Errorf("find token: %w", err)
	}
	return t, nil
}

// FindTokens lists every token, revoked ones included, oldest first.
func (db *DB) FindTokens(ctx context.Context) ([]*steward.Token, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+tokenColumns+` FROM api_token ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("find tokens: %w", err)
	}
	defer rows.Close()
	var out []*steward.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("find tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find tokens: %w", err)
	}
	return out, nil
}

// CountActiveTokens counts tokens that are neither revoked nor expired.
func (db *DB) CountActiveTokens(ctx context.Context) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT count(*) FROM api_token WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`),
		db.timeArg(db.now())).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}

// RevokeToken revokes the token with id, or the active token named name
// when id is 0, and audits it as actor. Revoking a revoked token changes
// nothing. Errors: CodeNotFound.
func (tx *Tx) RevokeToken(ctx context.Context, id int64, name, actor string) (*steward.Token, error) {
	var (
		t   *steward.Token
		err error
	)
	if id > 0 {
		t, err = scanToken(tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT `+tokenColumns+` FROM api_token WHERE id = ?`+tx.db.forUpdate()), id))
	} else {
		t, err = scanToken(tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT `+tokenColumns+` FROM api_token WHERE name = ? AND revoked_at IS NULL`+tx.db.forUpdate()), name))
	}
	if isNoRows(err) {
		if id > 0 {
			return nil, steward.Errorf(steward.CodeNotFound, "token %d not found", id)
		}
		return nil, steward.Errorf(steward.CodeNotFound, "no active token is named %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("revoke token: %w", err)
	}
	if t.RevokedAt != nil {
		return t, nil
	}
	now := tx.db.now()
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE api_token SET revoked_at = ? WHERE id = ?`), tx.db.timeArg(now), t.ID); err != nil {
		return nil, fmt.Errorf("revoke token: %w", mapError(err))
	}
	t.RevokedAt = &now
	if err := tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: actor, Action: AuditTokenRevoked,
		Details: map[string]any{"name": t.Name, "id": t.ID}}); err != nil {
		return nil, err
	}
	return t, nil
}

// TouchToken records that the token was used at at.
func (tx *Tx) TouchToken(ctx context.Context, id int64, at time.Time) error {
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE api_token SET last_used_at = ? WHERE id = ?`), tx.db.timeArg(storedTime(at)), id); err != nil {
		return fmt.Errorf("record token use: %w", mapError(err))
	}
	return nil
}

// FindTokenByID returns one token. Errors: CodeNotFound.
func (db *DB) FindTokenByID(ctx context.Context, id int64) (*steward.Token, error) {
	t, err := scanToken(db.read.QueryRowContext(ctx, db.bind(`SELECT `+tokenColumns+` FROM api_token WHERE id = ?`), id))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "token %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("find token: %w", err)
	}
	return t, nil
}
