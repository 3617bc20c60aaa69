package ticketsync

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/assignment"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/store"
)

// The ways a remote view reaches ApplyRemote (metric and audit labels).
const (
	ViaWebhook   = "webhook"
	ViaPoll      = "poll"
	ViaReconcile = "reconcile"
	// ViaPush is the read-back before Steward's own writes (owner
	// updates, resolves): it may find a real ServiceNow change.
	ViaPush = "push"
	// viaOwnWrite stores what Steward's own write returned: the caller
	// audits the write itself, so no sync audit entry is added.
	viaOwnWrite = "own_write"
)

// SyncOutcome says what applying one remote view did.
type SyncOutcome struct {
	// Changed: the stored ticket's state, assignee or flag changed.
	Changed bool `json:"changed"`
	// Ended: the assignment ended (ticket ended or deleted remotely).
	Ended bool `json:"ended"`
	// OwnerChanged: the assignment's owner now follows the assignee.
	OwnerChanged bool `json:"owner_changed"`
	// Conflict: Steward had changed the owner too; ServiceNow won.
	Conflict bool `json:"conflict"`
	// Stale: the view was older than what is stored (or an echo of
	// Steward's own write) and was ignored.
	Stale bool `json:"stale"`
}

func (o SyncOutcome) label() string {
	switch {
	case o.Stale:
		return "stale"
	case o.Conflict:
		return "conflict"
	case o.Ended:
		return "ended"
	case o.Changed:
		return "changed"
	}
	return "unchanged"
}

// syncRuntime is the in-process part of sync: per-integration run locks
// and progress (SQLite, whose one process owns the database), metric label
// names, webhook times. On PostgreSQL, where several processes share the
// database, runs are guarded by leases in the database instead (beginRun).
type syncRuntime struct {
	metrics *syncMetrics
	// holder prefixes the lease holder of every run in this process, so a
	// lease row names the process that holds it.
	holder string
	// Lease timing (PostgreSQL): a lease lasts leaseTTL from its last
	// renewal, so a dead process holds it at most that long; a run renews it
	// every leaseTTL/3 and writes progress at most every progressEvery; a
	// run waiting for another's lease tries again every leaseRetry.
	leaseTTL, progressEvery, leaseRetry time.Duration

	mu       sync.Mutex
	running  map[runKey]*runState
	locks    map[runKey]*sync.Mutex
	names    map[int64]string
	webhooks map[int64]time.Time // last webhook seen, persisted at most once a second
	stored   map[int64]time.Time // last webhook time written to the store
}

// runKey names one kind of run ("poll" or "reconcile") of one integration.
type runKey struct {
	kind string
	id   int64
}

type runState struct {
	done, total int
}

// Lease timing defaults (syncRuntime).
const (
	defaultLeaseTTL      = 30 * time.Second
	defaultProgressEvery = time.Second
	defaultLeaseRetry    = time.Second
)

func newSyncRuntime(reg prometheus.Registerer) *syncRuntime {
	return &syncRuntime{metrics: newSyncMetrics(reg), holder: processHolder(),
		leaseTTL: defaultLeaseTTL, progressEvery: defaultProgressEvery, leaseRetry: defaultLeaseRetry,
		running: map[runKey]*runState{}, locks: map[runKey]*sync.Mutex{},
		names: map[int64]string{}, webhooks: map[int64]time.Time{}, stored: map[int64]time.Time{}}
}

// processHolder names this process in lease rows: host, pid and a random
// part (pids repeat across hosts and restarts).
func processHolder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), rand.Text()[:8])
}

// errLeaseLost ends a run whose lease another process took over (this one
// could not renew it in time): the other run does the work.
var errLeaseLost = errors.New("sync lease lost to another process")

// leaseCause is err, said as errLeaseLost when the run failed because it
// was stopped for losing its lease (otherwise it reads "context canceled").
func leaseCause(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(context.Cause(ctx), errLeaseLost) {
		return steward.WrapError(steward.CodeUnavailable, fmt.Errorf("%w: %w", errLeaseLost, err), "%s: stopped", errLeaseLost)
	}
	return err
}

