-- Bidirectional ticket synchronization (docs/sync.md): per-integration sync
-- state, and what a ticket shows beyond its remote fields.
--
-- Same conventions as 0001/0002: BIGINT Unix microseconds for times, TEXT
-- JSON documents.

-- flag: '' | 'deleted_in_itsm' | 'closed_not_fixed' (shown with the ticket).
-- ended_state: the state label of the version that ended the assignment
-- ("Resolved"), kept for history. sync_error: the last Steward → ITSM write
-- ServiceNow refused ("resolution refused by ServiceNow (state New)").
-- remote_ended_at: sys_updated_on of the version that ended the assignment.
-- cnf_watch: 1 while a later scan may still find the resource unhealthy
-- (closed, not fixed); cleared once decided.
ALTER TABLE ticket ADD COLUMN flag TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE ticket ADD COLUMN ended_state TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE ticket ADD COLUMN sync_error TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE ticket ADD COLUMN remote_ended_at BIGINT;
ALTER TABLE ticket ADD COLUMN cnf_watch BIGINT NOT NULL DEFAULT 0;

-- The ingest hook reads the watched tickets after every chunk: a partial
-- index keeps that proportional to the tickets ended since the last scan.
CREATE INDEX ticket_cnf_watch ON ticket (assignment_id) WHERE cnf_watch = 1;
-- Which tables an integration's tickets live in (one probe per table).
CREATE INDEX ticket_integration_table ON ticket (integration_id, table_name);

-- One row per integration. watermarks: JSON map table -> Unix microseconds
-- of the newest sys_updated_on applied by a completed poll.
-- applied_through: start of the last successful poll: every change made
-- before it has been applied (sync lag = now - applied_through).
-- last_reconcile: JSON ReconcileReport.
CREATE TABLE sync_state (
    integration_id            BIGINT           PRIMARY KEY,
    watermarks                TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    applied_through           BIGINT,
    last_poll_at              BIGINT,
    last_poll_success_at      BIGINT,
    last_reconcile_at         BIGINT,
    last_reconcile_success_at BIGINT,
    last_webhook_at           BIGINT,
    last_error                TEXT COLLATE "C" NOT NULL DEFAULT '',
    last_reconcile            TEXT COLLATE "C" NOT NULL DEFAULT '{}'
);
