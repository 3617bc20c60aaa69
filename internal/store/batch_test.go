package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestBatcher: concurrent writes are committed together; a write that fails
// is undone alone and its caller gets its error; the others are kept; a
// write whose context ended before its batch is not run.
func TestBatcher(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		b := db.NewBatcher(64)
		defer b.Close()
		insert := db.Bind(`INSERT INTO meta (key, value) VALUES (?, ?)`)
		refused := errors.New("refused on purpose")

		const n = 200
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = b.Do(ctx, func(tx *store.Tx) error {
					if _, err := tx.SQL().ExecContext(ctx, insert, fmt.Sprintf("batch-%03d", i), "v"); err != nil {
						return err
					}
					if i%10 == 7 {
						return refused // after its write: the savepoint must undo it
					}
					return nil
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if i%10 == 7 {
				assert.ErrorIs(t, err, refused, "write %d", i)
			} else {
				assert.NoError(t, err, "write %d", i)
			}
		}
		var kept int
		require.NoError(t, db.Writer().QueryRowContext(ctx, `SELECT count(*) FROM meta WHERE key LIKE 'batch-%'`).Scan(&kept))
		assert.Equal(t, n-n/10, kept, "every write but the refused ones is kept")

		// A failing statement (a duplicate key) inside a batch: on
		// PostgreSQL it aborts the transaction unless its savepoint is
		// rolled back.
		err := b.Do(ctx, func(tx *store.Tx) error {
			_, err := tx.SQL().ExecContext(ctx, insert, "batch-000", "again")
			return err
		})
		require.Error(t, err)
		require.NoError(t, b.Do(ctx, func(tx *store.Tx) error {
			_, err := tx.SQL().ExecContext(ctx, insert, "batch-after", "v")
			return err
		}))

		done, cancel := context.WithCancel(ctx)
		cancel()
		ran := false
		err = b.Do(done, func(*store.Tx) error { ran = true; return nil })
		assert.ErrorIs(t, err, context.Canceled)
		assert.False(t, ran)

		b.Close()
		assert.ErrorIs(t, b.Do(ctx, func(*store.Tx) error { return nil }), store.ErrBatcherClosed)
	})
}