// syncRun is one running poll or reconcile: it holds the integration's lock
// for its kind of run and publishes the run's progress.
type syncRun struct {
	progress func(done, total int)
	end      func()
}

// beginRun waits until this process may run kind ("poll" or "reconcile")
// for an integration, and returns the run with the context it must run
// under. Call end when the run is over.
//
// SQLite: an in-process mutex and progress in memory (one process owns
// the database). PostgreSQL: a lease row (store.AcquireSyncLease) that the
// run renews while it lasts and that lapses if the process dies; progress
// is written into it at most every progressEvery, so SyncStatus shows it
// on every process. A run that loses its lease (it could not renew in
// time) has its context cancelled with errLeaseLost.
func (s *Service) beginRun(ctx context.Context, kind string, id int64) (context.Context, *syncRun, error) {
	if !s.db.Postgres() {
		return ctx, s.sync.beginLocal(kind, id), nil
	}
	return s.beginLeased(ctx, kind, id)
}

func (r *syncRuntime) beginLocal(kind string, id int64) *syncRun {
	key := runKey{kind, id}
	r.mu.Lock()
	m, ok := r.locks[key]
	if !ok {
		m = &sync.Mutex{}
		r.locks[key] = m
	}
	r.mu.Unlock()
	m.Lock()
	set := func(done, total int) {
		r.mu.Lock()
		r.running[key] = &runState{done: done, total: total}
		r.mu.Unlock()
	}
	set(0, 0)
	return &syncRun{progress: set, end: func() {
		r.mu.Lock()
		delete(r.running, key)
		r.mu.Unlock()
		m.Unlock()
	}}
}

func (s *Service) beginLeased(ctx context.Context, kind string, id int64) (context.Context, *syncRun, error) {
	r := s.sync
	holder := r.holder + "/" + rand.Text()[:8]
	for {
		ok, err := s.db.AcquireSyncLease(ctx, id, kind, holder, r.leaseTTL)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			break
		}
		// Another process runs it: wait for it to finish (or die).
		t := time.NewTimer(r.leaseRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		}
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	var (
		mu          sync.Mutex
		done, total int
		dirty       bool
	)
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(r.progressEvery)
		defer tick.Stop()
		renewed := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mu.Lock()
			d, t, write := done, total, dirty || time.Since(renewed) >= r.leaseTTL/3
			dirty = false
			mu.Unlock()
			if !write {
				continue
			}
			ok, err := s.db.RenewSyncLease(runCtx, id, kind, holder, r.leaseTTL, d, t)
			switch {
			case err == nil && ok:
				renewed = time.Now()
			case err == nil:
				cancel(errLeaseLost)
				return
			case runCtx.Err() != nil:
				return
			case time.Since(renewed) >= r.leaseTTL:
				// Not renewed within the lease's life: another process
				// may hold it by now.
				cancel(errLeaseLost)
				return
			default:
				s.logger.WarnContext(ctx, "renew sync lease", "integration_id", id, "kind", kind, "err", err)
				mu.Lock()
				dirty = true // try again at the next tick
				mu.Unlock()
			}
		}
	}()
	run := &syncRun{
		progress: func(d, t int) {
			mu.Lock()
			done, total, dirty = d, t, true
			mu.Unlock()
		},
		end: func() {
			close(stop)
			<-stopped
			cancel(nil)
			// Released even when the run's context ended, so the next run
			// need not wait for the lease to expire.
			if err := s.db.ReleaseSyncLease(context.WithoutCancel(ctx), id, kind, holder); err != nil {
				s.logger.WarnContext(ctx, "release sync lease", "integration_id", id, "kind", kind, "err", err)
			}
		},
	}
	return runCtx, run, nil
}

