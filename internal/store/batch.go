package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Batcher group-commits small writes. Many goroutines that each need a short
// write (a webhook's pending refresh, a ticket's attempt or result) hand it
// to Do; one loop runs whatever is waiting, up to max writes, in one
// transaction, each in its own savepoint so a failing write is undone alone,
// and answers every caller after the commit. On SQLite's one writer this
// turns N transactions (N commits, N turns at the writer) into one without
// adding latency: writes accumulate only while the previous batch commits.
//
// A caller must not call Do while it holds a transaction of its own (on
// SQLite that transaction holds the one writer the batch needs).
type Batcher struct {
	db   *DB
	max  int
	reqs chan *batchReq

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

type batchReq struct {
	ctx context.Context
	fn  func(*Tx) error
	err chan error
}

// ErrBatcherClosed is what Do answers after Close.
var ErrBatcherClosed = errors.New("store: batcher closed")

// NewBatcher starts a batcher of at most max writes per transaction
// (max < 1 means 1). Close stops it.
func (db *DB) NewBatcher(max int) *Batcher {
	if max < 1 {
		max = 1
	}
	b := &Batcher{db: db, max: max, reqs: make(chan *batchReq), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

// Do runs fn in the next batch's transaction and returns fn's error, or the
// batch's when the transaction could not commit (then nothing fn wrote is
// kept). A write whose ctx ends before its batch starts is not run and
// answers ctx.Err(); once its batch has started Do waits for the outcome,
// so a caller never returns while its write may still commit.
func (b *Batcher) Do(ctx context.Context, fn func(*Tx) error) error {
	req := &batchReq{ctx: ctx, fn: fn, err: make(chan error, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return ErrBatcherClosed
	}
	return <-req.err
}

// Close stops the loop after the batch in progress; later calls to Do
// answer ErrBatcherClosed.
func (b *Batcher) Close() {
	b.closeOnce.Do(func() { close(b.stop) })
	<-b.done
}

func (b *Batcher) loop() {
	defer close(b.done)
	batch := make([]*batchReq, 0, b.max)
	for {
		batch = batch[:0]
		select {
		case req := <-b.reqs:
			batch = append(batch, req)
		case <-b.stop:
			return
		}
	fill:
		for len(batch) < b.max {
			select {
			case req := <-b.reqs:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		b.run(batch)
	}
}

// run commits one batch. The transaction runs on a context of its own: one
// caller giving up must not roll back the others' writes.
func (b *Batcher) run(batch []*batchReq) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	err := b.db.WithTx(ctx, func(tx *Tx) error {
		for i, req := range batch {
			if err := req.ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			if len(batch) == 1 {
				errs[i] = req.fn(tx)
				return errs[i]
			}
			errs[i] = tx.Savepoint(ctx, func() error { return req.fn(tx) })
			if errs[i] != nil && isTxBroken(errs[i]) {
				return errs[i]
			}
		}
		return nil
	})
	for i, req := range batch {
		switch {
		case err != nil && errs[i] == nil:
			req.err <- fmt.Errorf("batched write: %w", err)
		default:
			req.err <- errs[i]
		}
	}
}

// isTxBroken reports a savepoint failure that leaves the transaction
// unusable (the savepoint itself could not be rolled back).
func isTxBroken(err error) bool {
	var sp *savepointError
	return errors.As(err, &sp)
}
