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

-- Each log is a feed: the SELECT that maps its rows to one shape (resource, its own
-- event number, what the event does to the meter, and what the record is priced as).
-- The SELECT is run by pull() with EXECUTE, so this schema does not depend on the other
-- services' schemas existing when it is migrated. action: 'open' starts a span (or, when
-- one is open, ends it and starts the next at the new rate: an image's new size),
-- 'close' ends it, 'set' changes item/rate (a resize: the open span, if any, is split),
-- 'none' only moves the resource's event number (an EIP association), 'amount' is a
-- record of its own over [at, until] with `amount` as its quantity (sampled bytes, bytes
-- sent).
CREATE TABLE feeds (
    log         text PRIMARY KEY REFERENCES cursors(log),
    query       text NOT NULL
);
INSERT INTO cursors (log) VALUES ('compute.instance_events');
INSERT INTO feeds VALUES ('compute.instance_events', $q$
    SELECT xid, seq, 'instance' AS resource_type, instance_id AS resource_id, instance_seq AS resource_seq,
           CASE event WHEN 'started' THEN 'open' WHEN 'resized' THEN 'set' ELSE 'close' END AS action,
           account_id, user_id, 'instance.running' AS usage_type, instance_type AS item, 'second' AS unit,
           1::numeric AS rate, NULL::numeric AS amount, cloud, zone, at, NULL::timestamptz AS until
    FROM compute.instance_events $q$);

-- Events taken from the feeds, waiting to be applied in each resource's own order
-- (resource_seq: the order the resource's row lock gave them; the cursor's (xid, seq)
-- order may differ for two transactions that waited on each other).
CREATE TABLE inbox (
    resource_type  text NOT NULL,
    resource_id    text NOT NULL,
    resource_seq   integer NOT NULL,
    action         text NOT NULL,
    account_id     char(12) NOT NULL,
    user_id        text NOT NULL,
    usage_type     text NOT NULL,
    item           text NOT NULL,
    unit           text NOT NULL,
    rate           numeric NOT NULL,
    amount         numeric,
    cloud          text NOT NULL,
    zone           text NOT NULL,
    at             timestamptz NOT NULL,
    until          timestamptz,
    PRIMARY KEY (resource_type, resource_id, resource_seq)
);

-- Each resource's meter: open since when (NULL: closed), as of its last applied event;
-- an open span is metered hour by hour as hours end (meter_open).
CREATE TABLE meters (
    resource_type  text NOT NULL,
    resource_id    text NOT NULL,
    applied_seq    integer NOT NULL DEFAULT 0,
    open_since     timestamptz,
    account_id     char(12) NOT NULL,
    user_id        text NOT NULL,
    usage_type     text NOT NULL,
    item           text NOT NULL,
    unit           text NOT NULL,
    rate           numeric NOT NULL,
    cloud          text NOT NULL,
    zone           text NOT NULL,
    PRIMARY KEY (resource_type, resource_id)
);
CREATE INDEX meters_open ON meters(open_since) WHERE open_since IS NOT NULL;