// running returns the run of an integration in progress, if any: a poll
// before a reconcile. SQLite: in this process; PostgreSQL: in any.
func (s *Service) running(ctx context.Context, id int64) (kind string, p SyncProgress, err error) {
	if s.db.Postgres() {
		leases, err := s.db.FindSyncLeases(ctx, id)
		if err != nil || len(leases) == 0 {
			return "", SyncProgress{}, err
		}
		return leases[0].Kind, SyncProgress{Done: leases[0].Done, Total: leases[0].Total}, nil
	}
	s.sync.mu.Lock()
	defer s.sync.mu.Unlock()
	for _, kind := range []string{store.SyncLeasePoll, store.SyncLeaseReconcile} {
		if r, ok := s.sync.running[runKey{kind, id}]; ok {
			return kind, SyncProgress{Done: r.done, Total: r.total}, nil
		}
	}
	return "", SyncProgress{}, nil
}

// integrationName returns the metric label of an integration.
func (s *Service) integrationName(ctx context.Context, id int64) string {
	s.sync.mu.Lock()
	name, ok := s.sync.names[id]
	s.sync.mu.Unlock()
	if ok {
		return name
	}
	in, err := s.db.FindIntegrationByID(ctx, id)
	if err != nil {
		return "unknown"
	}
	s.rememberName(in)
	return in.Name
}

func (s *Service) rememberName(in *steward.Integration) {
	s.sync.mu.Lock()
	s.sync.names[in.ID] = in.Name
	s.sync.mu.Unlock()
}

// ApplyRemote applies one remote view of a linked ticket (from a webhook
// refresh, a poll or a reconcile). It is idempotent and order-insensitive:
// a view older than the stored version (lower sys_mod_count, or equal with
// an earlier sys_updated_on) is ignored as stale, and so is the echo of
// Steward's own write (its ModCount was stored when the write returned). A
// newer view updates the ticket and applies the rules of docs/sync.md in
// one transaction: an ended ticket completes the active assignment (kept in
// history with the reason and final state), a new assignee becomes the
// owner (ServiceNow wins a conflict), and a real change is audited. via is
// ViaWebhook, ViaPoll, ViaReconcile or ViaPush.
//
// Errors: CodeNotFound when the integration has no ticket with that
// sys_id (not linked); store errors otherwise.
func (s *Service) ApplyRemote(ctx context.Context, integrationID int64, t *itsm.Ticket, via string) (SyncOutcome, error) {
	return s.applyRemoteThen(ctx, integrationID, t, via, nil)
}

// applyRemoteThen is ApplyRemote, then runs then (if not nil) in the same
// transaction, or in its own when the view needs no write, so what a caller
// records about its own write (an audit event) commits with it.
func (s *Service) applyRemoteThen(ctx context.Context, integrationID int64, t *itsm.Ticket, via string, then func(*store.Tx) error) (SyncOutcome, error) {
	out, err := s.applyRemote(ctx, integrationID, t, via, then)
	if err != nil {
		if steward.ErrorCode(err) != steward.CodeNotFound {
			s.sync.metrics.errors.WithLabelValues(s.integrationName(ctx, integrationID), "apply").Inc()
		}
		return out, err
	}
	s.sync.metrics.applied.WithLabelValues(via, out.label()).Inc()
	return out, nil
}

func (s *Service) applyRemote(ctx context.Context, integrationID int64, t *itsm.Ticket, via string, then func(*store.Tx) error) (SyncOutcome, error) {
	if t == nil || t.SysID == "" {
		return SyncOutcome{}, steward.Errorf(steward.CodeInvalid, "remote ticket without sys_id")
	}
	stored, err := s.db.FindTicketBySysID(ctx, integrationID, t.SysID)
	if err != nil {
		return SyncOutcome{}, err
	}
	// Decide stale and same-version views on the reader: no write, so
	// echoes and reconciles of unchanged records never queue on the
	// single writer.
	var out SyncOutcome
	switch compareVersion(t, stored) {
	case store.RemoteStale:
		out.Stale = true
		fallthrough
	case store.RemoteSame:
		if then != nil {
			if err := s.db.WithTx(ctx, then); err != nil {
				return SyncOutcome{}, err
			}
		}
		return out, nil
	}
	err = s.db.WithTx(ctx, func(tx *store.Tx) error {
		out = SyncOutcome{}
		if err := s.applyRemoteTx(ctx, tx, nil, stored.AssignmentID, t, via, &out); err != nil {
			return err
		}
		if then != nil {
			return then(tx)
		}
		return nil
	})
	if err != nil {
		return SyncOutcome{}, fmt.Errorf("apply %s %s from %s: %w", t.Table, t.Number, via, err)
	}
	if out.Changed {
		s.logger.InfoContext(ctx, "ticket synced", "integration_id", integrationID, "number", t.Number, "via", via,
			"state", t.StateLabel, "ended", out.Ended, "owner_changed", out.OwnerChanged, "conflict", out.Conflict)
	}
	return out, nil
}

