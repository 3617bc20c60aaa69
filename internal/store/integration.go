package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
)

// Audit actions on integrations.
const (
	AuditIntegrationCreated         = "integration.created"
	AuditIntegrationUpdated         = "integration.updated"
	AuditIntegrationDeleteRequested = "integration.delete_requested"
	AuditIntegrationDeleted         = "integration.deleted"
)

// IntegrationUpdate changes an active integration; nil fields stay as they
// are. A secret set to the zero String clears it.
type IntegrationUpdate struct {
	Name              *string
	Scope             *steward.Scope
	InstanceURL       *string
	Local             *bool
	AuthMode          *steward.AuthMode
	Username          *string
	ClientID          *string
	Password          *secret.String
	ClientSecret      *secret.String
	WebhookSecret     *secret.String
	TicketTypes       *map[steward.TicketType]steward.TicketMapping
	Priority          *map[steward.Severity]steward.ImpactUrgency
	RequestsPerSecond *float64
	Sync              *steward.SyncSettings
}

// DeletePreview says what deleting an integration would touch.
type DeletePreview struct {
	// ActiveAssignments will be removed (kept in history).
	ActiveAssignments int `json:"active_assignments"`
	// Tickets are all tickets ever linked to the integration.
	Tickets int `json:"tickets"`
	// OpenTickets are tickets of active assignments whose state has not
	// ended; they stay open in the ITSM.
	OpenTickets int `json:"open_tickets"`
}

const integrationSelect = `SELECT id, name, type, scope, instance_url, local, auth_mode, username, client_id,
	password IS NOT NULL, client_secret IS NOT NULL, ticket_types, priority, requests_per_second, sync,
	state, created_at, created_by, updated_at
	FROM integration`

func scanIntegration(sc interface{ Scan(...any) error }) (*steward.Integration, error) {
	in := new(steward.Integration)
	var types, priority, sync string
	var created, updated dbTime
	if err := sc.Scan(&in.ID, &in.Name, &in.Type, &in.Scope, &in.InstanceURL, &in.Local, &in.AuthMode, &in.Username, &in.ClientID,
		&in.HasPassword, &in.HasClientSecret, &types, &priority, &in.RequestsPerSecond, &sync,
		&in.State, &created, &in.CreatedBy, &updated); err != nil {
		return nil, err
	}
	in.CreatedAt, in.UpdatedAt = created.T, updated.T
	if err := decodeJSON(types, &in.TicketTypes); err != nil {
		return nil, fmt.Errorf("decode ticket types of integration %d: %w", in.ID, err)
	}
	if err := decodeJSON(priority, &in.Priority); err != nil {
		return nil, fmt.Errorf("decode priority of integration %d: %w", in.ID, err)
	}
	if err := decodeJSON(sync, &in.Sync); err != nil {
		return nil, fmt.Errorf("decode sync settings of integration %d: %w", in.ID, err)
	}
	if in.TicketTypes == nil {
		in.TicketTypes = map[steward.TicketType]steward.TicketMapping{}
	}
	if in.Priority == nil {
		in.Priority = map[steward.Severity]steward.ImpactUrgency{}
	}
	return in, nil
}

