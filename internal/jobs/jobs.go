// Package jobs names Steward's background jobs and queues them. It is a leaf:
// the workers live with their domain (ingest, ticketsync, ...), so services
// can queue each other's work without import cycles. Job kinds are stored
// with every queued job; never rename one once released.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Queues.
const (
	QueueDefault = river.QueueDefault
	QueueIngest  = "ingest"
)

// ImportArgs asks for an uploaded import file to be parsed and applied.
type ImportArgs struct {
	ImportID int64 `json:"import_id" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (ImportArgs) Kind() string { return "import_process" }

// InsertOpts puts imports on their own queue, one at a time, so a large file
// never starves ticket work, and dedupes by import ID.
func (ImportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueIngest, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// RecomputeSummariesArgs asks for the per-recommendation counts of the given
// keys to be recomputed; no keys means all recommendations.
type RecomputeSummariesArgs struct {
	Keys []string `json:"keys,omitempty"`
}

// Kind is stored with every queued job. Never rename it.
func (RecomputeSummariesArgs) Kind() string { return "recommendation_summaries_recompute" }

// Queue inserts jobs. It is created before the River client exists (workers
// need it to queue follow-up work, the client needs the workers), and is
// bound to the client once that is built.
type Queue struct {
	client *river.Client[*sql.Tx]
}

// NewQueue returns an unbound queue.
func NewQueue() *Queue { return &Queue{} }

// Bind attaches the River client that does the inserting.
func (q *Queue) Bind(client *river.Client[*sql.Tx]) { q.client = client }

// ErrUnbound is returned when a job is queued before the River client exists.
var ErrUnbound = errors.New("job queue is not bound to a river client")

// InsertTx queues args in tx, so the job exists if and only if tx commits.
func (q *Queue) InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs) error {
	_, err := q.InsertUniqueTx(ctx, tx, args)
	return err
}

// InsertUniqueTx is InsertTx reporting whether a job was queued: false,
// only for a kind with unique options, means an equivalent job is still
// waiting, running or retrying, and nothing was added.
func (q *Queue) InsertUniqueTx(ctx context.Context, tx *sql.Tx, args river.JobArgs) (bool, error) {
	if q == nil || q.client == nil {
		return false, ErrUnbound
	}
	res, err := q.client.InsertTx(ctx, tx, args, nil)
	if err != nil {
		return false, fmt.Errorf("queue %s job: %w", args.Kind(), err)
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

// Insert queues args outside any transaction.
func (q *Queue) Insert(ctx context.Context, args river.JobArgs) error {
	if q == nil || q.client == nil {
		return ErrUnbound
	}
	if _, err := q.client.Insert(ctx, args, nil); err != nil {
		return fmt.Errorf("queue %s job: %w", args.Kind(), err)
	}
	return nil
}

// QueueITSM holds jobs that call an ITSM. Each integration's own rate
// limiter paces them; the queue's worker count bounds concurrency overall.
const QueueITSM = "itsm"

// CreateTicketArgs asks for the ITSM record of one assignment.
type CreateTicketArgs struct {
	AssignmentID int64 `json:"assignment_id" river:"unique"`
	// Retry distinguishes a user's retry from the job that gave up, whose
	// finished row would otherwise count as a duplicate.
	Retry int64 `json:"retry,omitempty" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (CreateTicketArgs) Kind() string { return "ticket_create" }

// InsertOpts dedupes queued work per assignment. The ITSM-side
// correlation_id lookup stays the real guarantee against duplicate tickets;
// this only saves work. Attempts are many because a throttled instance may
// need hours to catch up; snoozes for Retry-After don't count.
func (CreateTicketArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueITSM, MaxAttempts: 25, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// DeleteIntegrationArgs asks for an integration's assignments to be removed
// (kept in history) and then the integration itself.
type DeleteIntegrationArgs struct {
	IntegrationID int64 `json:"integration_id" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (DeleteIntegrationArgs) Kind() string { return "integration_delete" }

// InsertOpts dedupes deletes of one integration.
func (DeleteIntegrationArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDefault, MaxAttempts: 50, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// QueueSync holds ticket synchronization work (webhook refreshes, polls,
// reconciles, Steward → ITSM updates).
const QueueSync = "sync"

// RefreshTicketArgs asks for one linked ticket to be re-read from the ITSM
// and its state applied (a webhook said it changed). Duplicates are cheap
// and harmless, so they are not deduped: a second webhook for the same
// record while the first job runs must not be lost.
type RefreshTicketArgs struct {
	IntegrationID int64  `json:"integration_id"`
	Table         string `json:"table"`
	SysID         string `json:"sys_id"`
	// ModCount is the sys_mod_count the webhook announced; a stored ticket
	// already at or past it needs no re-read.
	ModCount int `json:"mod_count,omitempty"`
}

// Kind is stored with every queued job. Never rename it.
func (RefreshTicketArgs) Kind() string { return "ticket_refresh" }

// InsertOpts puts refreshes on the sync queue.
func (RefreshTicketArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueSync, MaxAttempts: 10}
}

// syncUnique dedupes a sync job while one with the same args is waiting,
// running or retrying, but not after it completed: the next periodic run
// must be insertable at once.
var syncUnique = river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}}

// SyncScheduleArgs is the periodic job (every few seconds) that queues the
// polls and reconciles whose interval has elapsed, per integration.
type SyncScheduleArgs struct{}

// Kind is stored with every queued job. Never rename it.
func (SyncScheduleArgs) Kind() string { return "sync_schedule" }

// InsertOpts: one at a time; a missed tick is harmless.
func (SyncScheduleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueSync, MaxAttempts: 1, UniqueOpts: syncUnique}
}

// PollArgs asks for one incremental poll of an integration: the records
// changed since its watermark, applied. Reconcile asks for a full
// reconcile to follow (sync now). Request names the sync-now request (its
// audit event), so that each request gets a poll and a reconcile that start
// after it: River counts a job that has just finished as running until its
// completion is written, and would otherwise take a new request for a
// duplicate of the finishing one and drop it.
type PollArgs struct {
	IntegrationID int64 `json:"integration_id" river:"unique"`
	Reconcile     bool  `json:"reconcile,omitempty" river:"unique"`
	Request       int64 `json:"request,omitempty" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (PollArgs) Kind() string { return "sync_poll" }

// InsertOpts dedupes queued polls of one integration.
func (PollArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueSync, MaxAttempts: 5, UniqueOpts: syncUnique}
}

// ReconcileArgs asks for a full reconcile of an integration: every linked
// ticket read back and repaired.
type ReconcileArgs struct {
	IntegrationID int64 `json:"integration_id" river:"unique"`
	// Request is the sync-now request this reconcile follows (PollArgs);
	// zero for the periodic ones, which dedupe among themselves.
	Request int64 `json:"request,omitempty" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (ReconcileArgs) Kind() string { return "sync_reconcile" }

// InsertOpts dedupes queued reconciles of one integration.
func (ReconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueSync, MaxAttempts: 5, UniqueOpts: syncUnique}
}

// UpdateOwnerArgs asks for an assignment's owner to be written to its
// ticket's assigned_to. The worker reads the current owner, so a queued
// job always pushes the latest value.
type UpdateOwnerArgs struct {
	AssignmentID int64 `json:"assignment_id" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (UpdateOwnerArgs) Kind() string { return "ticket_update_owner" }

// InsertOpts dedupes waiting pushes of one assignment.
func (UpdateOwnerArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueSync, MaxAttempts: 25, UniqueOpts: syncUnique}
}

// ResolveTicketArgs asks for the ticket of an assignment completed because
// its assessment turned Healthy to be resolved in the ITSM.
type ResolveTicketArgs struct {
	AssignmentID int64 `json:"assignment_id" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (ResolveTicketArgs) Kind() string { return "ticket_resolve" }

// InsertOpts dedupes resolves of one assignment.
func (ResolveTicketArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueSync, MaxAttempts: 25, UniqueOpts: syncUnique}
}

// GroupNoteArgs asks for a work note on the shared ticket of a ticket
// group saying that a member joined it (Fixed false) or was fixed.
type GroupNoteArgs struct {
	AssignmentID int64 `json:"assignment_id" river:"unique"`
	Fixed        bool  `json:"fixed,omitempty" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (GroupNoteArgs) Kind() string { return "ticket_group_note" }

// InsertOpts dedupes notes of one member and event.
func (GroupNoteArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueSync, MaxAttempts: 25, UniqueOpts: syncUnique}
}

// ClosedNotFixedArgs asks for the integration's closed-not-fixed policy
// (nothing, reopen, new_ticket) to be applied to a flagged ticket.
type ClosedNotFixedArgs struct {
	AssignmentID int64 `json:"assignment_id" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (ClosedNotFixedArgs) Kind() string { return "ticket_closed_not_fixed" }

// InsertOpts dedupes by assignment.
func (ClosedNotFixedArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueSync, MaxAttempts: 25, UniqueOpts: syncUnique}
}

// RuleRunArgs asks for a governance rule to be run over the assessments
// that exist (steward rules run); the run row says which rule and how.
type RuleRunArgs struct {
	RunID int64 `json:"run_id" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (RuleRunArgs) Kind() string { return "rule_run" }

// InsertOpts puts rule runs on the ingest queue: like imports they write
// many rows, and one writer at a time is all SQLite has. A retried run
// starts over, skipping what the earlier attempt assigned.
func (RuleRunArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueIngest, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// QueueSource holds pulls of live sources: they wait on cloud APIs most of
// the time and write in chunks, so a few run side by side.
const QueueSource = "source"

// SourcePullArgs asks for one run of a live source: read everything it
// reaches, apply it in chunks, mark what is gone. One run per source at a
// time is kept by the source_run rows (a run is queued only when none of
// the source is queued or running, checked in the transaction that queues
// it); the job is unique per source and run while waiting, running or
// retrying. Unique by source alone would drop the job of a run queued in
// the moment between the previous run's end and its job's completion.
type SourcePullArgs struct {
	SourceID int64 `json:"source_id" river:"unique"`
	RunID    int64 `json:"run_id" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (SourcePullArgs) Kind() string { return "source_pull" }

// InsertOpts: a few attempts (a retried pull starts over; applying is
// idempotent), one per source at a time.
func (SourcePullArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueSource, MaxAttempts: 3, UniqueOpts: syncUnique}
}

// SourceScheduleArgs is the periodic job that queues the runs of sources
// whose schedule is due.
type SourceScheduleArgs struct{}

// Kind is stored with every queued job. Never rename it.
func (SourceScheduleArgs) Kind() string { return "source_schedule" }

// InsertOpts: one at a time; a missed tick is harmless.
func (SourceScheduleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueSource, MaxAttempts: 1, UniqueOpts: syncUnique}
}

// QueueNotify holds e-mail sends: they wait on the SMTP server.
const QueueNotify = "notify"

// NotifyScheduleArgs is the periodic job that plans the week's digests and
// escalations once the configured digest time has passed
// (docs/notifications.md).
type NotifyScheduleArgs struct{}

// Kind is stored with every queued job. Never rename it.
func (NotifyScheduleArgs) Kind() string { return "notify_schedule" }

// InsertOpts: one at a time; a missed tick is harmless (the next plans
// the same period, once).
func (NotifyScheduleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueNotify, MaxAttempts: 1, UniqueOpts: syncUnique}
}

// NotifySendArgs asks for one planned e-mail of the sent-log to be sent.
// The sent-log row, not the job, decides whether it may be: a duplicate or
// retried job finds the row sent (done) or sending (outcome unknown: not
// sent again).
type NotifySendArgs struct {
	NotificationID int64 `json:"notification_id" river:"unique"`
}

// Kind is stored with every queued job. Never rename it.
func (NotifySendArgs) Kind() string { return "notify_send" }

// InsertOpts: River's backoff between tries of a refused message (4xx, the
// server unreachable); after the last, the row stays retrying with its
// error until a person resends it.
func (NotifySendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueNotify, MaxAttempts: 20, UniqueOpts: syncUnique}
}

// QueueReport holds the governance snapshots: one long read, then short
// writes.
const QueueReport = "report"

// GovernanceSnapshotArgs is the periodic job that takes the governance
// report's daily snapshots: each ended day once, and today's provisional
// counts (docs/reports.md).
type GovernanceSnapshotArgs struct{}

// Kind is stored with every queued job. Never rename it.
func (GovernanceSnapshotArgs) Kind() string { return "governance_snapshot" }

// InsertOpts: one at a time; a missed tick is harmless (the next takes
// every day not yet taken).
func (GovernanceSnapshotArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueReport, MaxAttempts: 1, UniqueOpts: syncUnique}
}
