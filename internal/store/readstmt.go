package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// hotReads runs the reader pool's hottest fixed-shape queries through
// prepared statements kept for the life of the DB. Ticket creation reads an
// assignment, its ticket and its integration for every ticket, and every
// webhook reads a ticket by sys_id; on SQLite parsing such a statement
// costs more than running it (a CPU profile of ticket creation had the
// SQLite parser at a third of the process). Only queries of a fixed text
// belong here: the cache is never trimmed.
type hotReads struct {
	pool *sql.DB

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func (h *hotReads) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.stmts[query]; ok {
		return s, nil
	}
	// database/sql prepares it again on each reader connection that runs
	// it, and again after a connection is replaced.
	s, err := h.pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if h.stmts == nil {
		h.stmts = make(map[string]*sql.Stmt)
	}
	h.stmts[query] = s
	return s, nil
}

func (h *hotReads) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := h.stmt(ctx, query)
	if err != nil {
		return h.pool.QueryContext(ctx, query, args...)
	}
	return s.QueryContext(ctx, args...)
}

func (h *hotReads) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := h.stmt(ctx, query)
	if err != nil {
		// The pool's own attempt carries the error in the row.
		return h.pool.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// ExecContext is never used on the reader pool (it is read-only); it is
// here so hotReads is a querier.
func (h *hotReads) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return h.pool.ExecContext(ctx, query, args...)
}

// close closes the statements; the pool is closed by DB.Close.
func (h *hotReads) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for _, s := range h.stmts {
		errs = append(errs, s.Close())
	}
	h.stmts = nil
	return errors.Join(errs...)
}
