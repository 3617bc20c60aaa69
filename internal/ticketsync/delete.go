package ticketsync

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
)

// deleteBatch bounds each transaction of an integration delete, so the
// single SQLite writer is never held for long.
const deleteBatch = 200

// RequestDelete marks an integration as deleting and queues the job that
// removes its assignments, in one transaction.
func (s *Service) RequestDelete(ctx context.Context, id int64, actor string) (*steward.Integration, error) {
	var in *steward.Integration
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		if in, err = tx.MarkIntegrationDeleting(ctx, id, actor); err != nil {
			return err
		}
		return s.queue.InsertTx(ctx, tx.SQL(), jobs.DeleteIntegrationArgs{IntegrationID: id})
	})
	return in, err
}

// DeleteIntegration removes the integration's assignments in batches (each
// ended as removed through assignment.Service.End, kept in history) and
// then the integration. It is resumable: after a crash the job runs again
// and continues with what is left.
func (s *Service) DeleteIntegration(ctx context.Context, id int64, actor string) error {
	in, err := s.db.FindIntegrationByID(ctx, id)
	if err != nil {
		return err
	}
	if in.State != steward.IntegrationDeleting {
		return steward.Errorf(steward.CodeConflict, "integration %d is not being deleted", id)
	}
	reason := fmt.Sprintf("integration %q deleted", in.Name)
	total := 0
	for {
		var n int
		err := s.db.WithTx(ctx, func(tx *store.Tx) error {
			ids, err := tx.FindActiveAssignmentIDsByIntegration(ctx, id, deleteBatch)
			if err != nil {
				return err
			}
			for _, aid := range ids {
				if _, err := s.assign.End(ctx, tx, aid, steward.AssignmentRemoved, actor, reason); err != nil {
					return err
				}
			}
			n = len(ids)
			return nil
		})
		if err != nil {
			return fmt.Errorf("remove assignments of integration %d: %w", id, err)
		}
		total += n
		if n == 0 {
			break
		}
		s.logger.InfoContext(ctx, "integration delete progress", "integration_id", id, "removed", total)
	}
	if err := s.db.WithTx(ctx, func(tx *store.Tx) error { return tx.DeleteIntegration(ctx, id, actor) }); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.providers, id)
	s.mu.Unlock()
	s.logger.InfoContext(ctx, "integration deleted", "integration_id", id, "assignments_removed", total)
	return nil
}

// DeleteIntegrationWorker runs integration_delete jobs.
type DeleteIntegrationWorker struct {
	river.WorkerDefaults[jobs.DeleteIntegrationArgs]
	svc *Service
}

// NewDeleteIntegrationWorker returns the worker.
func NewDeleteIntegrationWorker(svc *Service) *DeleteIntegrationWorker {
	return &DeleteIntegrationWorker{svc: svc}
}

// Timeout allows for integrations with very many assignments (batches of
// 200 take milliseconds), and stays under the server's stuck-job rescue.
func (w *DeleteIntegrationWorker) Timeout(*river.Job[jobs.DeleteIntegrationArgs]) time.Duration {
	return 12 * time.Minute
}

// Work deletes the integration; a vanished integration means an earlier
// run finished.
func (w *DeleteIntegrationWorker) Work(ctx context.Context, job *river.Job[jobs.DeleteIntegrationArgs]) error {
	err := w.svc.DeleteIntegration(ctx, job.Args.IntegrationID, "system")
	if steward.ErrorCode(err) == steward.CodeNotFound {
		return nil
	}
	return err
}
