package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestTicketWritesSharingATransaction: the ticket_create worker's writes
// of many tickets share one transaction, each in a savepoint (a Batcher's
// batch, written out here so every write lands in the same one). A write
// that fails is undone alone; a first send that takes a place of its
// rule's daily cap is refused (ErrAttemptTakesCapPlace) without counting
// anything and, on PostgreSQL, without keeping the ticket's row locked, so
// its own transaction can run while the shared one is still open.
func TestTicketWritesSharingATransaction(t *testing.T) {
	t.Parallel()
	storetest.ForEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		b := newCapBundle(t, db, 1)
		capped, first, second := b.ticket(t, b.rule.ID), b.ticket(t, 0), b.ticket(t, 0)

		var during store.TicketAttempt
		require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
			var at store.TicketAttempt
			require.NoError(t, tx.Savepoint(ctx, func() (err error) {
				at, err = tx.MarkTicketAttempt(ctx, first)
				return err
			}))
			require.Equal(t, store.TicketAttempt{Attempts: 1}, at)
			err := tx.Savepoint(ctx, func() error {
				_, err := tx.MarkTicketAttempt(ctx, capped)
				return err
			})
			require.ErrorIs(t, err, store.ErrAttemptTakesCapPlace)
			storetest.RequireCode(t, tx.Savepoint(ctx, func() error {
				_, err := tx.MarkTicketAttempt(ctx, 1<<40)
				return err
			}), steward.CodeNotFound)
			storetest.RequireCode(t, tx.Savepoint(ctx, func() error {
				_, err := tx.RecordGroupTicketCreated(ctx, second, &steward.Ticket{Number: "INC1"}, nil)
				return err
			}), steward.CodeInvalid)
			require.NoError(t, tx.Savepoint(ctx, func() (err error) {
				_, err = tx.RecordGroupTicketCreated(ctx, first, &steward.Ticket{SysID: "s1", Number: "INC1"}, nil)
				return err
			}))
			if db.Postgres() {
				// SQLite has one writer, which this transaction holds.
				wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				during, err = db.MarkTicketAttempt(wctx, capped)
				require.NoError(t, err, "the refused attempt left the ticket's row locked")
			}
			return nil
		}))

		require.Equal(t, steward.TicketCreated, b.status(t, first).Status)
		require.Equal(t, 1, b.status(t, first).Attempts)
		require.Equal(t, steward.TicketPending, b.status(t, second).Status, "the refused result is undone alone")
		if !db.Postgres() {
			require.Zero(t, b.status(t, capped).Attempts, "the refused attempt counted nothing")
			during = b.attempt(t, capped)
		}
		require.Equal(t, store.TicketAttempt{Attempts: 1}, during, "the cap's one place is still free")
		require.Equal(t, store.TicketAttempt{DeferredUntil: b.day(1), NewlyDeferred: true}, b.attempt(t, b.ticket(t, b.rule.ID)),
			"the cap's place was taken once")
	})
}
