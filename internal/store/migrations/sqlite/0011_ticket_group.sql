-- Group tickets (docs/sync.md): a governance rule with group_by
-- recommendation opens one ticket per recommendation for all the findings
-- it assigns. The ticket row is the one of the group's first assignment
-- (its leader); the other members point at the group and read the leader's
-- ticket as theirs. A group is open until its ticket ends or its last
-- member is fixed; the next finding then opens a new group.
CREATE TABLE ticket_group (
    id                   INTEGER PRIMARY KEY,
    rule_id              INTEGER NOT NULL,
    recommendation_id    INTEGER NOT NULL REFERENCES recommendation (id),
    leader_assignment_id INTEGER NOT NULL REFERENCES assignment (id),
    created_at           TEXT NOT NULL,
    closed_at            TEXT
);
CREATE UNIQUE INDEX ticket_group_open ON ticket_group (rule_id, recommendation_id) WHERE closed_at IS NULL;

ALTER TABLE assignment ADD COLUMN ticket_group_id INTEGER REFERENCES ticket_group (id);
-- listed_in_group: the group's ticket names this member (its description
-- when it was sent, or a work note since), so it is noted once.
ALTER TABLE assignment ADD COLUMN listed_in_group INTEGER NOT NULL DEFAULT 0;
CREATE INDEX assignment_ticket_group ON assignment (ticket_group_id, state) WHERE ticket_group_id IS NOT NULL;

ALTER TABLE ticket ADD COLUMN group_id INTEGER;
