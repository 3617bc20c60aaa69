-- Daily caps on the tickets a governance rule opens (docs/rules.md): a
-- ticket beyond its rule's cap waits with status 'deferred' until
-- deferred_until.
--
-- SQLite rebuilds the ticket table to change its CHECK constraint; here the
-- constraint is replaced and the column added, which ends the same: the
-- same columns in the same order (deferred_until after cnf_watch), the same
-- indexes.
ALTER TABLE ticket DROP CONSTRAINT ticket_status_check;
ALTER TABLE ticket ADD CONSTRAINT ticket_status_check
    CHECK (status IN ('pending', 'deferred', 'created', 'retrying', 'failed'));
-- When a deferred ticket will be sent: the start (00:00 UTC) of the first
-- day its rule's cap has room on. NULL for tickets never deferred; kept as
-- history once the ticket is sent.
ALTER TABLE ticket ADD COLUMN deferred_until BIGINT;

-- rule_ticket_day counts, per rule and UTC day, the tickets sent that day
-- plus those deferred to it (store.DB.MarkTicketAttempt checks and raises
-- it in the one write transaction that records a ticket's first send, so
-- concurrent workers cannot pass a cap). day is the day's 00:00 UTC in Unix
-- microseconds. rule_id is not a foreign key: a deleted rule's rows are
-- never read again. A rule's past days are deleted when it counts its
-- first ticket of a new day.
CREATE TABLE rule_ticket_day (
    rule_id BIGINT NOT NULL,
    day     BIGINT NOT NULL,
    tickets BIGINT NOT NULL,
    PRIMARY KEY (rule_id, day)
);
