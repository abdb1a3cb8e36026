-- 008_usage_logs: what the object store's bill depends on (docs/usage.md), as ordered
-- logs virga-accounting reads with a cursor on (xid, seq) (docs/accounting.md).
--
-- storage_samples: each account's stored bytes (objectstore.stored: every version of
-- every object in its buckets, and unfinished uploads' parts), sampled once per clock
-- hour by the reconcile timer of whichever object-store process first sees the account
-- store bytes in that hour (the unique key makes the others' inserts no-ops). A sample
-- stands for its whole hour.
CREATE TABLE storage_samples (
    seq           bigserial PRIMARY KEY,
    xid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    account_id    char(12) NOT NULL,
    hour          timestamptz NOT NULL,
    bytes         bigint NOT NULL,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (account_id, hour)
);
CREATE INDEX storage_samples_cursor ON storage_samples(xid, seq);

-- transfer_events: bytes sent out by GetObject, per bucket, as counted in one process
-- between two flushes (transfer.c): [from_at, to_at), id unique per process and window.
CREATE TABLE transfer_events (
    seq           bigserial PRIMARY KEY,
    xid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    id            text NOT NULL UNIQUE,       -- <writer>/<bucket>/<window start>
    account_id    char(12) NOT NULL,
    bucket        text NOT NULL,
    bytes         bigint NOT NULL,
    requests      bigint NOT NULL,
    from_at       timestamptz NOT NULL,
    to_at         timestamptz NOT NULL
);
CREATE INDEX transfer_events_cursor ON transfer_events(xid, seq);

-- A statement that added rows rings accounting's doorbell at commit (the hourly sample's
-- statement runs every pass and mostly adds none: no ring then).
CREATE FUNCTION usage_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM added) THEN
        PERFORM pg_notify('virga_usage_events', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER storage_samples_notify AFTER INSERT ON storage_samples REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION usage_event_notify();
CREATE TRIGGER transfer_events_notify AFTER INSERT ON transfer_events REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION usage_event_notify();