// compareVersion orders a remote view against the stored ticket like the
// store does: by sys_mod_count, then sys_updated_on.
func compareVersion(t *itsm.Ticket, stored *steward.Ticket) int {
	switch {
	case t.ModCount > stored.ModCount:
		return store.RemoteNewer
	case t.ModCount < stored.ModCount:
		return store.RemoteStale
	}
	switch {
	case stored.RemoteUpdatedAt == nil && t.UpdatedAt.IsZero():
		return store.RemoteSame
	case stored.RemoteUpdatedAt == nil:
		return store.RemoteNewer
	case t.UpdatedAt.IsZero():
		return store.RemoteStale
	}
	return t.UpdatedAt.Truncate(time.Microsecond).Compare(*stored.RemoteUpdatedAt)
}

// applyRemoteTx is the one place the ITSM → Steward rules live; all three
// paths (webhook, poll, reconcile) and the read-backs of Steward's own
// writes go through it. in is the ticket's integration when the caller has
// it (a batch applies many views of one integration); nil reads it.
func (s *Service) applyRemoteTx(ctx context.Context, tx *store.Tx, in *steward.Integration, assignmentID int64, t *itsm.Ticket, via string, out *SyncOutcome) error {
	cur, err := tx.FindTicketByAssignment(ctx, assignmentID)
	if err != nil {
		return err
	}
	a, err := tx.FindAssignmentByID(ctx, assignmentID)
	if err != nil {
		return err
	}
	remote := fromITSM(t)
	order, err := tx.UpdateTicketRemote(ctx, assignmentID, remote)
	if err != nil {
		return err
	}
	switch order {
	case store.RemoteStale:
		out.Stale = true
		return nil
	case store.RemoteSame:
		return nil
	}
	// Changes that sync applies are recorded as the integration
	// (steward.IntegrationActor), which no API token can spell.
	if in == nil || in.ID != cur.IntegrationID {
		if in, err = tx.FindIntegrationByID(ctx, cur.IntegrationID); err != nil {
			return err
		}
	}
	syncActor := steward.IntegrationActor(in.Name)
	stateChanged := cur.RawState != remote.RawState
	assigneeChanged := !strings.EqualFold(cur.AssigneeEmail, remote.AssigneeEmail)
	out.Changed = stateChanged || assigneeChanged || cur.Flag == steward.TicketFlagDeleted
	details := map[string]any{"via": via, "number": t.Number, "mod_count": t.ModCount, "updated_by": t.UpdatedBy}
	if stateChanged {
		details["state"] = map[string]any{"from": cur.StateLabel, "to": t.StateLabel}
	}
	if assigneeChanged {
		details["assignee"] = map[string]any{"from": cur.AssigneeEmail, "to": remote.AssigneeEmail}
	}
	// The owner follows the assignee first, then an ended ticket ends the
	// assignment: one view can carry both (the agent reassigned and
	// resolved between two reads), and the assignment must end with the
	// owner ServiceNow ended it with. A later reassignment of the ended
	// ticket moves the owner of the assignment it completed too, so the
	// final owner is the final assignee whatever order or grouping the
	// versions arrive in.
	// A group ticket stands for every member of its group: each follows
	// the assignee and ends with it.
	targets := []*steward.Assignment{a}
	if cur.GroupID != 0 {
		if targets, err = tx.GroupMembers(ctx, cur.GroupID); err != nil {
			return err
		}
	}
	ended := false
	for _, m := range targets {
		endedByTicket := m.State == steward.AssignmentCompleted && cur.EndedState != ""
		if (m.State == steward.AssignmentActive || endedByTicket) &&
			assigneeChanged && remote.AssigneeEmail != "" && !strings.EqualFold(m.Owner, remote.AssigneeEmail) {
			if err := s.followAssignee(ctx, tx, m, cur, t, remote.AssigneeEmail, syncActor, via, details, out); err != nil {
				return err
			}
		}
		if m.State == steward.AssignmentActive && remote.State.Ended() {
			label := t.StateLabel
			if label == "" {
				label = string(remote.State)
			}
			reason := fmt.Sprintf("ticket %s %s in ServiceNow", t.Number, label)
			if _, err := s.assign.End(ctx, tx, m.ID, steward.AssignmentCompleted, syncActor, reason); err != nil {
				return err
			}
			ended = true
		}
	}
	if ended {
		label := t.StateLabel
		if label == "" {
			label = string(remote.State)
		}
		endedAt := t.UpdatedAt
		if endedAt.IsZero() {
			endedAt = time.Now()
		}
		if err := tx.SetTicketSync(ctx, assignmentID, store.TicketSyncUpdate{EndedState: &label, RemoteEndedAt: &endedAt}); err != nil {
			return err
		}
		if cur.GroupID != 0 {
			if err := tx.CloseTicketGroup(ctx, cur.GroupID); err != nil {
				return err
			}
		}
		out.Ended = true
		details["assignment"] = "completed"
	}
	if !out.Changed || via == viaOwnWrite {
		return nil
	}
	return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: syncActor, Action: store.AuditTicketSynced,
		IntegrationID: cur.IntegrationID, AssignmentID: assignmentID, Details: details})
}

