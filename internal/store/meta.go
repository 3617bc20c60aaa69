package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/stewardhq/steward"
)

const metaInstallationID = "installation_id"

// InstallationID returns this database's installation ID: 16 random hex
// characters created once, when the database is first opened, and the same
// forever after (it is part of every ticket's correlation ID). It is cached
// in memory, so it is cheap and safe to call anywhere, even inside WithTx.
func (db *DB) InstallationID(ctx context.Context) (string, error) {
	if id := db.installation.Load(); id != nil {
		return *id, nil
	}
	var id string
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT value FROM meta WHERE key = ?`), metaInstallationID).Scan(&id)
	if isNoRows(err) {
		// Open creates it; only a database changed behind our back lacks it.
		return "", steward.Errorf(steward.CodeUnavailable, "database has no installation ID; restart Steward to create one")
	} else if err != nil {
		return "", fmt.Errorf("read installation ID: %w", err)
	}
	db.installation.Store(&id)
	return id, nil
}

// ensureInstallationID creates the installation ID if the database has none
// and caches it. Racing processes agree: the first insert wins and everyone
// reads it back.
func (db *DB) ensureInstallationID(ctx context.Context) (string, error) {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("create installation ID: %w", err)
	}
	if _, err := db.write.ExecContext(ctx, db.bind(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`),
		metaInstallationID, hex.EncodeToString(raw[:])); err != nil {
		return "", fmt.Errorf("create installation ID: %w", mapError(err))
	}
	var id string
	if err := db.write.QueryRowContext(ctx, db.bind(`SELECT value FROM meta WHERE key = ?`), metaInstallationID).Scan(&id); err != nil {
		return "", fmt.Errorf("read installation ID: %w", err)
	}
	db.installation.Store(&id)
	return id, nil
}
