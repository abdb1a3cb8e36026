-- 002_usage: usage records and the machinery that makes them from the services' event
-- logs (docs/accounting.md). Each log is read with a cursor (cursors) in the transaction
-- that writes what it produced, so a restart neither loses nor repeats an event; records
-- have a unique key, so producing one twice is a no-op; published_at is the outbox of
-- the virga.usage topic.

-- Where each log was read to: the (xid, seq) of its last row taken. Only rows of
-- transactions that have all ended (xid below the snapshot's xmin) are taken, so a row
-- committed late with a lower seq than one already read is still ahead of the cursor.
CREATE TABLE cursors (
    log         text PRIMARY KEY,            -- 'compute.instance_events', ...
    xid         xid8 NOT NULL DEFAULT '0',
    seq         bigint NOT NULL DEFAULT 0,
    events      bigint NOT NULL DEFAULT 0,   -- taken so far
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO cursors (log) VALUES ('compute.instance_events');

CREATE TABLE usage_records (
    id             bigserial PRIMARY KEY,
    record_key     text NOT NULL UNIQUE,     -- usage_type/resource_id/start (UTC, microseconds)
    resource_type  text NOT NULL,            -- instance | address | image | bucket
    resource_id    text NOT NULL,
    account_id     char(12) NOT NULL,
    user_id        text NOT NULL DEFAULT '',
    usage_type     text NOT NULL,            -- instance.running, address.allocated, ...
    item           text NOT NULL DEFAULT '', -- what the price list prices: the instance type, ...
    quantity       numeric NOT NULL,
    unit           text NOT NULL,            -- second | byte-hour | byte
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    cloud          text NOT NULL DEFAULT 'private',
    zone           text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz               -- NULL: still in the outbox of virga.usage
);
CREATE INDEX usage_records_outbox ON usage_records(id) WHERE published_at IS NULL;
CREATE INDEX usage_records_account ON usage_records(account_id, start_at);
CREATE INDEX usage_records_resource ON usage_records(resource_id, start_at);

-- A new record wakes the publisher at commit.
CREATE FUNCTION usage_record_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('virga_usage_records', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER usage_records_notify AFTER INSERT ON usage_records
    FOR EACH STATEMENT EXECUTE FUNCTION usage_record_notify();

-- Usage of a resource from p_start to p_end, as one record per clock hour (UTC) it
-- touches: quantity = seconds in that hour x p_rate. Keys are derived from the piece's
-- start, so metering the same span again (a replay) adds nothing.
CREATE FUNCTION meter(p_resource_type text, p_resource_id text, p_account text, p_user text, p_usage_type text,
                      p_item text, p_unit text, p_rate numeric, p_cloud text, p_zone text,
                      p_start timestamptz, p_end timestamptz) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF p_end <= p_start THEN
        RETURN 0;
    END IF;
    INSERT INTO usage_records (record_key, resource_type, resource_id, account_id, user_id, usage_type, item,
                               quantity, unit, start_at, end_at, cloud, zone)
    SELECT p_usage_type || '/' || p_resource_id || '/' ||
               to_char(s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           p_resource_type, p_resource_id, p_account, p_user, p_usage_type, p_item,
           round(extract(epoch FROM e - s) * p_rate, 6), p_unit, s, e, p_cloud, p_zone
    FROM (SELECT greatest(p_start, h) AS s, least(p_end, h + interval '1 hour') AS e
          FROM generate_series(date_trunc('hour', p_start, 'UTC'), p_end, interval '1 hour') AS h) AS piece
    WHERE e > s
    ON CONFLICT (record_key) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Instances: events copied from compute.instance_events, applied per instance in its own
-- order (instance_seq), which is the order its row lock gave them; the cursor's order
-- (xid, seq) may differ for two transactions that waited on each other.
CREATE TABLE instance_inbox (
    instance_id    text NOT NULL,
    instance_seq   integer NOT NULL,
    event          text NOT NULL,
    account_id     char(12) NOT NULL,
    user_id        text NOT NULL,
    instance_type  text NOT NULL,
    host_id        text NOT NULL,
    zone           text NOT NULL,
    cloud          text NOT NULL,
    at             timestamptz NOT NULL,
    PRIMARY KEY (instance_id, instance_seq)
);

-- Each instance's meter: running since when (NULL: not running), as of its last applied
-- event; the open span is metered hour by hour as hours end (meter_running).
CREATE TABLE instance_meters (
    instance_id    text PRIMARY KEY,
    applied_seq    integer NOT NULL DEFAULT 0,
    running_since  timestamptz,
    account_id     char(12) NOT NULL,
    user_id        text NOT NULL,
    instance_type  text NOT NULL,
    host_id        text NOT NULL,
    zone           text NOT NULL,
    cloud          text NOT NULL
);
CREATE INDEX instance_meters_running ON instance_meters(running_since) WHERE running_since IS NOT NULL;

-- Apply what is contiguous in the inbox for one instance; returns the events applied.
CREATE FUNCTION apply_instance(p_id text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    m instance_meters%ROWTYPE;
    ev instance_inbox%ROWTYPE;
    n integer := 0;
BEGIN
    SELECT * INTO m FROM instance_meters WHERE instance_id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        m.instance_id := p_id;
        m.applied_seq := 0;
    END IF;
    LOOP
        SELECT * INTO ev FROM instance_inbox WHERE instance_id = p_id AND instance_seq = m.applied_seq + 1;
        EXIT WHEN NOT FOUND;
        IF m.running_since IS NOT NULL AND ev.event IN ('stopped', 'terminated', 'resized') THEN
            -- an event older than what was already metered (committed after its hour was
            -- closed, beyond accounting.close_grace_s) ends the span where metering got to
            PERFORM meter('instance', p_id, m.account_id, m.user_id, 'instance.running', m.instance_type, 'second',
                          1, m.cloud, m.zone, m.running_since, greatest(ev.at, m.running_since));
            m.running_since := CASE WHEN ev.event = 'resized' THEN greatest(ev.at, m.running_since) END;
        ELSIF m.running_since IS NULL AND ev.event = 'started' THEN
            m.running_since := ev.at;
        END IF;
        m.applied_seq := ev.instance_seq;
        m.account_id := ev.account_id;
        m.user_id := ev.user_id;
        m.instance_type := ev.instance_type;
        m.host_id := ev.host_id;
        m.zone := ev.zone;
        m.cloud := ev.cloud;
        DELETE FROM instance_inbox WHERE instance_id = p_id AND instance_seq = ev.instance_seq;
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        INSERT INTO instance_meters VALUES (m.*)
        ON CONFLICT (instance_id) DO UPDATE SET applied_seq = EXCLUDED.applied_seq,
            running_since = EXCLUDED.running_since, account_id = EXCLUDED.account_id,
            user_id = EXCLUDED.user_id, instance_type = EXCLUDED.instance_type, host_id = EXCLUDED.host_id,
            zone = EXCLUDED.zone, cloud = EXCLUDED.cloud;
    END IF;
    RETURN n;
END
$$;

-- Take up to p_batch events of compute.instance_events past the cursor, apply them and
-- move the cursor, all in the caller's transaction; returns how many were taken.
CREATE FUNCTION pull_instance_events(p_batch integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    c cursors%ROWTYPE;
    n bigint;
    ids text[];
    last_xid xid8;
    last_seq bigint;
BEGIN
    SELECT * INTO c FROM cursors WHERE log = 'compute.instance_events' FOR UPDATE;
    WITH ev AS (
        SELECT * FROM compute.instance_events
        WHERE (xid, seq) > (c.xid, c.seq) AND xid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY xid, seq LIMIT p_batch
    ), kept AS (
        INSERT INTO instance_inbox (instance_id, instance_seq, event, account_id, user_id, instance_type, host_id,
                                    zone, cloud, at)
        SELECT instance_id, instance_seq, event, account_id, user_id, instance_type, host_id, zone, cloud, at FROM ev
        WHERE NOT EXISTS (SELECT 1 FROM instance_meters m      -- read again after a cursor reset
                          WHERE m.instance_id = ev.instance_id AND m.applied_seq >= ev.instance_seq)
        ON CONFLICT DO NOTHING
    )
    SELECT count(*), array_agg(DISTINCT instance_id), (array_agg(xid ORDER BY xid DESC, seq DESC))[1],
           (array_agg(seq ORDER BY xid DESC, seq DESC))[1]
    INTO n, ids, last_xid, last_seq FROM ev;
    IF n = 0 THEN
        RETURN 0;
    END IF;
    PERFORM apply_instance(id) FROM unnest(ids) AS id ORDER BY id;
    UPDATE cursors SET xid = last_xid, seq = last_seq, events = events + n, updated_at = now()
    WHERE log = 'compute.instance_events';
    RETURN n;
END
$$;

-- Meter every running instance up to the last whole hour that ended at least p_grace
-- ago, so a long-running instance has its records hour by hour, not only when it stops.
CREATE FUNCTION meter_running(p_grace interval) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    upto timestamptz := date_trunc('hour', now() - p_grace, 'UTC');
    m record;
    n integer := 0;
BEGIN
    FOR m IN SELECT * FROM instance_meters WHERE running_since < upto ORDER BY instance_id FOR UPDATE LOOP
        n := n + meter('instance', m.instance_id, m.account_id, m.user_id, 'instance.running', m.instance_type,
                       'second', 1, m.cloud, m.zone, m.running_since, upto);
        UPDATE instance_meters SET running_since = upto WHERE instance_id = m.instance_id;
    END LOOP;
    RETURN n;
END
$$;
