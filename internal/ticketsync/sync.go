package ticketsync

import (
	"context"
	"errors"
	"fmt"
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

// syncRuntime is the in-process part of sync: what runs now, per-integration
// locks, metric label names.
type syncRuntime struct {
	metrics *syncMetrics

	mu       sync.Mutex
	running  map[int64]*runState
	locks    map[string]*sync.Mutex // "poll:<id>", "reconcile:<id>"
	names    map[int64]string
	webhooks map[int64]time.Time // last webhook seen, persisted at most once a second
	stored   map[int64]time.Time // last webhook time written to the store
}

type runState struct {
	kind        string // "poll" or "reconcile"
	done, total int
}

func newSyncRuntime(reg prometheus.Registerer) *syncRuntime {
	return &syncRuntime{metrics: newSyncMetrics(reg), running: map[int64]*runState{}, locks: map[string]*sync.Mutex{},
		names: map[int64]string{}, webhooks: map[int64]time.Time{}, stored: map[int64]time.Time{}}
}

// lock returns the mutex that serializes one kind of run of one
// integration inside this process (several processes stay correct because
// every apply is idempotent; this only avoids duplicate work).
func (r *syncRuntime) lock(kind string, id int64) *sync.Mutex {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := fmt.Sprintf("%s:%d", kind, id)
	m, ok := r.locks[key]
	if !ok {
		m = &sync.Mutex{}
		r.locks[key] = m
	}
	return m
}

func (r *syncRuntime) setRunning(id int64, kind string, done, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if kind == "" {
		delete(r.running, id)
		return
	}
	r.running[id] = &runState{kind: kind, done: done, total: total}
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
		if err := s.applyRemoteTx(ctx, tx, stored.AssignmentID, t, via, &out); err != nil {
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
// writes go through it.
func (s *Service) applyRemoteTx(ctx context.Context, tx *store.Tx, assignmentID int64, t *itsm.Ticket, via string, out *SyncOutcome) error {
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
	in, err := tx.FindIntegrationByID(ctx, cur.IntegrationID)
	if err != nil {
		return err
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
	// Running is "", "poll" or "reconcile" (in this process).
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
	s.sync.mu.Lock()
	if r, ok := s.sync.running[integrationID]; ok {
		out.Running, out.Progress = r.kind, SyncProgress{Done: r.done, Total: r.total}
	}
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
