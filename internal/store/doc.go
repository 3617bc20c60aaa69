// Package store keeps Steward's state in a SQL database through database/sql:
// resources, recommendations, assessments and their status history,
// assignments and their history, uploaded imports, ITSM integrations, the
// tickets linked to assignments, and the audit log of integration and ticket
// actions.
//
// # Backends
//
// Today the only backend is SQLite through the pure-Go modernc.org/sqlite
// driver (driver name "sqlite"). The package is written so a PostgreSQL
// backend (pgx stdlib) can be added next to it: every query goes through
// [DB.bind] (which rewrites ? placeholders to $n for PostgreSQL), times go
// through timeArg/scanTime, SQL sticks to what both engines accept (ON
// CONFLICT upserts, RETURNING, CASE, COALESCE; no SQLite-only functions), and
// each backend has its own migrations directory (migrations/<dialect>/).
// Where text ordering matters PostgreSQL would need COLLATE "C" to match
// SQLite's bytewise BINARY collation; those places are marked in comments.
//
// # Connections
//
// One SQLite file is opened through two pools: a writer with a single
// connection (SQLite has one writer anyway, and riversqlite advises it to avoid
// SQLITE_BUSY) that every write transaction and River use, and a read-only
// reader pool. In WAL mode readers never wait for the writer.
//
// Code running inside [DB.WithTx] must not use [DB.Writer] or start another
// write transaction: the writer has one connection, so that would deadlock.
// That includes the DB methods that write in their own short transaction:
// [DB.MarkTicketAttempt], [DB.RecordTicketCreated], [DB.RecordTicketFailure],
// [DB.UpdateTicketRemote] and [DB.RotateSecrets].
//
// # Secrets
//
// Integration credentials are sealed with the secret.Box given to
// [DB.SetSecretBox], with the context "integration:<id>:<field>" so a
// ciphertext copied to another row or column does not open. Only
// [DB.FindIntegrationSecrets] returns them; integrations themselves carry
// HasPassword/HasClientSecret, and audit details name changed credentials,
// never their values. Without a box, or with the wrong one, reading or
// writing a credential fails with CodeUnavailable.
//
// # Errors
//
// User-facing errors are *steward.Error: CodeNotFound for missing rows (never
// nil, nil), CodeInvalid for bad input and cursors, CodeConflict for state
// conflicts and constraint violations, CodeUnavailable from [DB.Ready] and
// for a missing or wrong secret key.
package store
