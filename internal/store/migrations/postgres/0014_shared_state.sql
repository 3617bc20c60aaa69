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
    integration_id BIGINT PRIMARY KEY REFERENCES integration (id) ON DELETE CASCADE,
    tat            BIGINT  NOT NULL
);

-- One running poll or reconcile per integration across processes: a lease
-- that its holder renews while it runs and that lapses at expires_at when
-- the holder dies. done/total are the run's progress (written at most
-- about once a second).
CREATE TABLE sync_lease (
    integration_id BIGINT  NOT NULL REFERENCES integration (id) ON DELETE CASCADE,
    kind           TEXT    COLLATE "C" NOT NULL,
    holder         TEXT    COLLATE "C" NOT NULL,
    started_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    done           BIGINT  NOT NULL DEFAULT 0,
    total          BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (integration_id, kind),
    CHECK (kind IN ('poll', 'reconcile'))
);

-- The live counts of an import being processed, written in each chunk's
-- own transaction; removed when the attempt ends.
CREATE TABLE import_progress (
    import_id     BIGINT PRIMARY KEY REFERENCES import_file (id) ON DELETE CASCADE,
    phase         TEXT    COLLATE "C" NOT NULL,
    records       BIGINT  NOT NULL DEFAULT 0,
    records_total BIGINT  NOT NULL DEFAULT 0,
    bytes_read    BIGINT  NOT NULL DEFAULT 0,
    bytes_total   BIGINT  NOT NULL DEFAULT 0,
    updated_at    BIGINT  NOT NULL,
    CHECK (phase IN ('validating', 'applying'))
);