func decodeJSON(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

func encodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// normalizeIntegration validates in and fills defaults: type servicenow,
// auth mode oauth_password, the default priority map, and default sync
// settings for each zero sync field.
func normalizeIntegration(in *steward.Integration) error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		return steward.Errorf(steward.CodeInvalid, "name is missing")
	}
	if len(in.Name) > 200 {
		return steward.Errorf(steward.CodeInvalid, "name is longer than 200 characters")
	}
	if err := in.Scope.Validate(); err != nil {
		return err
	}
	in.Scope = in.Scope.Normalize()
	switch in.Type {
	case "":
		in.Type = steward.IntegrationServiceNow
	case steward.IntegrationServiceNow:
	default:
		return steward.Errorf(steward.CodeInvalid, "integration type %q is not servicenow", in.Type)
	}
	switch in.AuthMode {
	case "":
		in.AuthMode = steward.AuthOAuthPassword
	case steward.AuthOAuthPassword, steward.AuthBasic, steward.AuthClientCredentials:
	default:
		return steward.Errorf(steward.CodeInvalid, "auth mode %q is not one of oauth_password, basic, client_credentials", in.AuthMode)
	}
	if math.IsNaN(in.RequestsPerSecond) || math.IsInf(in.RequestsPerSecond, 0) || in.RequestsPerSecond < 0 {
		return steward.Errorf(steward.CodeInvalid, "requests_per_second must not be negative")
	}
	if in.TicketTypes == nil {
		in.TicketTypes = map[steward.TicketType]steward.TicketMapping{}
	}
	for tt := range in.TicketTypes {
		if p, err := steward.ParseTicketType(string(tt)); err != nil || p != tt {
			return steward.Errorf(steward.CodeInvalid, "unknown ticket type %q in ticket_types (want incident, problem or change_request)", tt)
		}
	}
	if in.Priority == nil {
		in.Priority = steward.DefaultPriority()
	}
	for sev := range in.Priority {
		if sev.Rank() == 0 {
			return steward.Errorf(steward.CodeInvalid, "unknown severity %q in priority (want Low, Medium, High or Critical)", sev)
		}
	}
	def := steward.DefaultSyncSettings()
	if in.Sync.PollInterval == 0 {
		in.Sync.PollInterval = def.PollInterval
	}
	if in.Sync.ReconcileInterval == 0 {
		in.Sync.ReconcileInterval = def.ReconcileInterval
	}
	if in.Sync.ClosedNotFixed == "" {
		in.Sync.ClosedNotFixed = def.ClosedNotFixed
	}
	if in.Sync.DeletedTicket == "" {
		in.Sync.DeletedTicket = def.DeletedTicket
	}
	return nil
}

