-- 005_writers: the object store processes that may have writes in progress.
--
-- Each process registers a random writer id at start and renews its heartbeat every
-- objectstore.writer_lease_s / 4; the storage backend marks every write in progress with
-- that id. Garbage collection reaps the uncommitted writes of ids whose heartbeat is
-- older than the lease (a killed process) instead of waiting for upload_stale_s. A
-- cleanly stopped process deletes its row. Times are the database's, so hosts' clocks
-- do not matter.
CREATE TABLE writers (
    id         text PRIMARY KEY,
    instance   text NOT NULL,                 -- objectstore@<host>:<pid>
    started    timestamptz NOT NULL DEFAULT now(),
    heartbeat  timestamptz NOT NULL DEFAULT now()
);
