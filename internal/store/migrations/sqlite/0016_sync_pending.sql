-- Records a webhook announced as changed, waiting to be read back and
-- applied (docs/sync.md, "How changes arrive"). The webhook answers after
-- this durable insert; the drainer reads each integration's rows in
-- sys_idIN batches and applies each batch in one transaction that also
-- deletes the rows it covered. One row per record: a second announcement
-- keeps the highest sys_mod_count (and a delete), so duplicate deliveries
-- cost one read. Times are Unix microseconds of the database's clock.
--
-- deleted: a delete event was announced (never skipped as already
-- applied). not_before: the row is not drained before then; it holds a
-- failed read's backoff and, on PostgreSQL, a drainer's claim (several
-- processes drain; a claim lapses if its process dies). attempts counts
-- failed reads since the last success, for the backoff.
CREATE TABLE sync_pending (
    integration_id INTEGER NOT NULL REFERENCES integration (id) ON DELETE CASCADE,
    table_name     TEXT    NOT NULL,
    sys_id         TEXT    NOT NULL,
    mod_count      INTEGER NOT NULL,
    deleted        INTEGER NOT NULL DEFAULT 0,
    received_at    INTEGER NOT NULL,
    not_before     INTEGER NOT NULL DEFAULT 0,
    attempts       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (integration_id, table_name, sys_id),
    CHECK (deleted IN (0, 1))
);
CREATE INDEX sync_pending_received ON sync_pending (integration_id, received_at);
