package store

import (
	"context"
	"fmt"

	"github.com/stewardhq/steward"
)

// JoinTicketGroup puts assignment assignmentID, just created by rule
// ruleID, into the rule's open ticket group of its recommendation, opening
// one (with the assignment as its leader, whose ticket the group shares)
// when there is none. It returns the group's ID and whether the assignment
// leads it. Errors: CodeNotFound for a missing assignment.
func (tx *Tx) JoinTicketGroup(ctx context.Context, assignmentID, ruleID int64) (int64, bool, error) {
	id, leader, err := tx.joinTicketGroup(ctx, assignmentID, ruleID)
	if err != nil {
		return 0, false, fmt.Errorf("join ticket group of rule %d: %w", ruleID, mapError(err))
	}
	return id, leader, nil
}

func (tx *Tx) joinTicketGroup(ctx context.Context, assignmentID, ruleID int64) (int64, bool, error) {
	var recID int64
	err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT a.recommendation_id FROM assignment g JOIN assessment a ON a.id = g.assessment_id
		WHERE g.id = ?`), assignmentID).Scan(&recID)
	if isNoRows(err) {
		return 0, false, steward.Errorf(steward.CodeNotFound, "assignment %d not found", assignmentID)
	} else if err != nil {
		return 0, false, err
	}
	groupID, leader, err := tx.openTicketGroup(ctx, assignmentID, ruleID, recID)
	if err != nil {
		return 0, false, err
	}
	_, err = tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE assignment SET ticket_group_id = ? WHERE id = ?`), groupID, assignmentID)
	return groupID, leader, err
}

// openTicketGroup returns the rule's open group of the recommendation,
// locked (PostgreSQL) so that it cannot close while the assignment joins
// it, or opens one led by assignmentID. When another writer opened one
// first (PostgreSQL), ticket_group_open refuses the second, and the
// assignment joins the first one's group.
func (tx *Tx) openTicketGroup(ctx context.Context, assignmentID, ruleID, recID int64) (int64, bool, error) {
	for range 2 {
		var groupID int64
		err := tx.tx.QueryRowContext(ctx, tx.db.bind(`SELECT id FROM ticket_group WHERE rule_id = ? AND recommendation_id = ? AND closed_at IS NULL`+
			tx.db.forUpdate()), ruleID, recID).Scan(&groupID)
		if err == nil || !isNoRows(err) {
			return groupID, false, err
		}
		err = tx.tx.QueryRowContext(ctx, tx.db.bind(`INSERT INTO ticket_group (rule_id, recommendation_id, leader_assignment_id, created_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (rule_id, recommendation_id) WHERE closed_at IS NULL DO NOTHING RETURNING id`),
			ruleID, recID, assignmentID, tx.db.timeArg(tx.db.now())).Scan(&groupID)
		if err == nil {
			return groupID, true, nil
		}
		if !isNoRows(err) {
			return 0, false, err
		}
	}
	return 0, false, steward.Errorf(steward.CodeUnavailable, "the ticket group of rule %d kept changing; try again", ruleID)
}

// CloseTicketGroup closes a group: the next finding its rule assigns
// opens a new one (and a new ticket). Closing a closed group does nothing.
func (tx *Tx) CloseTicketGroup(ctx context.Context, groupID int64) error {
	_, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE ticket_group SET closed_at = ? WHERE id = ? AND closed_at IS NULL`),
		tx.db.timeArg(tx.db.now()), groupID)
	if err != nil {
		return fmt.Errorf("close ticket group %d: %w", groupID, err)
	}
	return nil
}

// GroupMembers returns the member assignments of a ticket group in the
// order they joined, with the shared ticket.
func (db *DB) GroupMembers(ctx context.Context, groupID int64) ([]*steward.Assignment, error) {
	return groupMembers(ctx, db, db.read, groupID, "")
}

// GroupMembers is DB.GroupMembers inside the transaction. On PostgreSQL
// it locks the members' rows until the transaction ends: a write
// transaction reads them to change them.
func (tx *Tx) GroupMembers(ctx context.Context, groupID int64) ([]*steward.Assignment, error) {
	return groupMembers(ctx, tx.db, tx.tx, groupID, tx.db.forUpdateOf("g"))
}

func groupMembers(ctx context.Context, db *DB, q querier, groupID int64, lock string) ([]*steward.Assignment, error) {
	rows, err := q.QueryContext(ctx, db.bind(assignmentSelect+` WHERE g.ticket_group_id = ? ORDER BY g.id`+lock), groupID)
	if err != nil {
		return nil, fmt.Errorf("find members of ticket group %d: %w", groupID, err)
	}
	defer rows.Close()
	var out []*steward.Assignment
	for rows.Next() {
		a, err := scanAssignment(rows)
		if err != nil {
			return nil, fmt.Errorf("find members of ticket group %d: %w", groupID, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ListedInGroup reports whether the group ticket of assignment id already
// names it.
func (db *DB) ListedInGroup(ctx context.Context, id int64) (bool, error) {
	var listed bool
	if err := db.read.QueryRowContext(ctx, db.bind(`SELECT listed_in_group FROM assignment WHERE id = ?`), id).Scan(&listed); err != nil {
		return false, fmt.Errorf("read assignment %d: %w", id, mapError(err))
	}
	return listed, nil
}

// MarkListedInGroup records that the group ticket names the assignments.
func (tx *Tx) MarkListedInGroup(ctx context.Context, ids []int64) error {
	for _, id := range ids {
		if _, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE assignment SET listed_in_group = 1 WHERE id = ?`), id); err != nil {
			return fmt.Errorf("mark assignment %d listed: %w", id, err)
		}
	}
	return nil
}

