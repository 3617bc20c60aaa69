package ticketsync

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/store"
)

// The webhook drain (docs/sync.md, "How changes arrive"): a webhook
// records the announced record in sync_pending (QueueRefresh, group-
// committed with other deliveries) and answers; the drainer reads the
// pending records of each integration back in sys_idIN batches of
// SyncBatch per table and applies each batch in one transaction, which
// also deletes the pending rows the read covered.
const (
	// drainTick is how often the drainer looks for pending records
	// without being woken: rows written by another process, left by a
	// crash, or whose backoff ended.
	drainTick = 500 * time.Millisecond
	// drainParallel bounds the batch reads of one integration in flight
	// (each integration's rate limiter paces them anyway).
	drainParallel = 4
	// drainClaim is how long a PostgreSQL drainer holds the rows it took;
	// a process that dies mid-drain leaves them to others after this.
	drainClaim = 30 * time.Second
	// Backoff of a record whose read failed: doubling from the first,
	// up to the last.
	drainBackoffFirst = time.Second
	drainBackoffMax   = 5 * time.Minute
	// webhookBatch bounds the webhook inserts group-committed together.
	webhookBatch = 500
	// drainErrPrefix starts the sync status error a failed drain read
	// records (and a later successful one clears).
	drainErrPrefix = "refresh: "
)

// drainer is the in-process state of the webhook drain.
type drainer struct {
	wake chan struct{} // a webhook's insert committed

	batcherOnce sync.Once
	batcher     *store.Batcher

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	active  map[int64]bool      // an integration's drain is running
	again   map[int64]bool      // woken while running: look once more
	backoff map[int64]time.Time // a read failed: not before then
	failed  map[int64]bool      // the last read failed (an error recorded)
	gauged  map[int64]bool      // integrations with a pending gauge set
}

func newDrainer() *drainer {
	return &drainer{wake: make(chan struct{}, 1), active: map[int64]bool{}, again: map[int64]bool{},
		backoff: map[int64]time.Time{}, failed: map[int64]bool{}, gauged: map[int64]bool{}}
}

// QueueRefresh records durably that a webhook announced a change of a
// record (a delete is never skipped as already applied) and wakes the
// drainer once it is committed. Concurrent calls share transactions (group
// commit), so a burst of deliveries is a few writes, not one each.
func (s *Service) QueueRefresh(ctx context.Context, integrationID int64, table, sysID string, modCount int, deleted bool) error {
	d := s.drain
	d.batcherOnce.Do(func() { d.batcher = s.db.NewBatcher(webhookBatch) })
	if d.batcher == nil { // stopped before any delivery
		return steward.WrapError(steward.CodeUnavailable, store.ErrBatcherClosed, "Steward is stopping")
	}
	p := store.PendingRefresh{IntegrationID: integrationID, Table: table, SysID: sysID, ModCount: modCount, Deleted: deleted}
	err := d.batcher.Do(ctx, func(tx *store.Tx) error { return tx.QueuePendingRefresh(ctx, p) })
	if errors.Is(err, store.ErrBatcherClosed) {
		return steward.WrapError(steward.CodeUnavailable, err, "Steward is stopping")
	}
	if err != nil {
		return err
	}
	select {
	case d.wake <- struct{}{}:
	default: // already woken
	}
	return nil
}

// StartDrainer starts draining pending webhook refreshes until
// StopDrainer. Rows pending from before (a crash, another process) are
// drained too.
func (s *Service) StartDrainer() {
	d := s.drain
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.started, d.cancel = true, cancel
	d.wg.Add(1)
	go s.drainLoop(ctx)
}

// StopDrainer stops the drainer and waits for it; reads in flight are
// cancelled and their records stay pending (drained after the next start,
// or by another process). It then refuses further QueueRefresh calls.
// Call it before the database closes.
func (s *Service) StopDrainer() {
	d := s.drain
	d.mu.Lock()
	cancel := d.cancel
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	d.wg.Wait()
	d.batcherOnce.Do(func() {}) // no batcher from now on unless there was one
	if d.batcher != nil {
		d.batcher.Close()
	}
}

