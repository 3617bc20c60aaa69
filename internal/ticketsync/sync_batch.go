package ticketsync

import (
	"context"
	"fmt"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/store"
)

// batchItem is one remote view (or one record found deleted) of a batch
// applied in one transaction by applyBatch, with what applying it did.
type batchItem struct {
	// view is the remote record to apply; nil when gone.
	view *itsm.Ticket
	// gone: the record is deleted in the ITSM; the DeletedTicket policy
	// applies to stored.
	gone bool
	// stored is the stored ticket; applyBatch looks it up by the view's
	// sys_id when nil.
	stored *steward.Ticket

	out SyncOutcome
	// err is this item's failure: CodeNotFound when the record is not
	// linked; an apply error (only this item's writes were undone) or the
	// transaction's.
	err error
}

// syncBatch is the most records one Table API read and one apply
// transaction take (Config.SyncBatch).
func (s *Service) syncBatch() int {
	if s.cfg.SyncBatch > 0 {
		return s.cfg.SyncBatch
	}
	return DefaultSyncBatch
}

// applyBatch applies a batch of remote views of one integration's tickets
// with the rules of ApplyRemote, in one transaction instead of one per
// view. Like ApplyRemote it decides stale and same-version views on the
// reader first (no write for echoes); each newer view goes through
// applyRemoteTx (and each gone record through recordDeletedTx) in a
// savepoint of its own, so one view that cannot be applied is undone alone
// and reported in its item. then (if not nil) runs last in the same
// transaction, which is then opened even when no view needs a write.
// Items must name distinct records. The error is a failure to look the
// tickets up, before anything was written; each item carries its own.
func (s *Service) applyBatch(ctx context.Context, in *steward.Integration, items []*batchItem, via string, then func(*store.Tx) error) error {
	var need []string
	for _, it := range items {
		if it.stored == nil && it.view != nil {
			need = append(need, it.view.SysID)
		}
	}
	if len(need) > 0 {
		found, err := s.db.FindTicketsBySysIDs(ctx, in.ID, need)
		if err != nil {
			return err
		}
		for _, it := range items {
			if it.stored == nil && it.view != nil {
				if it.stored = found[it.view.SysID]; it.stored == nil {
					it.err = steward.Errorf(steward.CodeNotFound, "integration %d has no ticket with sys_id %q", in.ID, it.view.SysID)
				}
			}
		}
	}
	var writes []*batchItem
	for _, it := range items {
		switch {
		case it.err != nil:
		case it.gone:
			writes = append(writes, it)
		case it.view == nil || it.view.SysID == "":
			it.err = steward.Errorf(steward.CodeInvalid, "remote ticket without sys_id")
		default:
			switch compareVersion(it.view, it.stored) {
			case store.RemoteStale:
				it.out.Stale = true
			case store.RemoteNewer:
				writes = append(writes, it)
			}
		}
	}
	if len(writes) > 0 || then != nil {
		// One write alone needs no savepoint: its failure is the
		// transaction's (the naive path of SyncBatch 1 is exactly
		// ApplyRemote's transaction).
		alone := len(writes) == 1 && then == nil
		err := s.db.WithTx(ctx, func(tx *store.Tx) error {
			for _, it := range writes {
				it.out, it.err = SyncOutcome{}, nil
				apply := func() error {
					if it.gone {
						return s.recordDeletedTx(ctx, tx, in, it.stored.AssignmentID, via, &it.out)
					}
					return s.applyRemoteTx(ctx, tx, in, it.stored.AssignmentID, it.view, via, &it.out)
				}
				if alone {
					it.err = apply()
					return it.err
				}
				if it.err = tx.Savepoint(ctx, apply); it.err != nil {
					it.out = SyncOutcome{}
					s.logger.WarnContext(ctx, "apply remote view", "integration", in.Name, "number", it.stored.Number, "via", via, "err", it.err)
				}
			}
			if then != nil {
				return then(tx)
			}
			return nil
		})
		if err != nil {
			for _, it := range writes {
				if it.err == nil {
					it.err = err
				}
				it.out = SyncOutcome{}
			}
		}
	}
	for _, it := range items {
		s.recordApplied(ctx, in, it, via)
	}
	return nil
}

// recordApplied counts and logs what applying one item did, as
// ApplyRemote and recordDeleted do, and wraps its error with the record.
func (s *Service) recordApplied(ctx context.Context, in *steward.Integration, it *batchItem, via string) {
	if it.err != nil {
		if steward.ErrorCode(it.err) == steward.CodeNotFound {
			return
		}
		s.sync.metrics.errors.WithLabelValues(in.Name, "apply").Inc()
		if it.gone {
			it.err = fmt.Errorf("record deleted ticket of assignment %d: %w", it.stored.AssignmentID, it.err)
		} else {
			it.err = fmt.Errorf("apply %s %s from %s: %w", it.view.Table, it.view.Number, via, it.err)
		}
		return
	}
	if it.gone {
		s.sync.metrics.applied.WithLabelValues(via, "deleted").Inc()
		if it.out.Changed {
			s.logger.WarnContext(ctx, "ticket deleted in the ITSM", "integration", in.Name, "assignment_id", it.stored.AssignmentID, "ended", it.out.Ended)
		}
		return
	}
	s.sync.metrics.applied.WithLabelValues(via, it.out.label()).Inc()
	if it.out.Changed {
		s.logger.InfoContext(ctx, "ticket synced", "integration_id", in.ID, "number", it.view.Number, "via", via,
			"state", it.view.StateLabel, "ended", it.out.Ended, "owner_changed", it.out.OwnerChanged, "conflict", it.out.Conflict)
	}
}
