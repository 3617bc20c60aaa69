package store

import (
	"context"
	"fmt"
)

// ImportProgress is how far the running attempt of an import is, as its
// worker last recorded it.
type ImportProgress struct {
	Phase        string // "validating" or "applying"
	Records      int
	RecordsTotal int
	BytesRead    int64
	BytesTotal   int64
}

const importProgressUpsert = `INSERT INTO import_progress (import_id, phase, records, records_total, bytes_read, bytes_total, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (import_id) DO UPDATE SET phase = excluded.phase, records = excluded.records, records_total = excluded.records_total,
		bytes_read = excluded.bytes_read, bytes_total = excluded.bytes_total, updated_at = excluded.updated_at`

// SetImportProgress records an import's progress in tx: the chunk's own
// transaction, so the counts commit with the records they count and cost
// no transaction of their own.
func (tx *Tx) SetImportProgress(ctx context.Context, importID int64, p ImportProgress) error {
	st, err := tx.stmt(ctx, importProgressUpsert)
	if err != nil {
		return fmt.Errorf("record progress of import %d: %w", importID, mapError(err))
	}
	if _, err := st.ExecContext(ctx, importProgressArgs(tx.db, importID, p)...); err != nil {
		return fmt.Errorf("record progress of import %d: %w", importID, mapError(err))
	}
	return nil
}

// SetImportProgress records an import's progress outside any chunk (while
// the file is validated, before anything is written).
func (db *DB) SetImportProgress(ctx context.Context, importID int64, p ImportProgress) error {
	if _, err := db.write.ExecContext(ctx, db.bind(importProgressUpsert), importProgressArgs(db, importID, p)...); err != nil {
		return fmt.Errorf("record progress of import %d: %w", importID, mapError(err))
	}
	return nil
}

func importProgressArgs(db *DB, importID int64, p ImportProgress) []any {
	return []any{importID, p.Phase, p.Records, p.RecordsTotal, p.BytesRead, p.BytesTotal, db.timeArg(db.now())}
}

// ClearImportProgress removes an import's progress (its attempt ended).
func (db *DB) ClearImportProgress(ctx context.Context, importID int64) error {
	if _, err := db.write.ExecContext(ctx, db.bind(`DELETE FROM import_progress WHERE import_id = ?`), importID); err != nil {
		return fmt.Errorf("clear progress of import %d: %w", importID, mapError(err))
	}
	return nil
}

// FindImportProgress returns an import's recorded progress; ok is false
// when none is recorded (no attempt is running).
func (db *DB) FindImportProgress(ctx context.Context, importID int64) (p ImportProgress, ok bool, err error) {
	err = db.read.QueryRowContext(ctx, db.bind(`SELECT phase, records, records_total, bytes_read, bytes_total FROM import_progress WHERE import_id = ?`),
		importID).Scan(&p.Phase, &p.Records, &p.RecordsTotal, &p.BytesRead, &p.BytesTotal)
	if isNoRows(err) {
		return ImportProgress{}, false, nil
	}
	if err != nil {
		return ImportProgress{}, false, fmt.Errorf("find progress of import %d: %w", importID, mapError(err))
	}
	return p, true, nil
}