// drainLoop starts an integration's drain whenever it has due records:
// when woken by a webhook and every drainTick.
func (s *Service) drainLoop(ctx context.Context) {
	d := s.drain
	defer d.wg.Done()
	tick := time.NewTicker(drainTick)
	defer tick.Stop()
	for {
		s.dispatchDrains(ctx)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-tick.C:
		}
	}
}

// dispatchDrains counts the pending records and starts a drain for each
// integration with due ones, or asks its running drain to look again.
func (s *Service) dispatchDrains(ctx context.Context) {
	d := s.drain
	counts, err := s.db.PendingCounts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.WarnContext(ctx, "count pending refreshes", "err", err)
		}
		return
	}
	now := time.Now()
	seen := map[int64]bool{}
	for _, c := range counts {
		seen[c.IntegrationID] = true
		s.sync.metrics.pending.WithLabelValues(s.integrationName(ctx, c.IntegrationID)).Set(float64(c.Pending))
		if c.Due == 0 {
			continue
		}
		d.mu.Lock()
		switch {
		case now.Before(d.backoff[c.IntegrationID]):
		case d.active[c.IntegrationID]:
			d.again[c.IntegrationID] = true
		default:
			d.active[c.IntegrationID] = true
			d.wg.Add(1)
			go s.drainWorker(ctx, c.IntegrationID)
		}
		d.mu.Unlock()
	}
	d.mu.Lock()
	for id := range d.gauged {
		if !seen[id] {
			s.sync.metrics.pending.WithLabelValues(s.integrationName(ctx, id)).Set(0)
		}
	}
	d.gauged = seen
	d.mu.Unlock()
}

// drainWorker drains one integration until nothing is due, then once more
// if it was woken meanwhile.
func (s *Service) drainWorker(ctx context.Context, integrationID int64) {
	d := s.drain
	defer d.wg.Done()
	for {
		s.drainIntegration(ctx, integrationID)
		d.mu.Lock()
		if d.again[integrationID] && ctx.Err() == nil && !time.Now().Before(d.backoff[integrationID]) {
			d.again[integrationID] = false
			d.mu.Unlock()
			continue
		}
		delete(d.active, integrationID)
		delete(d.again, integrationID)
		d.mu.Unlock()
		return
	}
}

// drainIntegration takes the integration's due records, oldest first, up
// to drainParallel batches at a time, and drains them batch by batch until
// none is due or a read fails (the integration then backs off).
func (s *Service) drainIntegration(ctx context.Context, integrationID int64) {
	p, in, err := s.Provider(ctx, integrationID)
	switch {
	case err == nil && in.State == steward.IntegrationActive:
	case err == nil || steward.ErrorCode(err) == steward.CodeNotFound:
		// Being deleted (or gone): nothing of it is applied any more.
		if err := s.db.DeletePendingRefreshes(ctx, integrationID); err != nil && ctx.Err() == nil {
			s.logger.WarnContext(ctx, "drop pending refreshes", "integration_id", integrationID, "err", err)
		}
		return
	default:
		if ctx.Err() == nil {
			s.logger.WarnContext(ctx, "drain webhook refreshes", "integration_id", integrationID, "err", err)
			s.backOff(integrationID, drainBackoffFirst)
		}
		return
	}
	s.rememberName(in)
	size := s.syncBatch()
	for ctx.Err() == nil {
		rows, err := s.db.TakePendingRefreshes(ctx, in.ID, size*drainParallel, drainClaim)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.WarnContext(ctx, "take pending refreshes", "integration", in.Name, "err", err)
			}
			return
		}
		if len(rows) == 0 {
			return
		}
		// Per table, in the order announced; each chunk is one read.
		byTable := map[string][]store.PendingRefresh{}
		var tables []string
		for _, r := range rows {
			if _, ok := byTable[r.Table]; !ok {
				tables = append(tables, r.Table)
			}
			byTable[r.Table] = append(byTable[r.Table], r)
		}
		var batches [][]store.PendingRefresh
		for _, t := range tables {
			batches = slices.AppendSeq(batches, slices.Chunk(byTable[t], size))
		}
		var (
			mu      sync.Mutex
			readErr error
		)
		var g errgroup.Group
		g.SetLimit(drainParallel)
		for _, b := range batches {
			g.Go(func() error {
				if err := s.drainBatch(ctx, p, in, b); err != nil {
					mu.Lock()
					readErr = err
					mu.Unlock()
				}
				return nil
			})
		}
		_ = g.Wait()
		if readErr != nil {
			return // backing off: the failed rows wait, the others are retried at the next tick
		}
	}
}

