package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
)

// IntegrationSecrets are an integration's credentials. A zero String means
// the credential is not set.
type IntegrationSecrets struct {
	Password      secret.String
	ClientSecret  secret.String
	WebhookSecret secret.String
}

// AuditSecretsRotated is the audit action of RotateSecrets.
const AuditSecretsRotated = "secrets.rotated"

// secretField is one sealed column of integration.
type secretField struct {
	column string // also the name in audit "fields" and in the seal context
	get    func(*IntegrationSecrets) *secret.String
}

var secretFields = []secretField{
	{"password", func(s *IntegrationSecrets) *secret.String { return &s.Password }},
	{"client_secret", func(s *IntegrationSecrets) *secret.String { return &s.ClientSecret }},
	{"webhook_secret", func(s *IntegrationSecrets) *secret.String { return &s.WebhookSecret }},
}

// SetSecretBox gives the store the Box that seals integration credentials
// at rest. Without one, writing or reading a credential fails with
// CodeUnavailable. Safe to call at any time.
func (db *DB) SetSecretBox(box *secret.Box) { db.box.Store(box) }

// HasSecretBox reports whether a secret box is set.
func (db *DB) HasSecretBox() bool { return db.box.Load() != nil }

func errNoSecretKey() error {
	return steward.Errorf(steward.CodeUnavailable, "no secret key configured")
}

// sealContext binds a sealed value to its row and column, so a ciphertext
// copied to another integration or field does not open there.
func sealContext(integrationID int64, field string) []byte {
	return []byte("integration:" + strconv.FormatInt(integrationID, 10) + ":" + field)
}

// seal returns the stored form of s: nil (NULL) for the empty secret.
func seal(box *secret.Box, integrationID int64, field string, s secret.String) ([]byte, error) {
	if s.IsZero() {
		return nil, nil
	}
	if box == nil {
		return nil, errNoSecretKey()
	}
	b, err := box.Seal(s, sealContext(integrationID, field))
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", field, err)
	}
	return b, nil
}

func openSealed(box *secret.Box, integrationID int64, field string, sealed []byte) (secret.String, error) {
	if len(sealed) == 0 {
		return secret.String{}, nil
	}
	if box == nil {
		return secret.String{}, errNoSecretKey()
	}
	s, err := box.Open(sealed, sealContext(integrationID, field))
	if err != nil {
		return secret.String{}, steward.WrapError(steward.CodeUnavailable, err,
			"cannot decrypt the %s of integration %d: the secret key is not the one it was stored with, or the value is corrupted", field, integrationID)
	}
	return s, nil
}

// FindIntegrationSecrets returns an integration's decrypted credentials.
// Errors: CodeNotFound; CodeUnavailable when a credential is stored but no
// secret key is configured, or it does not open with the key (wrong key).
// An integration without credentials reads as zero secrets even without a
// key.
func (db *DB) FindIntegrationSecrets(ctx context.Context, id int64) (IntegrationSecrets, error) {
	box := db.box.Load()
	var sealed [3][]byte
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT password, client_secret, webhook_secret FROM integration WHERE id = ?`), id).
		Scan(&sealed[0], &sealed[1], &sealed[2])
	if isNoRows(err) {
		return IntegrationSecrets{}, steward.Errorf(steward.CodeNotFound, "integration %d not found", id)
	} else if err != nil {
		return IntegrationSecrets{}, fmt.Errorf("find secrets of integration %d: %w", id, err)
	}
	var out IntegrationSecrets
	for i, f := range secretFields {
		s, err := openSealed(box, id, f.column, sealed[i])
		if err != nil {
			return IntegrationSecrets{}, err
		}
		*f.get(&out) = s
	}
	return out, nil
}

// RotateSecrets re-seals every stored credential from old to new in one
// transaction and returns how many values it re-sealed. If any value does
// not open with old, nothing changes and the error (CodeUnavailable) names
// the integration and field. When the store's current box (SetSecretBox) is
// old, it is switched to new once the transaction commits.
func (db *DB) RotateSecrets(ctx context.Context, old, new *secret.Box) (int, error) {
	if old == nil || new == nil {
		return 0, steward.Errorf(steward.CodeInvalid, "key rotation needs both the old and the new key")
	}
	n := 0
	err := db.WithTx(ctx, func(tx *Tx) error {
		n = 0
		type row struct {
			id     int64
			sealed [3][]byte
		}
		rows, err := tx.tx.QueryContext(ctx, db.bind(`SELECT id, password, client_secret, webhook_secret FROM integration ORDER BY id`))
		if err != nil {
			return err
		}
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.sealed[0], &r.sealed[1], &r.sealed[2]); err != nil {
				rows.Close()
				return err
			}
			all = append(all, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for _, r := range all {
			var resealed [3][]byte
			changed := false
			for i, f := range secretFields {
				if len(r.sealed[i]) == 0 {
					continue
				}
				s, err := openSealed(old, r.id, f.column, r.sealed[i])
				if err != nil {
					return err
				}
				if resealed[i], err = seal(new, r.id, f.column, s); err != nil {
					return err
				}
				changed = true
				n++
			}
			if !changed {
				continue
			}
			if _, err := tx.tx.ExecContext(ctx, db.bind(`UPDATE integration SET password = ?, client_secret = ?, webhook_secret = ? WHERE id = ?`),
				resealed[0], resealed[1], resealed[2], r.id); err != nil {
				return err
			}
		}
		return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: ActorSystem, Action: AuditSecretsRotated, Details: map[string]any{"values": n}})
	})
	if err != nil {
		return 0, fmt.Errorf("rotate secret key: %w", err)
	}
	db.box.CompareAndSwap(old, new)
	return n, nil
}
