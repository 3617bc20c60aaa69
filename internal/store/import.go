package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stewardhq/steward"
)

// ImportState is where an uploaded file is in its processing.
type ImportState string

// Import states: queued → running → succeeded or failed.
const (
	ImportQueued    ImportState = "queued"
	ImportRunning   ImportState = "running"
	ImportSucceeded ImportState = "succeeded"
	ImportFailed    ImportState = "failed"
)

// Import is an uploaded file that a background job parses and applies.
type Import struct {
	ID       int64  `json:"id"`
	Format   string `json:"format"`
	Filename string `json:"filename"`
	// SpoolPath is where the upload waits on disk; never shown to users.
	SpoolPath  string      `json:"-"`
	Size       int64       `json:"size"`
	State      ImportState `json:"state"`
	Error      string      `json:"error,omitempty"`
	Result     ApplyResult `json:"result"`
	CreatedBy  string      `json:"created_by"`
	CreatedAt  time.Time   `json:"created_at"`
	StartedAt  *time.Time  `json:"started_at,omitempty"`
	FinishedAt *time.Time  `json:"finished_at,omitempty"`
}

const importSelect = `SELECT id, format, filename, spool_path, size, state, error, result, created_by, created_at, started_at, finished_at FROM import_file`

func scanImport(sc interface{ Scan(...any) error }) (*Import, error) {
	imp := new(Import)
	var result string
	var created, started, finished dbTime
	if err := sc.Scan(&imp.ID, &imp.Format, &imp.Filename, &imp.SpoolPath, &imp.Size, &imp.State, &imp.Error, &result,
		&imp.CreatedBy, &created, &started, &finished); err != nil {
		return nil, err
	}
	if result != "" {
		if err := json.Unmarshal([]byte(result), &imp.Result); err != nil {
			return nil, fmt.Errorf("decode result of import %d: %w", imp.ID, err)
		}
	}
	imp.CreatedAt, imp.StartedAt, imp.FinishedAt = created.T, started.ptr(), finished.ptr()
	return imp, nil
}

// CreateImport records a queued import and sets imp.ID, State (queued) and
// CreatedAt. Queue its job in the same transaction.
func (tx *Tx) CreateImport(ctx context.Context, imp *Import) error {
	now := tx.db.now()
	imp.State, imp.CreatedAt, imp.StartedAt, imp.FinishedAt, imp.Error = ImportQueued, now, nil, nil, ""
	err := tx.tx.QueryRowContext(ctx, tx.db.bind(`INSERT INTO import_file (format, filename, spool_path, size, state, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		imp.Format, imp.Filename, imp.SpoolPath, imp.Size, string(imp.State), imp.CreatedBy, tx.db.timeArg(now)).Scan(&imp.ID)
	if err != nil {
		return fmt.Errorf("create import: %w", mapError(err))
	}
	return nil
}

// UpdateImport moves an import to state: running sets StartedAt, succeeded
// and failed set FinishedAt. errMsg replaces the error text; res, if not nil,
// replaces the result. Errors: CodeNotFound; CodeInvalid for unknown states.
func (db *DB) UpdateImport(ctx context.Context, id int64, state ImportState, errMsg string, res *ApplyResult) error {
	now := db.timeArg(db.now())
	q := `UPDATE import_file SET state = ?, error = ?`
	args := []any{string(state), errMsg}
	switch state {
	case ImportQueued:
	case ImportRunning:
		q += `, started_at = ?, finished_at = NULL`
		args = append(args, now)
	case ImportSucceeded, ImportFailed:
		q += `, finished_at = ?`
		args = append(args, now)
	default:
		return steward.Errorf(steward.CodeInvalid, "unknown import state %q", state)
	}
	if res != nil {
		b, err := json.Marshal(res)
		if err != nil {
			return fmt.Errorf("update import %d: encode result: %w", id, err)
		}
		q += `, result = ?`
		args = append(args, string(b))
	}
	q += ` WHERE id = ?`
	args = append(args, id)
	var n int64
	err := db.WithTx(ctx, func(tx *Tx) error {
		r, err := tx.tx.ExecContext(ctx, db.bind(q), args...)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("update import %d: %w", id, mapError(err))
	}
	if n == 0 {
		return steward.Errorf(steward.CodeNotFound, "import %d not found", id)
	}
	return nil
}

// FindImportByID returns one import, or CodeNotFound.
func (db *DB) FindImportByID(ctx context.Context, id int64) (*Import, error) {
	imp, err := scanImport(db.read.QueryRowContext(ctx, db.bind(importSelect+` WHERE id = ?`), id))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "import %d not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("find import %d: %w", id, err)
	}
	return imp, nil
}

// FindImports lists imports newest first, one page at a time. Errors:
// CodeInvalid for a bad cursor or limit.
func (db *DB) FindImports(ctx context.Context, cursor string, limit int) ([]*Import, string, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, "", fmt.Errorf("find imports: %w", err)
	}
	after, hasAfter, err := decodeCursor[int64](cursorImport, cursor)
	if err != nil {
		return nil, "", fmt.Errorf("find imports: %w", err)
	}
	q, args := importSelect, []any{}
	if hasAfter {
		q += ` WHERE id < ?`
		args = append(args, after)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
	if err != nil {
		return nil, "", fmt.Errorf("find imports: %w", err)
	}
	defer rows.Close()
	var out []*Import
	for rows.Next() {
		imp, err := scanImport(rows)
		if err != nil {
			return nil, "", fmt.Errorf("find imports: %w", err)
		}
		out = append(out, imp)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("find imports: %w", err)
	}
	if len(out) > limit {
		out = out[:limit]
		return out, encodeCursor(cursorImport, out[limit-1].ID), nil
	}
	return out, "", nil
}
