package ticketsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"golang.org/x/sync/errgroup"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
)

const (
	// PollOverlap is subtracted from the watermark of each poll: sys_updated_on
	// has one-second resolution, so records updated in the same second as
	// the newest one applied, and records whose update committed late (a
	// long transaction, clocks of several instance nodes), are read again.
	// Re-reading is harmless: ModCount makes the copy a no-op.
	PollOverlap = 60 * time.Second
	// ScheduleInterval is how often the scheduler checks which polls and
	// reconciles are due.
	ScheduleInterval = 15 * time.Second
	// reconcileBatch is the sys_ids per Tickets call (one request each):
	// the client's IN batch, keeping URLs short.
	reconcileBatch = 100
	// reconcilePage is how many linked tickets are read from the store at
	// a time.
	reconcilePage = 1000
	// reconcileParallel bounds the batch reads in flight: against a real
	// instance each is a network round trip, so a few in parallel cut a
	// reconcile of 100,000 tickets from 1,000 sequential round trips.
	reconcileParallel = 4
)

// PollReport says what one incremental poll did.
type PollReport struct {
	Tables  []string `json:"tables"`
	Seen    int      `json:"seen"`    // records returned by the ITSM
	Changed int      `json:"changed"` // applied and changed something
	Stale   int      `json:"stale"`   // older than stored (incl. echoes)
}

// ticketTables returns the tables the integration creates tickets in.
func ticketTables(in *steward.Integration) []string {
	var out []string
	for _, tt := range steward.TicketTypes {
		table := itsm.DefaultTable(tt)
		if m, ok := in.TicketTypes[tt]; ok && m.Table != "" {
			table = m.Table
		}
		if !slices.Contains(out, table) {
			out = append(out, table)
		}
	}
	return out
}

// Poll runs one incremental poll of an integration: per table holding its
// tickets, the records changed since the table's watermark minus
// PollOverlap whose correlation ID carries this installation's prefix,
// applied oldest first. The watermark moves to the newest sys_updated_on
// applied; on a failure it moves only as far as the records applied before
// it (they come oldest first), so nothing unapplied is ever skipped. A
// never-polled table starts at the integration's creation. Polls of one
// integration run one at a time, across processes on PostgreSQL
// (beginRun).
func (s *Service) Poll(ctx context.Context, integrationID int64) (PollReport, error) {
	p, in, err := s.Provider(ctx, integrationID)
	if err != nil {
		return PollReport{}, err
	}
	s.rememberName(in)
	if in.State != steward.IntegrationActive {
		return PollReport{}, nil
	}
	ctx, run, err := s.beginRun(ctx, store.SyncLeasePoll, in.ID)
	if err != nil {
		return PollReport{}, err
	}
	defer run.end()
	st, err := s.db.FindSyncState(ctx, in.ID)
	if err != nil {
		return PollReport{}, err
	}
	installation, err := s.db.InstallationID(ctx)
	if err != nil {
		return PollReport{}, err
	}
	start := time.Now().UTC()
	if err := s.db.RecordSyncStart(ctx, in.ID, "poll", start); err != nil {
		return PollReport{}, err
	}

	rep := PollReport{}
	rep.Tables, err = s.db.TicketTables(ctx, in.ID, ticketTables(in))
	if err != nil {
		return rep, err
	}
	prefix := CorrelationPrefix(installation)
	marks := map[string]time.Time{}
	var pollErr error
	size := s.syncBatch()
	for _, table := range rep.Tables {
		wm, ok := st.Watermarks[table]
		if !ok {
			wm = in.CreatedAt
		}
		s.sync.metrics.pollRequests.WithLabelValues(in.Name).Inc()
		var newest time.Time
		// Records are applied SyncBatch at a time, each batch in one
		// transaction; they come oldest first, and the watermark moves
		// only past those applied before a failure.
		var batch []*batchItem
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			defer func() { batch = batch[:0] }()
			if err := s.applyBatch(ctx, in, batch, ViaPoll, nil); err != nil {
				return err
			}
			for _, it := range batch {
				switch {
				case steward.ErrorCode(it.err) == steward.CodeNotFound:
					// Not linked (yet): a ticket whose creation is not
					// recorded yet; its create job records the state it
					// finds.
				case it.err != nil:
					return it.err
				case it.out.Stale:
					rep.Stale++
				case it.out.Changed:
					rep.Changed++
				}
				if it.view.UpdatedAt.After(newest) {
					newest = it.view.UpdatedAt
				}
			}
			run.progress(rep.Seen, 0)
			return nil
		}
		seen := map[string]bool{}
		for t, err := range p.ChangedSince(ctx, table, wm.Add(-PollOverlap), prefix) {
			if err != nil {
				pollErr = err
				break
			}
			rep.Seen++
			if seen[t.SysID] {
				// Keyset paging yielded a record twice (it changed while
				// the poll ran): a batch holds one view per record.
				if pollErr = flush(); pollErr != nil {
					break
				}
				clear(seen)
			}
			seen[t.SysID] = true
			batch = append(batch, &batchItem{view: t})
			if len(batch) >= size {
				if pollErr = flush(); pollErr != nil {
					break
				}
				clear(seen)
			}
		}
		if pollErr == nil {
			pollErr = flush()
		} else {
			// Records read before a failed page are still applied.
			if err := flush(); err != nil {
				pollErr = errors.Join(pollErr, err)
			}
		}
		if !newest.IsZero() {
			marks[table] = newest
		}
		if pollErr != nil {
			break
		}
	}
	pollErr = leaseCause(ctx, pollErr)
	res := store.PollResult{Watermarks: marks, StartedAt: start}
	if pollErr != nil {
		res.Err = "poll: " + steward.ErrorMessage(pollErr)
		s.sync.metrics.errors.WithLabelValues(in.Name, "poll").Inc()
	}
	// A cancelled poll still records what it applied.
	if err := s.db.RecordPollResult(context.WithoutCancel(ctx), in.ID, res); err != nil {
		return rep, errors.Join(pollErr, err)
	}
	if pollErr == nil {
		s.sync.metrics.lag.WithLabelValues(in.Name).Set(time.Since(start).Seconds())
		s.logger.DebugContext(ctx, "poll done", "integration", in.Name, "seen", rep.Seen, "changed", rep.Changed, "stale", rep.Stale)
	}
	return rep, pollErr
}

