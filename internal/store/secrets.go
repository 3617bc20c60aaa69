package store

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

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

// IntegrationCredentials are an integration's secrets together with what
// Steward records about them.
type IntegrationCredentials struct {
	IntegrationSecrets
	// Origin is the origin of the instance URL the password and client
	// secret were entered for (see Origin). They must never be sent to
	// another origin.
	Origin string
	// PreviousWebhookSecret is the webhook secret that the current one
	// replaced at WebhookSecretReplacedAt (zero when none): it keeps
	// verifying deliveries for a grace window, so deliveries do not fail
	// while the secret is being changed on the instance.
	PreviousWebhookSecret   secret.String
	WebhookSecretReplacedAt time.Time
}

// Origin returns the origin of an instance URL as scheme://host:port in
// lower case, with the scheme's default port filled in, so two spellings of
// one origin are equal. It returns "" when raw is not an absolute http or
// https URL with a host.
func Origin(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	switch {
	case scheme != "http" && scheme != "https":
		return ""
	case port == "" && scheme == "https":
		port = "443"
	case port == "":
		port = "80"
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
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

// colWebhookSecretPrevious is the sealed column of the replaced webhook
// secret; sealedColumns are all sealed columns, for key rotation.
const colWebhookSecretPrevious = "webhook_secret_previous"

var sealedColumns = []string{"password", "client_secret", "webhook_secret", colWebhookSecretPrevious}

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
	c, err := db.FindIntegrationCredentials(ctx, id)
	return c.IntegrationSecrets, err
}

// FindIntegrationCredentials is FindIntegrationSecrets plus the origin the
// credentials were entered for and the previous webhook secret. Callers
// that send credentials anywhere use it, to check the origin first.
func (db *DB) FindIntegrationCredentials(ctx context.Context, id int64) (IntegrationCredentials, error) {
	box := db.box.Load()
	var sealed [3][]byte
	var previous []byte
	var replaced dbTime
	var out IntegrationCredentials
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT password, client_secret, webhook_secret, credential_origin,
		webhook_secret_previous, webhook_secret_replaced_at FROM integration WHERE id = ?`), id).
		Scan(&sealed[0], &sealed[1], &sealed[2], &out.Origin, &previous, &replaced)
	if isNoRows(err) {
		return IntegrationCredentials{}, steward.Errorf(steward.CodeNotFound, "integration %d not found", id)
	} else if err != nil {
		return IntegrationCredentials{}, fmt.Errorf("find secrets of integration %d: %w", id, err)
	}
	for i, f := range secretFields {
		s, err := openSealed(box, id, f.column, sealed[i])
		if err != nil {
			return IntegrationCredentials{}, err
		}
		*f.get(&out.IntegrationSecrets) = s
	}
	if out.PreviousWebhookSecret, err = openSealed(box, id, colWebhookSecretPrevious, previous); err != nil {
		return IntegrationCredentials{}, err
	}
	if replaced.Valid {
		out.WebhookSecretReplacedAt = replaced.T
	}
	return out, nil
}

// replaceWebhookSecret keeps the webhook secret that next replaces as the
// previous one, with the time, so it verifies deliveries for a grace
// window. Setting the same secret again keeps the previous one as it is;
// clearing the secret clears the previous one too, since turning
// verification off must not leave an old secret working.
func (tx *Tx) replaceWebhookSecret(ctx context.Context, id int64, next secret.String) error {
	if next.IsZero() {
		_, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE integration SET webhook_secret_previous = NULL, webhook_secret_replaced_at = NULL WHERE id = ?`), id)
		return err
	}
	var sealed []byte
	if err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT webhook_secret FROM integration WHERE id = ?`), id).Scan(&sealed); err != nil {
		return err
	}
	box := tx.db.box.Load()
	cur, err := openSealed(box, id, "webhook_secret", sealed)
	if err != nil {
		return err
	}
	if cur.IsZero() || subtle.ConstantTimeCompare([]byte(cur.Reveal()), []byte(next.Reveal())) == 1 {
		return nil
	}
	prev, err := seal(box, id, colWebhookSecretPrevious, cur)
	if err != nil {
		return err
	}
	_, err = tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE integration SET webhook_secret_previous = ?, webhook_secret_replaced_at = ? WHERE id = ?`),
		prev, tx.db.timeArg(tx.db.now()), id)
	return err
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
			sealed [][]byte
		}
		// Locked (PostgreSQL): a credential changed meanwhile must not be
		// overwritten by the re-sealed old one.
		rows, err := tx.tx.QueryContext(ctx, db.bind(`SELECT id, `+strings.Join(sealedColumns, ", ")+` FROM integration ORDER BY id`+db.forUpdate()))
		if err != nil {
			return err
		}
		var all []row
		for rows.Next() {
			r := row{sealed: make([][]byte, len(sealedColumns))}
			dest := []any{&r.id}
			for i := range r.sealed {
				dest = append(dest, &r.sealed[i])
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return err
			}
			all = append(all, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		sets := make([]string, len(sealedColumns))
		for i, c := range sealedColumns {
			sets[i] = c + " = ?"
		}
		// Column names come from the fixed list, never from input.
		update := db.bind(`UPDATE integration SET ` + strings.Join(sets, ", ") + ` WHERE id = ?`)
		for _, r := range all {
			args := make([]any, 0, len(sealedColumns)+1)
			changed := false
			for i, column := range sealedColumns {
				if len(r.sealed[i]) == 0 {
					args = append(args, nil)
					continue
				}
				s, err := openSealed(old, r.id, column, r.sealed[i])
				if err != nil {
					return err
				}
				resealed, err := seal(new, r.id, column, s)
				if err != nil {
					return err
				}
				args = append(args, resealed)
				changed = true
				n++
			}
			if !changed {
				continue
			}
			if _, err := tx.tx.ExecContext(ctx, update, append(args, r.id)...); err != nil {
				return err
			}
		}
		m, err := tx.rotateSourceSecrets(ctx, old, new)
		if err != nil {
			return err
		}
		n += m
		return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: ActorSystem, Action: AuditSecretsRotated, Details: map[string]any{"values": n}})
	})
	if err != nil {
		return 0, fmt.Errorf("rotate secret key: %w", err)
	}
	db.box.CompareAndSwap(old, new)
	return n, nil
}
