-- State that several `steward serve` processes on one database must share
-- (docs/architecture.md, "Which state lives where"). With SQLite one process
-- owns the file (flock) and keeps this state in memory; the tables exist in
-- both stores so that migration numbers mean the same everywhere and
-- `steward migrate copy` needs no special case. Times are Unix
-- microseconds of the database's clock, never a process's.

-- The shared request budget of an integration (GCRA): tat is the
-- theoretical arrival time after the last slot handed out. A request
-- reserves its slot by moving tat one emission interval on, in one
-- statement, and waits until its slot.
CREATE TABLE rate_budget (
    integration_id INTEGER PRIMARY KEY REFERENCES integration (id) ON DELETE CASCADE,
    tat            INTEGER NOT NULL
);

-- One running poll or reconcile per integration across processes: a lease
-- that its holder renews while it runs and that lapses at expires_at when
-- the holder dies. done/total are the run's progress (written at most
-- about once a second).
CREATE TABLE sync_lease (
    integration_id INTEGER NOT NULL REFERENCES integration (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL,
    holder         TEXT    NOT NULL,
    started_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    done           INTEGER NOT NULL DEFAULT 0,
    total          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (integration_id, kind),
    CHECK (kind IN ('poll', 'reconcile'))
);

-- The live counts of an import being processed, written in each chunk's
-- own transaction; removed when the attempt ends.
CREATE TABLE import_progress (
    import_id     INTEGER PRIMARY KEY REFERENCES import_file (id) ON DELETE CASCADE,
    phase         TEXT    NOT NULL,
    records       INTEGER NOT NULL DEFAULT 0,
    records_total INTEGER NOT NULL DEFAULT 0,
    bytes_read    INTEGER NOT NULL DEFAULT 0,
    bytes_total   INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL,
    CHECK (phase IN ('validating', 'applying'))
);
