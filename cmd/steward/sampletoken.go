package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/store"
)

// ensureOwnerTokenFile gives a database that has no token yet an owner
// token, written to path (mode 0600, like the key file), so that client
// verbs on this machine work without a flag (see tokenSource). The log says
// where the file is, never the token.
func ensureOwnerTokenFile(ctx context.Context, db *store.DB, path string, logger *slog.Logger) error {
	existing, err := db.FindTokens(ctx)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return nil
	}
	secret, tok, err := auth.Issue(ctx, db, auth.TokenRequest{Name: "local-owner", Role: steward.RoleOwner}, "system:sample")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	// The file may have existed with looser permissions.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write token file: %w", err)
	}
	_, werr := f.WriteString(secret + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write token file: %w", werr)
	}
	logger.Warn("created an owner API token for this new database; client verbs on this machine use it without a flag, and the web UI's sign-in page takes it. Keep the file private, or revoke the token with 'steward tokens revoke local-owner'",
		"path", path, "token", tok.Name)
	return nil
}

// temporaryToken issues a token named name that expires in ten minutes and
// returns a func that revokes it.
func temporaryToken(ctx context.Context, db *store.DB, name string, role steward.Role) (string, func(), error) {
	// A crash may have left one behind; its name must be free again.
	_ = db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.RevokeToken(ctx, 0, name, "system")
		return err
	})
	exp := time.Now().Add(10 * time.Minute)
	secret, tok, err := auth.Issue(ctx, db, auth.TokenRequest{Name: name, Role: role, ExpiresAt: &exp}, "system")
	if err != nil {
		return "", nil, fmt.Errorf("create a token for %s: %w", name, err)
	}
	return secret, func() {
		_ = db.WithTx(context.WithoutCancel(ctx), func(tx *store.Tx) error {
			_, err := tx.RevokeToken(context.WithoutCancel(ctx), tok.ID, "", "system")
			return err
		})
	}, nil
}