// followAssignee makes ServiceNow's new assignee the assignment's owner
// (history event as the integration), deciding a conflict by the rule of
// docs/sync.md. An assignee whose e-mail is not a valid owner is noted in
// details and leaves the owner as it is.
func (s *Service) followAssignee(ctx context.Context, tx *store.Tx, a *steward.Assignment, cur *steward.Ticket, t *itsm.Ticket,
	email, syncActor, via string, details map[string]any, out *SyncOutcome) error {
	if err := steward.ValidateEmail("assignee", email); err != nil {
		details["owner_not_changed"] = steward.ErrorMessage(err)
		return nil
	}
	// Conflict rule (docs/sync.md): Steward changed the owner since the
	// last sync (owner != last known assignee) and ServiceNow changed the
	// assignee too. ServiceNow wins: it is where the assignee works.
	conflict := !strings.EqualFold(a.Owner, cur.AssigneeEmail)
	reason := fmt.Sprintf("assignee changed in ServiceNow (%s)", t.Number)
	if conflict {
		reason = fmt.Sprintf("conflict: overridden by ServiceNow (%s assigned to %s; Steward had set %s)", t.Number, email, a.Owner)
	}
	// FromTicket: the owner came from the ticket, so nothing is pushed back.
	upd := assignment.Change{AssignmentUpdate: store.AssignmentUpdate{Owner: &email, AllowEnded: a.State != steward.AssignmentActive}, FromTicket: true}
	if _, err := s.assign.Update(ctx, tx, a.ID, upd, syncActor, reason); err != nil {
		return err
	}
	out.OwnerChanged, out.Conflict = true, conflict
	if !conflict {
		return nil
	}
	return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: syncActor, Action: store.AuditTicketSyncConflict,
		IntegrationID: cur.IntegrationID, AssignmentID: a.ID,
		Details: map[string]any{"via": via, "number": t.Number, "rule": "servicenow_wins",
			"steward_owner": a.Owner, "servicenow_assignee": email, "last_synced_assignee": cur.AssigneeEmail}})
}

// RefreshTicket re-reads one linked record through the Table API and
// applies it as a webhook change. The table is the stored ticket's (the
// argument only has to agree when given). A record deleted in the ITSM is
// handled per the integration's DeletedTicket policy. Errors: CodeNotFound
// when the integration has no ticket with that sys_id; ITSM errors
// (retryable or not) from the read.
func (s *Service) RefreshTicket(ctx context.Context, integrationID int64, table, sysID string) (SyncOutcome, error) {
	stored, err := s.db.FindTicketBySysID(ctx, integrationID, sysID)
	if err != nil {
		return SyncOutcome{}, err
	}
	if table != "" && table != stored.Table {
		return SyncOutcome{}, steward.Errorf(steward.CodeNotFound, "ticket %s is in table %s, not %s", stored.Number, stored.Table, table)
	}
	return s.refresh(ctx, stored, ViaWebhook)
}

