package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/stewardhq/steward"
)

// Audit actions for governance rules and scope tags.
const (
	AuditRuleCreated  = "rule.created"
	AuditRuleUpdated  = "rule.updated"
	AuditRuleDeleted  = "rule.deleted"
	AuditScopeTagsSet = "scope_tags.set"
)

const ruleColumns = `id, name, description, scope, exclude, priority, enabled, conditions, owner_email, owner_tag, owner_fallback,
	due_in_days, grace_period, owner_email_opt_out, manager_email_opt_out,
	ticket_integration, ticket_type, ticket_group_by, ticket_daily_cap, created_at, created_by, updated_at`

func scanRule(sc interface{ Scan(...any) error }) (*steward.Rule, error) {
	r := new(steward.Rule)
	var exclude, conditions string
	var created, updated dbTime
	var t steward.RuleTicket
	if err := sc.Scan(&r.ID, &r.Name, &r.Description, &r.Scope, &exclude, &r.Priority, &r.Enabled, &conditions,
		&r.Owner.Email, &r.Owner.Tag, &r.Owner.Fallback, &r.DueInDays, &r.GracePeriod, &r.OwnerEmailOptOut, &r.ManagerEmailOptOut,
		&t.Integration, &t.Type, &t.GroupBy, &t.DailyCap, &created, &r.CreatedBy, &updated); err != nil {
		return nil, err
	}
	r.CreatedAt, r.UpdatedAt = created.T, updated.T
	if err := decodeJSON(exclude, &r.Exclude); err != nil {
		return nil, fmt.Errorf("decode exclusions of rule %d: %w", r.ID, err)
	}
	if err := decodeJSON(conditions, &r.When); err != nil {
		return nil, fmt.Errorf("decode conditions of rule %d: %w", r.ID, err)
	}
	if t.Integration != "" {
		r.Ticket = &t
	}
	return r, nil
}

// ruleArgs are the stored columns of r after id, in ruleColumns order up
// to ticket_daily_cap.
func ruleArgs(r *steward.Rule) ([]any, error) {
	exclude := r.Exclude
	if exclude == nil {
		exclude = []steward.Scope{}
	}
	ex, err := encodeJSON(exclude)
	if err != nil {
		return nil, err
	}
	cond, err := encodeJSON(r.When)
	if err != nil {
		return nil, err
	}
	var t steward.RuleTicket
	if r.Ticket != nil {
		t = *r.Ticket
	}
	return []any{r.Name, nameNorm(r.Name), r.Description, string(r.Scope), ex, r.Priority, boolArg(r.Enabled), cond,
		r.Owner.Email, r.Owner.Tag, r.Owner.Fallback, r.DueInDays, boolArg(r.GracePeriod), boolArg(r.OwnerEmailOptOut), boolArg(r.ManagerEmailOptOut),
		t.Integration, string(t.Type), t.GroupBy, t.DailyCap}, nil
}

