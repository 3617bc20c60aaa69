-- Daily caps on the tickets a governance rule opens (docs/rules.md): a
-- ticket beyond its rule's cap waits with status 'deferred' until
-- deferred_until.
--
-- SQLite cannot change a CHECK constraint, so the ticket table is rebuilt
-- (same columns in the same order, plus deferred_until) and its indexes are
-- made again. No table references ticket; the migration runs in one
-- transaction, so a failure leaves the old table as it was.
CREATE TABLE ticket_new (
    assignment_id     INTEGER PRIMARY KEY REFERENCES assignment (id),
    integration_id    INTEGER NOT NULL,
    type              TEXT    NOT NULL,
    table_name        TEXT    NOT NULL,
    correlation_id    TEXT    NOT NULL UNIQUE,
    status            TEXT    NOT NULL,
    error             TEXT    NOT NULL DEFAULT '',
    attempts          INTEGER NOT NULL DEFAULT 0,
    sys_id            TEXT    NOT NULL DEFAULT '',
    number            TEXT    NOT NULL DEFAULT '',
    link              TEXT    NOT NULL DEFAULT '',
    raw_state         TEXT    NOT NULL DEFAULT '',
    state_label       TEXT    NOT NULL DEFAULT '',
    state             TEXT    NOT NULL DEFAULT '',
    assignee_email    TEXT    NOT NULL DEFAULT '',
    remote_updated_at INTEGER,
    mod_count         INTEGER NOT NULL DEFAULT 0,
    last_synced_at    INTEGER,
    short_description TEXT    NOT NULL DEFAULT '',
    description       TEXT    NOT NULL DEFAULT '',
    caller_email      TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    flag              TEXT    NOT NULL DEFAULT '',
    ended_state       TEXT    NOT NULL DEFAULT '',
    sync_error        TEXT    NOT NULL DEFAULT '',
    remote_ended_at   INTEGER,
    cnf_watch         INTEGER NOT NULL DEFAULT 0,
    -- When a deferred ticket will be sent: the start (00:00 UTC) of the
    -- first day its rule's cap has room on. NULL for tickets never
    -- deferred; kept as history once the ticket is sent.
    deferred_until    INTEGER,
    CHECK (status IN ('pending', 'deferred', 'created', 'retrying', 'failed'))
);

INSERT INTO ticket_new (assignment_id, integration_id, type, table_name, correlation_id, status, error, attempts,
    sys_id, number, link, raw_state, state_label, state, assignee_email, remote_updated_at, mod_count, last_synced_at,
    short_description, description, caller_email, created_at, updated_at, flag, ended_state, sync_error,
    remote_ended_at, cnf_watch)
SELECT assignment_id, integration_id, type, table_name, correlation_id, status, error, attempts,
    sys_id, number, link, raw_state, state_label, state, assignee_email, remote_updated_at, mod_count, last_synced_at,
    short_description, description, caller_email, created_at, updated_at, flag, ended_state, sync_error,
    remote_ended_at, cnf_watch
FROM ticket;

DROP TABLE ticket;
ALTER TABLE ticket_new RENAME TO ticket;

CREATE INDEX ticket_integration ON ticket (integration_id, assignment_id);
CREATE INDEX ticket_sys_id ON ticket (integration_id, sys_id);
CREATE INDEX ticket_cnf_watch ON ticket (assignment_id) WHERE cnf_watch = 1;
CREATE INDEX ticket_integration_table ON ticket (integration_id, table_name);

-- rule_ticket_day counts, per rule and UTC day, the tickets sent that day
-- plus those deferred to it (store.DB.MarkTicketAttempt checks and raises
-- it in the one write transaction that records a ticket's first send, so
-- concurrent workers cannot pass a cap). day is the day's 00:00 UTC in Unix
-- microseconds. rule_id is not a foreign key: a deleted rule's rows are
-- never read again. A rule's past days are deleted when it counts its
-- first ticket of a new day.
CREATE TABLE rule_ticket_day (
    rule_id INTEGER NOT NULL,
    day     INTEGER NOT NULL,
    tickets INTEGER NOT NULL,
    PRIMARY KEY (rule_id, day)
) WITHOUT ROWID;