// refresh reads stored's record and applies it, or the deleted policy.
func (s *Service) refresh(ctx context.Context, stored *steward.Ticket, via string) (SyncOutcome, error) {
	p, in, err := s.Provider(ctx, stored.IntegrationID)
	if err != nil {
		return SyncOutcome{}, err
	}
	s.rememberName(in)
	t, err := p.Ticket(ctx, itsm.Ref{Table: stored.Table, SysID: stored.SysID})
	if itsm.IsKind(err, itsm.KindNotFound) {
		return s.recordDeleted(ctx, in, stored.AssignmentID, via)
	}
	if err != nil {
		s.sync.metrics.errors.WithLabelValues(in.Name, "refresh").Inc()
		return SyncOutcome{}, err
	}
	return s.ApplyRemote(ctx, in.ID, t, via)
}

// recordDeleted flags a ticket whose record is gone from the ITSM and, with
// the "end" policy, ends its active assignment (as removed). Idempotent: a
// ticket already flagged is left alone.
func (s *Service) recordDeleted(ctx context.Context, in *steward.Integration, assignmentID int64, via string) (SyncOutcome, error) {
	var out SyncOutcome
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		out = SyncOutcome{}
		return s.recordDeletedTx(ctx, tx, in, assignmentID, via, &out)
	})
	if err != nil {
		return SyncOutcome{}, fmt.Errorf("record deleted ticket of assignment %d: %w", assignmentID, err)
	}
	s.sync.metrics.applied.WithLabelValues(via, "deleted").Inc()
	if out.Changed {
		s.logger.WarnContext(ctx, "ticket deleted in the ITSM", "integration", in.Name, "assignment_id", assignmentID, "ended", out.Ended)
	}
	return out, nil
}

// recordDeletedTx is recordDeleted inside the caller's transaction.
func (s *Service) recordDeletedTx(ctx context.Context, tx *store.Tx, in *steward.Integration, assignmentID int64, via string, out *SyncOutcome) error {
	t, err := tx.FindTicketByAssignment(ctx, assignmentID)
	if err != nil {
		return err
	}
	if t.Flag == steward.TicketFlagDeleted {
		return nil
	}
	flag := steward.TicketFlagDeleted
	if err := tx.SetTicketSync(ctx, assignmentID, store.TicketSyncUpdate{Flag: &flag, StopWatching: true}); err != nil {
		return err
	}
	out.Changed = true
	policy := in.Sync.DeletedTicket
	if policy == "" {
		policy = steward.DefaultSyncSettings().DeletedTicket
	}
	a, err := tx.FindAssignmentByID(ctx, assignmentID)
	if err != nil {
		return err
	}
	// A group ticket's record stands for every member; findings the
	// rule assigns from now on open a new group.
	targets := []*steward.Assignment{a}
	if t.GroupID != 0 {
		if targets, err = tx.GroupMembers(ctx, t.GroupID); err != nil {
			return err
		}
		if err := tx.CloseTicketGroup(ctx, t.GroupID); err != nil {
			return err
		}
	}
	for _, m := range targets {
		if m.State != steward.AssignmentActive || policy != "end" {
			continue
		}
		reason := fmt.Sprintf("ticket %s deleted in ServiceNow", t.Number)
		if _, err := s.assign.End(ctx, tx, m.ID, steward.AssignmentRemoved, steward.IntegrationActor(in.Name), reason); err != nil {
			return err
		}
		out.Ended = true
	}
	return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: steward.IntegrationActor(in.Name), Action: store.AuditTicketDeletedInITSM,
		IntegrationID: in.ID, AssignmentID: assignmentID,
		Details: map[string]any{"via": via, "number": t.Number, "sys_id": t.SysID, "policy": policy, "assignment_ended": out.Ended}})
}

// SyncProgress is how far a running poll or reconcile is.
type SyncProgress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

