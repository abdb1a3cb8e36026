-- 006_usage_events: the ordered log of what an instance's bill depends on (docs/usage.md),
-- written by instance_state.c (and attributes.c for a resize) in the transaction of the
-- change itself, so an event exists exactly when its change committed. virga-accounting
-- reads it with a cursor on (xid, seq): seq orders the log, and xid (the writing
-- transaction) lets a reader take only rows of transactions that have all ended, so a
-- row committed late with a lower seq is never skipped (docs/accounting.md).

-- The cloud a host belongs to: 'private', or a public cloud region's name for hosts of
-- driver ec2 (the hybrid branch sets it; it may add the same column IF NOT EXISTS).
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS cloud text NOT NULL DEFAULT 'private';

-- Per-instance event counter: an instance's events are numbered 1, 2, 3 ... in the
-- order its row lock let them happen, whatever order their transactions' ids have.
ALTER TABLE instances ADD COLUMN usage_seq integer NOT NULL DEFAULT 0;

CREATE TABLE instance_events (
    seq           bigserial PRIMARY KEY,
    xid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    instance_id   text NOT NULL,
    instance_seq  integer NOT NULL,
    event         text NOT NULL CHECK (event IN ('started', 'stopped', 'terminated', 'resized')),
    account_id    char(12) NOT NULL,
    user_id       text NOT NULL DEFAULT '',
    instance_type text NOT NULL,
    host_id       text NOT NULL DEFAULT '',
    zone          text NOT NULL DEFAULT '',
    cloud         text NOT NULL DEFAULT 'private',
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (instance_id, instance_seq)
);
CREATE INDEX instance_events_cursor ON instance_events(xid, seq);

-- A new event rings accounting's doorbell at commit (never for a rolled-back change).
CREATE FUNCTION usage_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('virga_usage_events', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER instance_events_notify AFTER INSERT ON instance_events
    FOR EACH STATEMENT EXECUTE FUNCTION usage_event_notify();