// nameNorm is the key integration names are unique under.
func nameNorm(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// checkNameFree returns CodeConflict when another integration has name in
// any letter case.
func (tx *Tx) checkNameFree(ctx context.Context, name string, exceptID int64) error {
	var id int64
	err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT id FROM integration WHERE name_norm = ? AND id <> ?`), nameNorm(name), exceptID).Scan(&id)
	if isNoRows(err) {
		return nil
	} else if err != nil {
		return err
	}
	return steward.Errorf(steward.CodeConflict, "an integration named %q exists", name)
}

// CreateIntegration stores a new active integration with its credentials
// sealed, and audits "integration.created" (name, scope, instance_url; never
// a credential). It sets in.ID, State, CreatedAt, CreatedBy, UpdatedAt,
// HasPassword and HasClientSecret, normalizes in.Scope and fills defaults
// (type servicenow, auth mode oauth_password, steward.DefaultPriority when
// Priority is nil, steward.DefaultSyncSettings for each zero sync field).
// Errors: CodeConflict when the name is taken in any letter case;
// CodeInvalid for bad fields; CodeUnavailable when a credential is given
// but no secret key is configured.
func (tx *Tx) CreateIntegration(ctx context.Context, in *steward.Integration, secrets IntegrationSecrets, actor string) error {
	if err := tx.createIntegration(ctx, in, secrets, actor); err != nil {
		return fmt.Errorf("create integration %q: %w", in.Name, mapError(err))
	}
	return nil
}

func (tx *Tx) createIntegration(ctx context.Context, in *steward.Integration, secrets IntegrationSecrets, actor string) error {
	if err := normalizeIntegration(in); err != nil {
		return err
	}
	box := tx.db.box.Load()
	for _, f := range secretFields {
		if !f.get(&secrets).IsZero() && box == nil {
			return errNoSecretKey()
		}
	}
	if err := tx.checkNameFree(ctx, in.Name, 0); err != nil {
		return err
	}
	types, err := encodeJSON(in.TicketTypes)
	if err != nil {
		return err
	}
	priority, err := encodeJSON(in.Priority)
	if err != nil {
		return err
	}
	sync, err := encodeJSON(in.Sync)
	if err != nil {
		return err
	}
	now := tx.db.now()
	in.State, in.CreatedAt, in.CreatedBy, in.UpdatedAt = steward.IntegrationActive, now, actor, now
	err = tx.tx.QueryRowContext(ctx, tx.db.bind(`INSERT INTO integration (name, name_norm, type, scope, instance_url, local, auth_mode,
		username, client_id, ticket_types, priority, requests_per_second, sync, state, created_at, created_by, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		in.Name, nameNorm(in.Name), string(in.Type), string(in.Scope), in.InstanceURL, boolArg(in.Local), string(in.AuthMode),
		in.Username, in.ClientID, types, priority, in.RequestsPerSecond, sync, string(in.State),
		tx.db.timeArg(now), actor, tx.db.timeArg(now)).Scan(&in.ID)
	if err != nil {
		return err
	}
	// The seal context names the row, so credentials are sealed once the ID
	// exists.
	var sealed [3][]byte
	for i, f := range secretFields {
		if sealed[i], err = seal(box, in.ID, f.column, *f.get(&secrets)); err != nil {
			return err
		}
	}
	// The credentials are entered for this instance URL's origin, and are
	// only ever sent there (Origin).
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE integration SET password = ?, client_secret = ?, webhook_secret = ?, credential_origin = ? WHERE id = ?`),
		sealed[0], sealed[1], sealed[2], Origin(in.InstanceURL), in.ID); err != nil {
		return err
	}
	in.HasPassword, in.HasClientSecret = sealed[0] != nil, sealed[1] != nil
	return tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: actor, Action: AuditIntegrationCreated, IntegrationID: in.ID,
		Details: map[string]any{"name": in.Name, "scope": string(in.Scope), "instance_url": in.InstanceURL}})
}

// FindIntegrationByID returns an integration (active or deleting), or
// CodeNotFound.
func (db *DB) FindIntegrationByID(ctx context.Context, id int64) (*steward.Integration, error) {
	return findIntegrationByID(ctx, db, db.read, id, "")
}

// FindIntegrationByID is DB.FindIntegrationByID inside the transaction.
func (tx *Tx) FindIntegrationByID(ctx context.Context, id int64) (*steward.Integration, error) {
	return findIntegrationByID(ctx, tx.db, tx.tx, id, "")
}

// lockIntegration is Tx.FindIntegrationByID that also locks the row until
// the transaction ends (PostgreSQL), for the writes that read it first.
// (Tx.FindIntegrationByID itself does not lock: sync reads the integration
// in every transaction, and they must not queue behind each other.) A
// delete (exclusive) waits for the tickets being created on the
// integration, which hold a key-share lock on its row (createTicket); an
// update (not exclusive: FOR NO KEY UPDATE) does not.
func (tx *Tx) lockIntegration(ctx context.Context, id int64, exclusive bool) (*steward.Integration, error) {
	lock := tx.db.forUpdate()
	if lock != "" && !exclusive {
		lock = " FOR NO KEY UPDATE"
	}
	return findIntegrationByID(ctx, tx.db, tx.tx, id, lock)
}

func findIntegrationByID(ctx context.Context, db *DB, q querier, id int64, lock string) (*steward.Integration, error) {
	in, err := scanIntegration(q.QueryRowContext(ctx, db.bind(integrationSelect+` WHERE id = ?`+lock), id))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "integration %d not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("find integration %d: %w", id, err)
	}
	return in, nil
}

// FindIntegrations returns every integration, including those being
// deleted, ordered by name (case-insensitively).
func (db *DB) FindIntegrations(ctx context.Context) ([]*steward.Integration, error) {
	// PostgreSQL: name_norm needs COLLATE "C" to order like SQLite.
	rows, err := db.read.QueryContext(ctx, db.bind(integrationSelect+` ORDER BY name_norm, id`))
	if err != nil {
		return nil, fmt.Errorf("find integrations: %w", err)
	}
	defer rows.Close()
	out := []*steward.Integration{}
	for rows.Next() {
		in, err := scanIntegration(rows)
		if err != nil {
			return nil, fmt.Errorf("find integrations: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find integrations: %w", err)
	}
	return out, nil
}

// loadActiveIntegration returns the integration for a change, or
// CodeNotFound, or CodeConflict while it is being deleted.
func (tx *Tx) loadActiveIntegration(ctx context.Context, id int64) (*steward.Integration, error) {
	in, err := tx.lockIntegration(ctx, id, false)
	if err != nil {
		return nil, err
	}
	if in.State != steward.IntegrationActive {
		return nil, steward.Errorf(steward.CodeConflict, "integration %q is being deleted", in.Name)
	}
	return in, nil
}

// nextUpdatedAt returns now, or just after prev if now is not later:
// UpdatedAt strictly increases with every change, because callers cache
// per-integration state (providers) keyed on it.
func nextUpdatedAt(now, prev time.Time) time.Time {
	if !now.After(prev) {
		return prev.Add(time.Microsecond)
	}
	return now
}

// UpdateIntegration applies upd to an active integration and audits
// "integration.updated" with details {"fields": [...]} naming each changed
// field by its JSON name (credentials are named, their values never
// appear). A given credential always counts as changed. A given password
// or client secret records the origin of the (new) instance URL as the one
// the credentials are for; a replaced webhook secret is kept as the
// previous one (IntegrationCredentials). UpdatedAt strictly
// increases with every update that changes something; an update that
// changes nothing writes nothing and returns the integration as it is.
// Errors: CodeNotFound; CodeConflict while it is being deleted or when the
// new name is taken; CodeInvalid for bad fields; CodeUnavailable when a
// credential is given but no secret key is configured.
func (tx *Tx) UpdateIntegration(ctx context.Context, id int64, upd IntegrationUpdate, actor string) (*steward.Integration, error) {
	in, err := tx.updateIntegration(ctx, id, upd, actor)
	if err != nil {
		return nil, fmt.Errorf("update integration %d: %w", id, mapError(err))
	}
	return in, nil
}

func (tx *Tx) updateIntegration(ctx context.Context, id int64, upd IntegrationUpdate, actor string) (*steward.Integration, error) {
	in, err := tx.loadActiveIntegration(ctx, id)
	if err != nil {
		return nil, err
	}
	// Maps and sync settings compare by their stored JSON (after defaults).
	oldName := in.Name
	oldTypes, err := encodeJSON(in.TicketTypes)
	if err != nil {
		return nil, err
	}
	oldPriority, err := encodeJSON(in.Priority)
	if err != nil {
		return nil, err
	}
	oldSync, err := encodeJSON(in.Sync)
	if err != nil {
		return nil, err
	}
	var fields []string
	set := func(name string, changed bool) {
		if changed {
			fields = append(fields, name)
		}
	}
	if upd.Name != nil {
		set("name", strings.TrimSpace(*upd.Name) != in.Name)
		in.Name = *upd.Name
	}
	if upd.Scope != nil {
		set("scope", upd.Scope.Normalize() != in.Scope)
		in.Scope = *upd.Scope
	}
	if upd.InstanceURL != nil {
		set("instance_url", *upd.InstanceURL != in.InstanceURL)
		in.InstanceURL = *upd.InstanceURL
	}
	if upd.Local != nil {
		set("local", *upd.Local != in.Local)
		in.Local = *upd.Local
	}
	if upd.AuthMode != nil {
		set("auth_mode", *upd.AuthMode != in.AuthMode)
		in.AuthMode = *upd.AuthMode
	}
	if upd.Username != nil {
		set("username", *upd.Username != in.Username)
		in.Username = *upd.Username
	}
	if upd.ClientID != nil {
		set("client_id", *upd.ClientID != in.ClientID)
		in.ClientID = *upd.ClientID
	}
	if upd.TicketTypes != nil {
		in.TicketTypes = *upd.TicketTypes
	}
	if upd.Priority != nil {
		in.Priority = *upd.Priority
	}
	if upd.RequestsPerSecond != nil {
		set("requests_per_second", *upd.RequestsPerSecond != in.RequestsPerSecond)
		in.RequestsPerSecond = *upd.RequestsPerSecond
	}
	if upd.Sync != nil {
		in.Sync = *upd.Sync
	}
	if err := normalizeIntegration(in); err != nil {
		return nil, err
	}
	types, err := encodeJSON(in.TicketTypes)
	if err != nil {
		return nil, err
	}
	priority, err := encodeJSON(in.Priority)
	if err != nil {
		return nil, err
	}
	sync, err := encodeJSON(in.Sync)
	if err != nil {
		return nil, err
	}
	if upd.TicketTypes != nil {
		set("ticket_types", types != oldTypes)
	}
	if upd.Priority != nil {
		set("priority", priority != oldPriority)
	}
	if upd.Sync != nil {
		set("sync", sync != oldSync)
	}
	if upd.Name != nil && nameNorm(in.Name) != nameNorm(oldName) {
		if err := tx.checkNameFree(ctx, in.Name, id); err != nil {
			return nil, err
		}
	}

	// Credentials: given means changed; the zero String clears.
	box := tx.db.box.Load()
	type secretSet struct {
		column string
		value  []byte
	}
	var secrets []secretSet
	for _, s := range []struct {
		column string
		v      *secret.String
	}{{"password", upd.Password}, {"client_secret", upd.ClientSecret}, {"webhook_secret", upd.WebhookSecret}} {
		if s.v == nil {
			continue
		}
		sealed, err := seal(box, id, s.column, *s.v)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, secretSet{s.column, sealed})
		fields = append(fields, s.column)
		switch s.column {
		case "password":
			in.HasPassword = sealed != nil
		case "client_secret":
			in.HasClientSecret = sealed != nil
		}
	}
	if len(fields) == 0 {
		return in, nil
	}

	in.UpdatedAt = nextUpdatedAt(tx.db.now(), in.UpdatedAt)
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE integration SET name = ?, name_norm = ?, scope = ?, instance_url = ?, local = ?,
		auth_mode = ?, username = ?, client_id = ?, ticket_types = ?, priority = ?, requests_per_second = ?, sync = ?, updated_at = ?
		WHERE id = ?`),
		in.Name, nameNorm(in.Name), string(in.Scope), in.InstanceURL, boolArg(in.Local), string(in.AuthMode), in.Username, in.ClientID,
		types, priority, in.RequestsPerSecond, sync, tx.db.timeArg(in.UpdatedAt), id); err != nil {
		return nil, err
	}
	if upd.WebhookSecret != nil {
		// Before the new secret is written: the one it replaces is read
		// from the row.
		if err := tx.replaceWebhookSecret(ctx, id, *upd.WebhookSecret); err != nil {
			return nil, err
		}
	}
	for _, s := range secrets {
		// Column names come from the fixed list above, never from input.
		if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE integration SET `+s.column+` = ? WHERE id = ?`), s.value, id); err != nil {
			return nil, err
		}
	}
	if upd.Password != nil || upd.ClientSecret != nil {
		// Credentials entered with this update are for the instance URL as
		// it is now. (The service requires both again when the origin
		// changes, and clears whichever is not needed.)
		if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE integration SET credential_origin = ? WHERE id = ?`), Origin(in.InstanceURL), id); err != nil {
			return nil, err
		}
	}
	if err := tx.InsertAudit(ctx, &steward.AuditEvent{At: in.UpdatedAt, Actor: actor, Action: AuditIntegrationUpdated, IntegrationID: id,
		Details: map[string]any{"fields": fields}}); err != nil {
		return nil, err
	}
	return in, nil
}

