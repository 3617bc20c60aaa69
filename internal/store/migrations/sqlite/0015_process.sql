-- The steward serve processes working on this database and when each last
-- said it was alive (store/heartbeat.go). client_id is the process's River
-- client ID, the name River writes into river_job.attempted_by, so a job
-- left running can be traced to a process that has stopped renewing its
-- heartbeat. With SQLite one process owns the file and the table holds at
-- most a few rows; with PostgreSQL several processes share the database
-- and the job leader retries the running jobs of those gone silent.
CREATE TABLE process (
    id           INTEGER PRIMARY KEY,
    client_id    TEXT    NOT NULL UNIQUE,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
CREATE INDEX process_heartbeat ON process (heartbeat_at);