// Reconcile verifies every linked ticket of an integration (created, not
// known deleted, open on either side): it pages through them in the store
// by assignment ID, reads them back from the ITSM reconcileBatch sys_ids
// per request, applies every record that differs from what is stored
// (counted as repairs) and handles records the ITSM no longer has per the
// DeletedTicket policy (each confirmed by a single read first). Records
// already at the stored version only get their last-synced time moved, in
// one write per page.
func (s *Service) Reconcile(ctx context.Context, integrationID int64) (ReconcileReport, error) {
	p, in, err := s.Provider(ctx, integrationID)
	if err != nil {
		return ReconcileReport{}, err
	}
	s.rememberName(in)
	if in.State != steward.IntegrationActive {
		return ReconcileReport{}, nil
	}
	ctx, run, err := s.beginRun(ctx, store.SyncLeaseReconcile, in.ID)
	if err != nil {
		return ReconcileReport{}, err
	}
	defer run.end()
	total, err := s.db.CountLinkedTickets(ctx, in.ID)
	if err != nil {
		return ReconcileReport{}, err
	}
	if err := s.db.RecordSyncStart(ctx, in.ID, "reconcile", time.Now()); err != nil {
		return ReconcileReport{}, err
	}
	run.progress(0, total)

	var rep ReconcileReport
	repair := func(line string) {
		rep.Repaired++
		s.sync.metrics.repairs.WithLabelValues(in.Name).Inc()
		if len(rep.Repairs) < store.MaxReconcileRepairs {
			rep.Repairs = append(rep.Repairs, line)
		}
	}
	runErr := func() error {
		var after int64
		for {
			page, err := s.db.FindLinkedTickets(ctx, in.ID, after, reconcilePage)
			if err != nil || len(page) == 0 {
				return err
			}
			after = page[len(page)-1].AssignmentID
			byTable := map[string][]*steward.Ticket{}
			var tables []string
			for _, t := range page {
				if _, ok := byTable[t.Table]; !ok {
					tables = append(tables, t.Table)
				}
				byTable[t.Table] = append(byTable[t.Table], t)
			}
			// Read the page's batches concurrently (bounded: each
			// integration's rate limiter paces them anyway), then apply
			// them in order on this goroutine.
			var batches [][]*steward.Ticket
			for _, table := range tables {
				batches = slices.AppendSeq(batches, slices.Chunk(byTable[table], reconcileBatch))
			}
			results := make([][]*itsm.Ticket, len(batches))
			g, gctx := errgroup.WithContext(ctx)
			g.SetLimit(reconcileParallel)
			for i, chunk := range batches {
				g.Go(func() error {
					ids := make([]string, len(chunk))
					for j, t := range chunk {
						ids[j] = t.SysID
					}
					recs, err := p.Tickets(gctx, chunk[0].Table, ids)
					results[i] = recs
					return err
				})
			}
			if err := g.Wait(); err != nil {
				return err
			}
			var same []int64
			var diff []*batchItem
			for i, chunk := range batches {
				found := make(map[string]*itsm.Ticket, len(results[i]))
				for _, r := range results[i] {
					found[r.SysID] = r
				}
				for _, t := range chunk {
					rep.Checked++
					r, ok := found[t.SysID]
					if !ok {
						// Confirm with a single read: a batch can miss a
						// record for reasons other than deletion.
						out, err := s.refresh(ctx, t, ViaReconcile)
						if err != nil {
							return err
						}
						if out.Changed {
							rep.Missing++
							what := "flagged"
							if out.Ended {
								what = "assignment ended"
							}
							repair(fmt.Sprintf("%s deleted in ServiceNow (%s)", t.Number, what))
						}
						continue
					}
					if compareVersion(r, t) == store.RemoteSame {
						same = append(same, t.AssignmentID)
						continue
					}
					diff = append(diff, &batchItem{view: r, stored: t})
				}
			}
			// What differs is applied SyncBatch records per transaction.
			for chunk := range slices.Chunk(diff, s.syncBatch()) {
				if err := s.applyBatch(ctx, in, chunk, ViaReconcile, nil); err != nil {
					return err
				}
				for _, it := range chunk {
					if it.err != nil && steward.ErrorCode(it.err) != steward.CodeNotFound {
						return it.err
					}
					if it.err == nil && it.out.Changed {
						repair(repairLine(it.stored, it.view, it.out))
					}
				}
			}
			if err := s.db.TouchTicketsSynced(ctx, same); err != nil {
				return err
			}
			run.progress(rep.Checked, max(total, rep.Checked))
		}
	}()
	runErr = leaseCause(ctx, runErr)
	msg := ""
	if runErr != nil {
		msg = "reconcile: " + steward.ErrorMessage(runErr)
		s.sync.metrics.errors.WithLabelValues(in.Name, "reconcile").Inc()
	}
	if err := s.db.RecordReconcileResult(context.WithoutCancel(ctx), in.ID, rep, msg); err != nil {
		return rep, errors.Join(runErr, err)
	}
	if runErr == nil {
		s.logger.InfoContext(ctx, "reconcile done", "integration", in.Name, "checked", rep.Checked, "repaired", rep.Repaired, "missing", rep.Missing)
	}
	return rep, runErr
}