// MarkIntegrationDeleting moves an integration to the deleting state (its
// assignments are then removed in the background, and it can no longer be
// changed or chosen for new tickets) and audits
// "integration.delete_requested". Marking one that is already deleting
// returns it unchanged, so a stuck deletion can be requested again.
// Errors: CodeNotFound.
func (tx *Tx) MarkIntegrationDeleting(ctx context.Context, id int64, actor string) (*steward.Integration, error) {
	in, err := tx.markIntegrationDeleting(ctx, id, actor)
	if err != nil {
		return nil, fmt.Errorf("delete integration %d: %w", id, mapError(err))
	}
	return in, nil
}

func (tx *Tx) markIntegrationDeleting(ctx context.Context, id int64, actor string) (*steward.Integration, error) {
	in, err := tx.lockIntegration(ctx, id, true)
	if err != nil {
		return nil, err
	}
	if in.State == steward.IntegrationDeleting {
		return in, nil
	}
	in.State = steward.IntegrationDeleting
	in.UpdatedAt = nextUpdatedAt(tx.db.now(), in.UpdatedAt)
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE integration SET state = ?, updated_at = ? WHERE id = ?`),
		string(in.State), tx.db.timeArg(in.UpdatedAt), id); err != nil {
		return nil, err
	}
	if err := tx.InsertAudit(ctx, &steward.AuditEvent{At: in.UpdatedAt, Actor: actor, Action: AuditIntegrationDeleteRequested, IntegrationID: id,
		Details: map[string]any{"name": in.Name}}); err != nil {
		return nil, err
	}
	return in, nil
}

// endedTicketStates is the SQL list of normalized ticket states that end an
// assignment (steward.TicketState.Ended).
const endedTicketStates = `('Resolved', 'Closed', 'Canceled')`

// IntegrationDeletePreview counts what deleting the integration would
// touch. Errors: CodeNotFound.
func (db *DB) IntegrationDeletePreview(ctx context.Context, id int64) (DeletePreview, error) {
	if _, err := db.FindIntegrationByID(ctx, id); err != nil {
		return DeletePreview{}, err
	}
	var p DeletePreview
	// The members of a ticket group share their leader's ticket: they count
	// as assignments, their ticket once.
	const activeOwn = `EXISTS (SELECT 1 FROM assignment g WHERE g.id = t.assignment_id AND g.state = 'active')`
	const activeMember = `EXISTS (SELECT 1 FROM assignment g WHERE g.ticket_group_id = t.group_id AND g.state = 'active')`
	err := db.read.QueryRowContext(ctx, db.bind(`SELECT
		(SELECT COUNT(*) FROM ticket t WHERE t.integration_id = ?),
		(SELECT COUNT(*) FROM ticket t JOIN assignment g ON g.id = t.assignment_id
			WHERE t.integration_id = ? AND g.state = 'active' AND g.ticket_group_id IS NULL)
		+ (SELECT COUNT(*) FROM ticket t JOIN assignment g ON g.ticket_group_id = t.group_id
			WHERE t.integration_id = ? AND t.group_id IS NOT NULL AND g.state = 'active'),
		(SELECT COUNT(*) FROM ticket t WHERE t.integration_id = ? AND t.state NOT IN `+endedTicketStates+`
			AND (`+activeOwn+` OR (t.group_id IS NOT NULL AND `+activeMember+`)))`),
		id, id, id, id).Scan(&p.Tickets, &p.ActiveAssignments, &p.OpenTickets)
	if err != nil {
		return DeletePreview{}, fmt.Errorf("preview deleting integration %d: %w", id, err)
	}
	return p, nil
}

// RemoveIntegrationAssignments ends up to limit active assignments linked to
// the integration (through their tickets) as removed, each with a "removed"
// history event carrying actor and reason, and returns how many it found
// (one that another writer ended meanwhile is left as that writer ended
// it). A resumable job calls it in its own transactions until it returns 0.
func (tx *Tx) RemoveIntegrationAssignments(ctx context.Context, integrationID int64, limit int, actor, reason string) (int, error) {
	n, err := tx.removeIntegrationAssignments(ctx, integrationID, limit, actor, reason)
	if err != nil {
		return n, fmt.Errorf("remove assignments of integration %d: %w", integrationID, mapError(err))
	}
	return n, nil
}

func (tx *Tx) removeIntegrationAssignments(ctx context.Context, integrationID int64, limit int, actor, reason string) (int, error) {
	if limit <= 0 {
		return 0, steward.Errorf(steward.CodeInvalid, "limit must be positive")
	}
	ids, err := tx.FindActiveAssignmentIDsByIntegration(ctx, integrationID, limit)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		_, err := tx.endAssignment(ctx, id, steward.AssignmentRemoved, actor, reason)
		if steward.ErrorCode(err) == steward.CodeConflict {
			continue // ended by another writer since the listing's snapshot
		}
		if err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// DeleteIntegration deletes an integration that is being deleted and has no
// active assignments left, and audits "integration.deleted". Its tickets and
// assignments stay as history and keep the integration's ID. Errors:
// CodeNotFound; CodeConflict when it is not marked deleting or still has
// active assignments.
func (tx *Tx) DeleteIntegration(ctx context.Context, id int64, actor string) error {
	if err := tx.deleteIntegration(ctx, id, actor); err != nil {
		return fmt.Errorf("delete integration %d: %w", id, mapError(err))
	}
	return nil
}

func (tx *Tx) deleteIntegration(ctx context.Context, id int64, actor string) error {
	// Locked before the active assignments are counted: a ticket being
	// created on the integration holds a share lock on its row until it
	// commits (createTicket), so the count below sees it.
	in, err := tx.lockIntegration(ctx, id, true)
	if err != nil {
		return err
	}
	if in.State != steward.IntegrationDeleting {
		return steward.Errorf(steward.CodeConflict, "integration %q must be marked for deletion first", in.Name)
	}
	var active int
	if err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT COUNT(*) FROM ticket t JOIN assignment g ON g.id = t.assignment_id
		WHERE t.integration_id = ? AND g.state = 'active'`), id).Scan(&active); err != nil {
		return err
	}
	if active > 0 {
		return steward.Errorf(steward.CodeConflict, "integration %q still has %d active assignments", in.Name, active)
	}
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`DELETE FROM integration WHERE id = ?`), id); err != nil {
		return err
	}
	return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: actor, Action: AuditIntegrationDeleted, IntegrationID: id,
		Details: map[string]any{"name": in.Name}})
}