// prepareRule normalizes and validates r and checks that its integration
// exists.
func (tx *Tx) prepareRule(ctx context.Context, r *steward.Rule) error {
	r.Normalize()
	if err := r.Validate(); err != nil {
		return err
	}
	if r.Ticket == nil {
		return nil
	}
	var state string
	err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT state FROM integration WHERE name_norm = ?`), nameNorm(r.Ticket.Integration)).Scan(&state)
	if isNoRows(err) {
		return steward.AtField("ticket.integration", steward.Errorf(steward.CodeInvalid, "ticket.integration %q: no integration has that name", r.Ticket.Integration))
	}
	if err != nil {
		return fmt.Errorf("look up integration %q: %w", r.Ticket.Integration, err)
	}
	if state != string(steward.IntegrationActive) {
		return steward.AtField("ticket.integration", steward.Errorf(steward.CodeInvalid, "ticket.integration %q is being deleted", r.Ticket.Integration))
	}
	return nil
}

// CreateRule validates and stores a new rule, sets its ID and times, and
// audits it as actor. Errors: CodeInvalid naming the bad field (an unknown
// integration included); CodeConflict when the name is taken or an enabled
// rule has the same priority on an overlapping scope.
func (tx *Tx) CreateRule(ctx context.Context, r *steward.Rule, actor string) error {
	if err := tx.writeRule(ctx, r, actor); err != nil {
		return err
	}
	return tx.checkClashes(ctx, r)
}

// UpdateRule replaces rule id with r (its ID, creation time and creator are
// kept) and audits the change as actor. Errors: as CreateRule, and
// CodeNotFound.
func (tx *Tx) UpdateRule(ctx context.Context, id int64, r *steward.Rule, actor string) error {
	r.ID = id
	if err := tx.writeRule(ctx, r, actor); err != nil {
		return err
	}
	return tx.checkClashes(ctx, r)
}

// RuleChanges is a set of rule writes made in one transaction, as applying
// a rules file does.
type RuleChanges struct {
	Create []*steward.Rule
	Update []*steward.Rule // by ID
	Delete []int64
}

// ApplyRules makes every change, then checks the rules as a whole, so two
// rules may swap priorities in one step. Errors: as CreateRule and
// UpdateRule; nothing is written when any change fails.
func (tx *Tx) ApplyRules(ctx context.Context, ch RuleChanges, actor string) error {
	for _, id := range ch.Delete {
		if _, err := tx.DeleteRule(ctx, id, actor); err != nil {
			return err
		}
	}
	for _, r := range ch.Update {
		if err := tx.writeRule(ctx, r, actor); err != nil {
			return err
		}
	}
	for _, r := range ch.Create {
		r.ID = 0
		if err := tx.writeRule(ctx, r, actor); err != nil {
			return err
		}
	}
	for _, r := range slices.Concat(ch.Update, ch.Create) {
		if err := tx.checkClashes(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// writeRule inserts r (ID 0) or updates the row r.ID, without the clash
// check.
func (tx *Tx) writeRule(ctx context.Context, r *steward.Rule, actor string) error {
	if err := tx.lockRules(ctx); err != nil {
		return err
	}
	if err := tx.prepareRule(ctx, r); err != nil {
		return err
	}
	args, err := ruleArgs(r)
	if err != nil {
		return fmt.Errorf("encode rule %q: %w", r.Name, err)
	}
	now := tx.db.now()
	action := AuditRuleCreated
	details := map[string]any{"name": r.Name, "priority": r.Priority, "scope": string(r.Scope), "enabled": r.Enabled}
	var saved *steward.Rule
	if r.ID == 0 {
		saved, err = scanRule(tx.tx.QueryRowContext(ctx, tx.db.bind(`INSERT INTO rule (name, name_norm, description, scope, exclude, priority, enabled, conditions,
			owner_email, owner_tag, owner_fallback, due_in_days, grace_period, owner_email_opt_out, manager_email_opt_out,
			ticket_integration, ticket_type, ticket_group_by, ticket_daily_cap, created_at, created_by, updated_at)
			VALUES (`+placeholders(22)+`) RETURNING `+ruleColumns),
			append(args, tx.db.timeArg(now), actor, tx.db.timeArg(now))...))
	} else {
		prev, ferr := findRule(ctx, tx.db, tx.tx, strconv.FormatInt(r.ID, 10), tx.db.forUpdate())
		if ferr != nil {
			return ferr
		}
		action = AuditRuleUpdated
		details["id"] = r.ID
		details["changed"] = ChangedRuleFields(prev, r)
		saved, err = scanRule(tx.tx.QueryRowContext(ctx, tx.db.bind(`UPDATE rule SET name = ?, name_norm = ?, description = ?, scope = ?, exclude = ?,
			priority = ?, enabled = ?, conditions = ?, owner_email = ?, owner_tag = ?, owner_fallback = ?, due_in_days = ?,
			grace_period = ?, owner_email_opt_out = ?, manager_email_opt_out = ?, ticket_integration = ?, ticket_type = ?,
			ticket_group_by = ?, ticket_daily_cap = ?, updated_at = ? WHERE id = ? RETURNING `+ruleColumns),
			append(args, tx.db.timeArg(nextUpdatedAt(now, prev.UpdatedAt)), r.ID)...))
	}
	if err != nil {
		if steward.ErrorCode(mapError(err)) == steward.CodeConflict {
			return steward.AtField("name", steward.Errorf(steward.CodeConflict, "name: a rule named %q already exists", r.Name))
		}
		return fmt.Errorf("save rule %q: %w", r.Name, mapError(err))
	}
	*r = *saved
	details["id"] = r.ID
	return tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: actor, Action: action, Details: details})
}

// lockRules makes rule writes take turns until the transaction ends
// (PostgreSQL): the clash check reads every enabled rule of a priority,
// and two writers that each passed it could together make a clash.
func (tx *Tx) lockRules(ctx context.Context) error {
	if err := tx.advisoryLock(ctx, ruleLockKey); err != nil {
		return fmt.Errorf("save rules: %w", err)
	}
	return nil
}

// checkClashes refuses r when another enabled rule has its priority on an
// overlapping scope (steward.Rule.Clashes), naming both.
func (tx *Tx) checkClashes(ctx context.Context, r *steward.Rule) error {
	if !r.Enabled {
		return nil
	}
	rows, err := tx.tx.QueryContext(ctx, tx.db.bind(`SELECT `+ruleColumns+` FROM rule WHERE priority = ? AND enabled = 1 AND id <> ? ORDER BY id`), r.Priority, r.ID)
	if err != nil {
		return fmt.Errorf("check rule priorities: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		o, err := scanRule(rows)
		if err != nil {
			return fmt.Errorf("check rule priorities: %w", err)
		}
		if r.Clashes(o) {
			return steward.ClashError(r, o)
		}
	}
	return rows.Err()
}

// DeleteRule deletes a rule and audits it as actor. What the rule assigned
// stays. Errors: CodeNotFound.
func (tx *Tx) DeleteRule(ctx context.Context, id int64, actor string) (*steward.Rule, error) {
	if err := tx.lockRules(ctx); err != nil {
		return nil, err
	}
	r, err := findRule(ctx, tx.db, tx.tx, strconv.FormatInt(id, 10), tx.db.forUpdate())
	if err != nil {
		return nil, err
	}
	if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`DELETE FROM rule WHERE id = ?`), id); err != nil {
		return nil, fmt.Errorf("delete rule %d: %w", id, mapError(err))
	}
	if err := tx.InsertAudit(ctx, &steward.AuditEvent{Actor: actor, Action: AuditRuleDeleted,
		Details: map[string]any{"id": r.ID, "name": r.Name}}); err != nil {
		return nil, err
	}
	return r, nil
}

// FindRules lists every rule, by priority then name.
func (db *DB) FindRules(ctx context.Context) ([]*steward.Rule, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+ruleColumns+` FROM rule ORDER BY priority, name_norm`)
	if err != nil {
		return nil, fmt.Errorf("find rules: %w", err)
	}
	defer rows.Close()
	out := []*steward.Rule{}
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, fmt.Errorf("find rules: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find rules: %w", err)
	}
	return out, nil
}

// FindRule returns the rule whose ID is ref (all digits) or whose name is
// ref in any letter case. Errors: CodeNotFound.
func (db *DB) FindRule(ctx context.Context, ref string) (*steward.Rule, error) {
	return findRule(ctx, db, db.read, ref, "")
}

func findRule(ctx context.Context, db *DB, q querier, ref, lock string) (*steward.Rule, error) {
	var (
		r   *steward.Rule
		err error
	)
	if id, perr := strconv.ParseInt(ref, 10, 64); perr == nil {
		r, err = scanRule(q.QueryRowContext(ctx, db.bind(`SELECT `+ruleColumns+` FROM rule WHERE id = ?`+lock), id))
	} else {
		r, err = scanRule(q.QueryRowContext(ctx, db.bind(`SELECT `+ruleColumns+` FROM rule WHERE name_norm = ?`+lock), nameNorm(ref)))
	}
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "rule %q not found", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("find rule %q: %w", ref, err)
	}
	return r, nil
}

// ChangedRuleFields names the rule-file fields in which a and b differ
// (IDs, times and creators aside).
func ChangedRuleFields(a, b *steward.Rule) []string {
	type field struct {
		name string
		a, b any
	}
	fields := []field{
		{"name", a.Name, b.Name},
		{"description", a.Description, b.Description},
		{"scope", a.Scope, b.Scope},
		{"exclude", a.Exclude, b.Exclude},
		{"priority", a.Priority, b.Priority},
		{"enabled", a.Enabled, b.Enabled},
		{"when", a.When, b.When},
		{"owner", a.Owner, b.Owner},
		{"due_in_days", a.DueInDays, b.DueInDays},
		{"grace_period", a.GracePeriod, b.GracePeriod},
		{"owner_email_opt_out", a.OwnerEmailOptOut, b.OwnerEmailOptOut},
		{"manager_email_opt_out", a.ManagerEmailOptOut, b.ManagerEmailOptOut},
		{"ticket", a.Ticket, b.Ticket},
	}
	out := []string{}
	for _, f := range fields {
		// Compared as JSON, so nil and empty lists are equal.
		ja, _ := json.Marshal(f.a)
		jb, _ := json.Marshal(f.b)
		if string(ja) != string(jb) && !(emptyJSON(ja) && emptyJSON(jb)) {
			out = append(out, f.name)
		}
	}
	return out
}

func emptyJSON(b []byte) bool {
	s := string(b)
	return s == "null" || s == "[]" || s == "{}" || s == `""`
}

// SetScopeTags replaces the tags of one scope level (normalized) and audits
// it as actor; no tags removes the entry. Errors: CodeInvalid for a bad
// scope or an empty key.
func (tx *Tx) SetScopeTags(ctx context.Context, scope steward.Scope, tags map[string]string, actor string) (*steward.ScopeTags, error) {
	if strings.TrimSpace(string(scope)) == "" || scope.Normalize() == "/" {
		return nil, steward.Errorf(steward.CodeInvalid, "scope is missing: name a resource group, subscription, account or project")
	}
	if err := scope.Validate(); err != nil {
		return nil, err
	}
	scope = scope.Normalize()
	for k := range tags {
		if strings.TrimSpace(k) == "" {
			return nil, steward.Errorf(steward.CodeInvalid, "tags has an empty key")
		}
	}
	if err := tx.lockScopeTags(ctx, scope); err != nil {
		return nil, err
	}
	now := tx.db.now()
	if len(tags) == 0 {
		if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`DELETE FROM scope_tag WHERE scope = ?`), string(scope)); err != nil {
			return nil, fmt.Errorf("set scope tags: %w", mapError(err))
		}
		tags = map[string]string{}
	} else {
		enc, err := encodeJSON(tags)
		if err != nil {
			return nil, fmt.Errorf("encode scope tags: %w", err)
		}
		if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`INSERT INTO scope_tag (scope, tags, updated_at, updated_by) VALUES (?, ?, ?, ?)
			ON CONFLICT (scope) DO UPDATE SET tags = excluded.tags, updated_at = excluded.updated_at, updated_by = excluded.updated_by`),
			string(scope), enc, tx.db.timeArg(now), actor); err != nil {
			return nil, fmt.Errorf("set scope tags: %w", mapError(err))
		}
	}
	if err := tx.InsertAudit(ctx, &steward.AuditEvent{At: now, Actor: actor, Action: AuditScopeTagsSet,
		Details: map[string]any{"scope": string(scope), "tags": tags}}); err != nil {
		return nil, err
	}
	return &steward.ScopeTags{Scope: scope, Tags: tags, UpdatedAt: now, UpdatedBy: actor}, nil
}

// lockScopeTags makes writes of one scope's tags take turns until the
// transaction ends (PostgreSQL): MergeScopeTags reads the tags it adds to,
// and the row may not exist yet, so there is no row to lock. Scopes whose
// hashes collide merely wait for each other.
func (tx *Tx) lockScopeTags(ctx context.Context, scope steward.Scope) error {
	if !tx.db.Postgres() {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(scopeTagLockSpace), string(scope)); err != nil {
		return fmt.Errorf("lock tags of scope %s: %w", scope, mapError(err))
	}
	return nil
}

// FindScopeTags lists every scope's tags, by scope.
func (db *DB) FindScopeTags(ctx context.Context) ([]*steward.ScopeTags, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT scope, tags, updated_at, updated_by FROM scope_tag ORDER BY scope`)
	if err != nil {
		return nil, fmt.Errorf("find scope tags: %w", err)
	}
	defer rows.Close()
	out := []*steward.ScopeTags{}
	for rows.Next() {
		st := new(steward.ScopeTags)
		var tags string
		var at dbTime
		if err := rows.Scan(&st.Scope, &tags, &at, &st.UpdatedBy); err != nil {
			return nil, fmt.Errorf("find scope tags: %w", err)
		}
		st.UpdatedAt = at.T
		if err := decodeJSON(tags, &st.Tags); err != nil {
			return nil, fmt.Errorf("decode tags of scope %s: %w", st.Scope, err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find scope tags: %w", err)
	}
	return out, nil
}

// ScopeTagMap is every scope's tags keyed by normalized scope, for owner
// lookups.
func (db *DB) ScopeTagMap(ctx context.Context) (map[steward.Scope]map[string]string, error) {
	all, err := db.FindScopeTags(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[steward.Scope]map[string]string, len(all))
	for _, st := range all {
		out[st.Scope] = st.Tags
	}
	return out, nil
}

// ForEachUnassignedUnhealthy calls fn for every Unhealthy assessment in
// scope without an active assignment, with its resource (tags included)
// and recommendation, in assessment ID order. fn's error stops the walk.
func (db *DB) ForEachUnassignedUnhealthy(ctx context.Context, scope steward.Scope,
	fn func(*steward.Assessment, *steward.Resource, *steward.Recommendation) error) error {
	cond, args, err := scopeRange("res.norm_id", scope)
	if err != nil {
		return err
	}
	q := `SELECT a.id, r.key, r.severity, r.source, res.resource_id, res.name, res.type, res.cloud, res.tags
		FROM assessment a
		JOIN recommendation r ON r.id = a.recommendation_id
		JOIN resource res ON res.id = a.resource_id
		WHERE a.status = 'Unhealthy'
		AND NOT EXISTS (SELECT 1 FROM assignment g WHERE g.assessment_id = a.id AND g.state = 'active')`
	if cond != "" {
		q += " AND " + cond
	}
	rows, err := db.read.QueryContext(ctx, db.bind(q+" ORDER BY a.id"), args...)
	if err != nil {
		return fmt.Errorf("find unassigned assessments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			a    steward.Assessment
			res  steward.Resource
			rec  steward.Recommendation
			tags string
		)
		if err := rows.Scan(&a.ID, &rec.Key, &rec.Severity, &rec.Source, &res.ID, &res.Name, &res.Type, &res.Cloud, &tags); err != nil {
			return fmt.Errorf("find unassigned assessments: %w", err)
		}
		if err := decodeJSON(tags, &res.Tags); err != nil {
			return fmt.Errorf("decode tags of %s: %w", res.ID, err)
		}
		a.Status, a.RecommendationKey, a.ResourceID = steward.StatusUnhealthy, rec.Key, res.ID
		a.Severity, a.Cloud, a.ResourceName, a.ResourceType = rec.Severity, res.Cloud, res.Name, res.Type
		if err := fn(&a, &res, &rec); err != nil {
			return err
		}
	}
	return rows.Err()
}