// GroupMembersFixed returns which of the assignments an import completed
// are members of a group whose ticket is open and which still has active
// members: their fix is noted on the shared ticket, which stays open. (The
// last member's fix resolves it: TicketsToResolve.)
func (tx *Tx) GroupMembersFixed(ctx context.Context, completed []int64) ([]int64, error) {
	out, err := queryInIDs(ctx, tx, `SELECT g.id FROM assignment g
		JOIN ticket_group tg ON tg.id = g.ticket_group_id
		JOIN ticket t ON t.assignment_id = tg.leader_assignment_id
		WHERE g.id IN (%s) AND t.status <> 'failed' AND t.state NOT IN ('Resolved', 'Closed', 'Canceled') AND t.flag <> 'deleted_in_itsm'
		AND EXISTS (SELECT 1 FROM assignment m WHERE m.ticket_group_id = g.ticket_group_id AND m.state = 'active')
		ORDER BY g.id`, nil, completed)
	if err != nil {
		return nil, fmt.Errorf("find fixed group members: %w", err)
	}
	return out, nil
}

// CloseEmptyTicketGroups closes the groups of the given (just completed)
// assignments that have no active member left.
func (tx *Tx) CloseEmptyTicketGroups(ctx context.Context, completed []int64) error {
	for start := 0; start < len(completed); start += inBatch {
		batch := completed[start:min(start+inBatch, len(completed))]
		args := []any{tx.db.timeArg(tx.db.now())}
		for _, id := range batch {
			args = append(args, id)
		}
		// PostgreSQL: lock the groups first (a joining assignment holds its
		// group's lock until it commits), so the UPDATE's snapshot, taken
		// after, sees every member that joined.
		if err := tx.lock(ctx, `SELECT id FROM ticket_group WHERE closed_at IS NULL
			AND id IN (SELECT ticket_group_id FROM assignment WHERE id IN (`+placeholders(len(batch))+`) AND ticket_group_id IS NOT NULL)
			ORDER BY id FOR UPDATE`, args[1:]...); err != nil {
			return fmt.Errorf("close empty ticket groups: %w", err)
		}
		_, err := tx.tx.ExecContext(ctx, tx.db.bind(`UPDATE ticket_group SET closed_at = ? WHERE closed_at IS NULL
			AND id IN (SELECT ticket_group_id FROM assignment WHERE id IN (`+placeholders(len(batch))+`) AND ticket_group_id IS NOT NULL)
			AND NOT EXISTS (SELECT 1 FROM assignment m WHERE m.ticket_group_id = ticket_group.id AND m.state = 'active')`), args...)
		if err != nil {
			return fmt.Errorf("close empty ticket groups: %w", err)
		}
	}
	return nil
}

// OpenTicketGroups returns the recommendation keys of the open ticket
// groups by the normalized name of their rule (lower case, trimmed): a
// finding such a rule assigns on one of them joins a ticket instead of
// opening one.
func (db *DB) OpenTicketGroups(ctx context.Context) (map[string]map[string]bool, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT r.name_norm, rec.key FROM ticket_group tg
		JOIN rule r ON r.id = tg.rule_id JOIN recommendation rec ON rec.id = tg.recommendation_id
		WHERE tg.closed_at IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("find open ticket groups: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]bool{}
	for rows.Next() {
		var name, key string
		if err := rows.Scan(&name, &key); err != nil {
			return nil, fmt.Errorf("find open ticket groups: %w", err)
		}
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		out[name][key] = true
	}
	return out, rows.Err()
}