// drainBatch reads one table's batch of pending records with one request
// and applies what it read in one transaction that also deletes the
// pending rows it covered: a row stays when a newer version was announced
// after it was taken. A failed read (or apply) leaves its rows pending,
// backing off; the error is recorded in the sync status and returned.
func (s *Service) drainBatch(ctx context.Context, p itsm.Provider, in *steward.Integration, rows []store.PendingRefresh) error {
	table := rows[0].Table
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.SysID
	}
	stored, err := s.db.FindTicketsBySysIDs(ctx, in.ID, ids)
	if err != nil {
		return s.drainFailed(ctx, in, rows, "", err)
	}
	// done: the pending rows to delete, with the version that covers each.
	done := map[string]int{}
	var toRead []store.PendingRefresh
	for _, r := range rows {
		t, ok := stored[r.SysID]
		switch {
		case !ok || t.Table != table:
			// Not a linked record (or not yet: its create job records
			// what it finds).
			done[r.SysID] = r.ModCount
		case !r.Deleted && t.ModCount >= r.ModCount:
			// Applied already (a poll or an own write was first): no read.
			done[r.SysID] = r.ModCount
			s.sync.metrics.applied.WithLabelValues(ViaWebhook, "stale").Inc()
		default:
			toRead = append(toRead, r)
		}
	}
	var items []*batchItem
	var failed []store.PendingRefresh
	var lastErr error
	if len(toRead) > 0 {
		s.sync.metrics.batch.Observe(float64(len(toRead)))
		views, gone, unread, err := s.readBatch(ctx, p, table, toRead)
		if err != nil {
			return s.drainFailed(ctx, in, rows, "", err)
		}
		failed, lastErr = unread.rows, unread.err
		for _, v := range views {
			items = append(items, &batchItem{view: v, stored: stored[v.SysID]})
		}
		for _, id := range gone {
			items = append(items, &batchItem{gone: true, stored: stored[id]})
		}
	}
	byID := map[string]store.PendingRefresh{}
	for _, r := range rows {
		byID[r.SysID] = r
	}
	err = s.applyBatch(ctx, in, items, ViaWebhook, func(tx *store.Tx) error {
		for _, it := range items {
			if it.err != nil {
				continue
			}
			id := it.stored.SysID
			through := byID[id].ModCount
			switch {
			case it.gone:
				through = int(^uint(0) >> 1) // the record is gone: nothing newer can come
			case it.view.ModCount > through:
				through = it.view.ModCount
			}
			done[id] = through
		}
		for id, through := range done {
			if err := tx.DeletePendingRefresh(ctx, in.ID, table, id, through); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.drainFailed(ctx, in, rows, "", err)
	}
	for _, it := range items {
		if it.err != nil && steward.ErrorCode(it.err) != steward.CodeNotFound {
			failed, lastErr = append(failed, byID[it.stored.SysID]), it.err
		}
	}
	if len(failed) > 0 {
		return s.drainFailed(ctx, in, failed, "apply", lastErr)
	}
	s.drainSucceeded(ctx, in.ID)
	return nil
}

// unreadRows are records of a batch whose single confirming read failed.
type unreadRows struct {
	rows []store.PendingRefresh
	err  error
}

// readBatch reads rows' records: one sys_idIN request (a single read for
// one record: the naive path reads exactly as RefreshTicket does). A
// record a batch read did not return is confirmed with a single read, as
// the reconcile does: only "not found" counts as deleted. views are the
// records read, gone the sys_ids ServiceNow no longer has.
func (s *Service) readBatch(ctx context.Context, p itsm.Provider, table string, rows []store.PendingRefresh) (views []*itsm.Ticket, gone []string, unread unreadRows, err error) {
	if len(rows) == 1 {
		v, err := p.Ticket(ctx, itsm.Ref{Table: table, SysID: rows[0].SysID})
		switch {
		case itsm.IsKind(err, itsm.KindNotFound):
			return nil, []string{rows[0].SysID}, unread, nil
		case err != nil:
			return nil, nil, unread, err
		}
		return []*itsm.Ticket{v}, nil, unread, nil
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.SysID
	}
	recs, err := p.Tickets(ctx, table, ids)
	if err != nil {
		return nil, nil, unread, err
	}
	found := make(map[string]bool, len(recs))
	for _, r := range recs {
		if !found[r.SysID] && slices.Contains(ids, r.SysID) {
			found[r.SysID] = true
			views = append(views, r)
		}
	}
	for _, r := range rows {
		if found[r.SysID] {
			continue
		}
		v, err := p.Ticket(ctx, itsm.Ref{Table: table, SysID: r.SysID})
		switch {
		case itsm.IsKind(err, itsm.KindNotFound):
			gone = append(gone, r.SysID)
		case err != nil:
			unread.rows, unread.err = append(unread.rows, r), err
		default:
			views = append(views, v)
		}
	}
	return views, gone, unread, nil
}

// drainFailed puts rows back with a backoff, counts the failure (op
// "refresh" for reads, as the ticket_refresh job did) and records it in the
// sync status. It returns err.
func (s *Service) drainFailed(ctx context.Context, in *steward.Integration, rows []store.PendingRefresh, op string, err error) error {
	if ctx.Err() != nil {
		// Stopping: the rows stay pending (on PostgreSQL until the claim
		// lapses) and are drained after the next start.
		return err
	}
	if op == "" {
		op = "refresh"
	}
	s.sync.metrics.errors.WithLabelValues(in.Name, op).Inc()
	attempts := 0
	for _, r := range rows {
		attempts = max(attempts, r.Attempts)
	}
	delay := drainBackoffFirst << min(attempts, 16)
	if ierr, ok := errors.AsType[*itsm.Error](err); ok && ierr.RetryAfter > delay {
		delay = ierr.RetryAfter
	}
	delay = min(delay, drainBackoffMax)
	s.logger.WarnContext(ctx, "webhook refresh failed; retrying", "integration", in.Name, "records", len(rows), "retry_in", delay, "err", err)
	bctx := context.WithoutCancel(ctx)
	if derr := s.db.DeferPendingRefreshes(bctx, rows, delay); derr != nil {
		s.logger.WarnContext(ctx, "defer pending refreshes", "integration", in.Name, "err", derr)
	}
	if op == "refresh" {
		// The instance failed: hold the integration's other records
		// back too. One record that cannot be applied holds back only
		// itself.
		s.backOff(in.ID, delay)
	}
	d := s.drain
	d.mu.Lock()
	d.failed[in.ID] = true
	d.mu.Unlock()
	if rerr := s.db.RecordSyncError(bctx, in.ID, drainErrPrefix, drainErrPrefix+steward.ErrorMessage(err)); rerr != nil {
		s.logger.WarnContext(ctx, "record sync error", "integration", in.Name, "err", rerr)
	}
	return err
}

// drainSucceeded clears the error a failed drain recorded, once.
func (s *Service) drainSucceeded(ctx context.Context, integrationID int64) {
	d := s.drain
	d.mu.Lock()
	was := d.failed[integrationID]
	delete(d.failed, integrationID)
	d.mu.Unlock()
	if !was {
		return
	}
	if err := s.db.RecordSyncError(ctx, integrationID, drainErrPrefix, ""); err != nil {
		s.logger.WarnContext(ctx, "clear sync error", "integration_id", integrationID, "err", err)
	}
}

// backOff keeps this process from draining an integration for delay.
func (s *Service) backOff(integrationID int64, delay time.Duration) {
	d := s.drain
	d.mu.Lock()
	d.backoff[integrationID] = time.Now().Add(delay)
	d.mu.Unlock()
}