// ReconcileReport is what a full reconcile checked and repaired.
type ReconcileReport = store.ReconcileReport

// SyncStatus is an integration's synchronization status.
type SyncStatus struct {
	IntegrationID          int64      `json:"integration_id"`
	LastPollAt             *time.Time `json:"last_poll_at"`
	LastPollSuccessAt      *time.Time `json:"last_poll_success_at"`
	LastReconcileAt        *time.Time `json:"last_reconcile_at"`
	LastReconcileSuccessAt *time.Time `json:"last_reconcile_success_at"`
	LastWebhookAt          *time.Time `json:"last_webhook_at"`
	// Watermark is the oldest of the per-table watermarks: every change
	// before it minus the overlap window has been applied by a poll.
	Watermark *time.Time `json:"watermark"`
	LastError string     `json:"last_error,omitempty"`
	// Running is "", "poll" or "reconcile": on PostgreSQL in any process,
	// on SQLite in the one process that owns the database.
	Running       string          `json:"running"`
	Progress      SyncProgress    `json:"progress"`
	LastReconcile ReconcileReport `json:"last_reconcile"`
	// LagSeconds bounds the sync lag from above: now minus the start of
	// the last successful poll (every change before it is applied).
	LagSeconds float64 `json:"lag_seconds"`
}

// SyncStatus returns an integration's sync status. Errors: CodeNotFound.
func (s *Service) SyncStatus(ctx context.Context, integrationID int64) (*SyncStatus, error) {
	in, err := s.db.FindIntegrationByID(ctx, integrationID)
	if err != nil {
		return nil, err
	}
	st, err := s.db.FindSyncState(ctx, integrationID)
	if err != nil {
		return nil, err
	}
	out := &SyncStatus{IntegrationID: in.ID, LastPollAt: st.LastPollAt, LastPollSuccessAt: st.LastPollSuccessAt,
		LastReconcileAt: st.LastReconcileAt, LastReconcileSuccessAt: st.LastReconcileSuccessAt, LastWebhookAt: st.LastWebhookAt,
		LastError: st.LastError, LastReconcile: st.LastReconcile, LagSeconds: s.lag(in, st).Seconds()}
	for _, w := range st.Watermarks {
		if out.Watermark == nil || w.Before(*out.Watermark) {
			w := w
			out.Watermark = &w
		}
	}
	if out.Running, out.Progress, err = s.running(ctx, integrationID); err != nil {
		return nil, err
	}
	s.sync.mu.Lock()
	if w, ok := s.sync.webhooks[integrationID]; ok && (out.LastWebhookAt == nil || w.After(*out.LastWebhookAt)) {
		out.LastWebhookAt = &w
	}
	s.sync.mu.Unlock()
	return out, nil
}

// lag is now minus the point up to which every change is known applied.
func (s *Service) lag(in *steward.Integration, st *store.SyncState) time.Duration {
	through := in.CreatedAt
	if st.AppliedThrough != nil {
		through = *st.AppliedThrough
	}
	return max(time.Since(through), 0)
}

// RecordWebhook counts a webhook delivery for an integration (accepted:
// signature valid and queued; else rejected) and remembers when the last
// accepted one arrived. It never fails: bookkeeping must not fail a
// delivery. The store is written at most once a second per integration.
func (s *Service) RecordWebhook(ctx context.Context, integrationID int64, accepted bool) {
	result := "rejected"
	if accepted {
		result = "accepted"
	}
	s.sync.metrics.events.WithLabelValues(s.integrationName(ctx, integrationID), result).Inc()
	if !accepted {
		return
	}
	now := time.Now().UTC()
	s.sync.mu.Lock()
	s.sync.webhooks[integrationID] = now
	persist := now.Sub(s.sync.stored[integrationID]) >= time.Second
	if persist {
		s.sync.stored[integrationID] = now
	}
	s.sync.mu.Unlock()
	if persist {
		if err := s.db.RecordWebhookAt(ctx, integrationID, now); err != nil && !errors.Is(err, context.Canceled) {
			s.logger.WarnContext(ctx, "record webhook time", "integration_id", integrationID, "error", err)
		}
	}
}