func repairLine(t *steward.Ticket, r *itsm.Ticket, out SyncOutcome) string {
	line := t.Number + ":"
	if t.RawState != r.RawState {
		line += fmt.Sprintf(" state %s → %s", t.StateLabel, r.StateLabel)
	}
	if out.OwnerChanged || t.AssigneeEmail != r.AssignedToEmail {
		line += fmt.Sprintf(" assignee %s → %s", orNone(t.AssigneeEmail), orNone(r.AssignedToEmail))
	}
	if t.Flag == steward.TicketFlagDeleted {
		line += " found again (deleted flag cleared)"
	}
	if out.Ended {
		line += " (assignment ended)"
	}
	return line
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// SyncNow queues an incremental poll of the integration followed by a full
// reconcile, and returns at once; SyncStatus shows the progress. Each
// request gets its own poll and reconcile, which start after it (they run
// one after another with those of other requests and of the schedule).
// Errors: CodeNotFound; CodeConflict
// when the integration is being deleted.
func (s *Service) SyncNow(ctx context.Context, integrationID int64, actor string) error {
	in, err := s.db.FindIntegrationByID(ctx, integrationID)
	if err != nil {
		return err
	}
	if in.State != steward.IntegrationActive {
		return steward.Errorf(steward.CodeConflict, "integration %q is being deleted", in.Name)
	}
	return s.db.WithTx(ctx, func(tx *store.Tx) error {
		ev := &steward.AuditEvent{Actor: actor, Action: store.AuditIntegrationSyncRequest, IntegrationID: in.ID}
		if err := tx.InsertAudit(ctx, ev); err != nil {
			return err
		}
		return s.queue.InsertTx(ctx, tx.SQL(), jobs.PollArgs{IntegrationID: in.ID, Reconcile: true, Request: ev.ID})
	})
}

// Schedule queues the polls and reconciles that are due: an integration is
// polled every Sync.PollInterval and reconciled every
// Sync.ReconcileInterval, counted from the last start (or its creation).
// It also refreshes the lag gauge. The periodic sync_schedule job calls it.
func (s *Service) Schedule(ctx context.Context) error {
	all, err := s.db.FindIntegrations(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, in := range all {
		if in.State != steward.IntegrationActive {
			continue
		}
		s.rememberName(in)
		st, err := s.db.FindSyncState(ctx, in.ID)
		if err != nil {
			return err
		}
		s.sync.metrics.lag.WithLabelValues(in.Name).Set(s.lag(in, st).Seconds())
		set := in.Sync
		if set.PollInterval == 0 || set.ReconcileInterval == 0 {
			set = steward.DefaultSyncSettings()
		}
		due := func(last *time.Time, every steward.Duration) bool {
			from := in.CreatedAt
			if last != nil {
				from = *last
			}
			return !now.Before(from.Add(time.Duration(every)))
		}
		if due(st.LastPollAt, set.PollInterval) {
			if err := s.queue.Insert(ctx, jobs.PollArgs{IntegrationID: in.ID}); err != nil {
				return err
			}
		}
		if due(st.LastReconcileAt, set.ReconcileInterval) {
			if err := s.queue.Insert(ctx, jobs.ReconcileArgs{IntegrationID: in.ID}); err != nil {
				return err
			}
		}
	}
	return nil
}

// PeriodicJobs are the River periodic jobs of sync: the scheduler tick.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(ScheduleInterval),
		func() (river.JobArgs, *river.InsertOpts) { return jobs.SyncScheduleArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})}
}