-- Apply what is contiguous in the inbox for one resource; returns the events applied.
CREATE FUNCTION apply_meter(p_type text, p_id text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    m meters%ROWTYPE;
    ev inbox%ROWTYPE;
    n integer := 0;
BEGIN
    SELECT * INTO m FROM meters WHERE resource_type = p_type AND resource_id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        m.resource_type := p_type;
        m.resource_id := p_id;
        m.applied_seq := 0;
    END IF;
    LOOP
        SELECT * INTO ev FROM inbox WHERE resource_type = p_type AND resource_id = p_id
            AND resource_seq = m.applied_seq + 1;
        EXIT WHEN NOT FOUND;
        IF m.open_since IS NOT NULL AND ev.action IN ('open', 'close', 'set') THEN
            -- the span so far, at its old price; an event older than what was already
            -- metered (committed after its hour was closed, beyond
            -- accounting.close_grace_s) ends it where metering got to
            PERFORM meter(p_type, p_id, m.account_id, m.user_id, m.usage_type, m.item, m.unit, m.rate, m.cloud,
                          m.zone, m.open_since, greatest(ev.at, m.open_since));
            m.open_since := CASE WHEN ev.action <> 'close' THEN greatest(ev.at, m.open_since) END;
        ELSIF m.open_since IS NULL AND ev.action = 'open' THEN
            m.open_since := ev.at;
        END IF;
        m.account_id := ev.account_id;
        m.user_id := ev.user_id;
        m.usage_type := ev.usage_type;
        m.item := ev.item;
        m.unit := ev.unit;
        m.rate := ev.rate;
        m.cloud := ev.cloud;
        m.zone := ev.zone;
        m.applied_seq := ev.resource_seq;
        DELETE FROM inbox WHERE resource_type = p_type AND resource_id = p_id AND resource_seq = ev.resource_seq;
        n := n + 1;
    END LOOP;
    IF n > 0 AND m.account_id IS NOT NULL THEN
        INSERT INTO meters VALUES (m.*)
        ON CONFLICT (resource_type, resource_id) DO UPDATE SET applied_seq = EXCLUDED.applied_seq,
            open_since = EXCLUDED.open_since, account_id = EXCLUDED.account_id, user_id = EXCLUDED.user_id,
            usage_type = EXCLUDED.usage_type, item = EXCLUDED.item, unit = EXCLUDED.unit, rate = EXCLUDED.rate,
            cloud = EXCLUDED.cloud, zone = EXCLUDED.zone;
    END IF;
    RETURN n;
END
$$;

-- Take up to p_batch events of one log past its cursor, apply them and move the cursor,
-- all in the caller's transaction; returns how many were taken.
CREATE FUNCTION pull(p_log text, p_batch integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    c cursors%ROWTYPE;
    q text;
    n bigint;
    ids text[];
    last_xid xid8;
    last_seq bigint;
BEGIN
    SELECT * INTO c FROM cursors WHERE log = p_log FOR UPDATE;
    SELECT query INTO q FROM feeds WHERE log = p_log;
    IF to_regclass(p_log) IS NULL THEN
        RETURN 0;   -- the owning service has not made its log yet
    END IF;
    EXECUTE format($f$
        WITH ev AS (
            SELECT * FROM (%s) AS f
            WHERE (xid, seq) > ($1, $2) AND xid < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY xid, seq LIMIT $3
        ), amounts AS (   -- records of their own: no order among them matters
            INSERT INTO usage_records (record_key, resource_type, resource_id, account_id, user_id, usage_type,
                                       item, quantity, unit, start_at, end_at, cloud, zone)
            SELECT usage_type || '/' || resource_id || '/' ||
                       to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '/' || seq,
                   resource_type, resource_id, account_id, user_id, usage_type, item, amount, unit, at,
                   coalesce(until, at), cloud, zone
            FROM ev WHERE action = 'amount'
            ON CONFLICT (record_key) DO NOTHING
        ), kept AS (
            INSERT INTO inbox (resource_type, resource_id, resource_seq, action, account_id, user_id, usage_type,
                               item, unit, rate, amount, cloud, zone, at, until)
            SELECT resource_type, resource_id, resource_seq, action, account_id, user_id, usage_type, item, unit,
                   rate, amount, cloud, zone, at, until FROM ev
            WHERE action <> 'amount' AND NOT EXISTS (SELECT 1 FROM meters m   -- read again after a cursor reset
                              WHERE m.resource_type = ev.resource_type AND m.resource_id = ev.resource_id
                                AND m.applied_seq >= ev.resource_seq)
            ON CONFLICT DO NOTHING
        )
        SELECT count(*), array_agg(DISTINCT resource_type || ' ' || resource_id) FILTER (WHERE action <> 'amount'),
               (array_agg(xid ORDER BY xid DESC, seq DESC))[1], (array_agg(seq ORDER BY xid DESC, seq DESC))[1]
        FROM ev $f$, q)
    INTO n, ids, last_xid, last_seq USING c.xid, c.seq, p_batch;
    IF n = 0 THEN
        RETURN 0;
    END IF;
    PERFORM apply_meter(split_part(r, ' ', 1), split_part(r, ' ', 2)) FROM unnest(coalesce(ids, '{}')) AS r ORDER BY r;
    UPDATE cursors SET xid = last_xid, seq = last_seq, events = events + n, updated_at = now() WHERE log = p_log;
    RETURN n;
END
$$;

-- Meter every open span up to the last whole hour that ended at least p_grace ago, so a
-- long-running instance (a kept address, a stored image) has its records hour by hour.
CREATE FUNCTION meter_open(p_grace interval) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    upto timestamptz := date_trunc('hour', now() - p_grace, 'UTC');
    m record;
    n integer := 0;
BEGIN
    FOR m IN SELECT * FROM meters WHERE open_since < upto ORDER BY resource_type, resource_id FOR UPDATE LOOP
        n := n + meter(m.resource_type, m.resource_id, m.account_id, m.user_id, m.usage_type, m.item, m.unit, m.rate,
                       m.cloud, m.zone, m.open_since, upto);
        UPDATE meters SET open_since = upto WHERE resource_type = m.resource_type AND resource_id = m.resource_id;
    END LOOP;
    RETURN n;
END
$$;

-- Elastic IPs: billed per second allocated (network.address_events); associations are
-- logged but do not change the price.
INSERT INTO cursors (log) VALUES ('network.address_events');
INSERT INTO feeds VALUES ('network.address_events', $q$
    SELECT xid, seq, 'address' AS resource_type, address_id AS resource_id, address_seq AS resource_seq,
           CASE event WHEN 'allocated' THEN 'open' WHEN 'released' THEN 'close' ELSE 'none' END AS action,
           account_id, ''::text AS user_id, 'address.allocated' AS usage_type, 'elastic-ip' AS item,
           'second' AS unit, 1::numeric AS rate, NULL::numeric AS amount, 'private' AS cloud, ''::text AS zone,
           at, NULL::timestamptz AS until
    FROM network.address_events $q$);

-- Images: byte-hours stored (image.image_storage_events): size / 3600 per second.
INSERT INTO cursors (log) VALUES ('image.image_storage_events');
INSERT INTO feeds VALUES ('image.image_storage_events', $q$
    SELECT xid, seq, 'image' AS resource_type, image_id AS resource_id, image_seq AS resource_seq,
           CASE event WHEN 'stored' THEN 'open' ELSE 'close' END AS action,
           account_id, ''::text AS user_id, 'image.stored' AS usage_type, 'image' AS item,
           'byte-hour' AS unit, size / 3600.0 AS rate, NULL::numeric AS amount, 'private' AS cloud, ''::text AS zone,
           at, NULL::timestamptz AS until
    FROM image.image_storage_events $q$);

-- Object storage: one record per account and sampled hour, quantity = bytes x 1 hour.
INSERT INTO cursors (log) VALUES ('objectstore.storage_samples');
INSERT INTO feeds VALUES ('objectstore.storage_samples', $q$
    SELECT xid, seq, 'storage' AS resource_type, 's3:' || account_id AS resource_id, 0 AS resource_seq,
           'amount' AS action, account_id, ''::text AS user_id, 'storage.stored' AS usage_type, 's3' AS item,
           'byte-hour' AS unit, 0::numeric AS rate, bytes::numeric AS amount, 'private' AS cloud, ''::text AS zone,
           hour AS at, hour + interval '1 hour' AS until
    FROM objectstore.storage_samples $q$);

-- Data transferred out by GetObject: one record per bucket and flush window, in bytes.
INSERT INTO cursors (log) VALUES ('objectstore.transfer_events');
INSERT INTO feeds VALUES ('objectstore.transfer_events', $q$
    SELECT xid, seq, 'bucket' AS resource_type, bucket AS resource_id, 0 AS resource_seq,
           'amount' AS action, account_id, ''::text AS user_id, 'transfer.out' AS usage_type, 's3' AS item,
           'byte' AS unit, 0::numeric AS rate, bytes::numeric AS amount, 'private' AS cloud, ''::text AS zone,
           from_at AS at, to_at AS until
    FROM objectstore.transfer_events $q$);
