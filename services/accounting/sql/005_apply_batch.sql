-- 005_apply_batch: pull() applies a batch's events to the meters with one statement
-- for the whole batch (apply_meters) instead of one apply_meter() call, and its loop of
-- statements, per resource: the catch-up of a backlog was bound by those calls.
--
-- The meter is a small state machine (002's apply_meter, which this replaces): state
-- open (open_since) or closed; 'open' opens a closed meter or, on an open one, meters
-- the span so far and goes on from max(at, open_since); 'set' does the latter on an open
-- meter only; 'close' meters the span and closes; 'none' changes only the event number;
-- every event takes over the record's attributes. Over one resource's contiguous events
-- that is computable with window functions:
--   * the state before event k is the last 'open'/'close' among events 1..k-1 (the
--     meter's own state when there is none);
--   * a run starts at each 'open' of a closed meter; within a run, open_since after k is
--     the greatest of the run's start (the meter's open_since for the run it was
--     already in) and the `at` of its 'open'/'set' events up to k;
--   * event k meters [open_since before k, max(at_k, that)] when the meter was open
--     before it and k is 'open', 'set' or 'close', at the attributes before k.
-- The spans are split into hourly records as meter() does, in the same statement that
-- moves each meter to its last applied event and empties the inbox of what it applied.

CREATE FUNCTION apply_meters(p_res text[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    -- the meters of the batch, locked in one order (meter_open of another replica)
    PERFORM 1 FROM meters m
    WHERE (m.resource_type, m.resource_id) IN (SELECT split_part(x, ' ', 1), split_part(x, ' ', 2) FROM unnest(p_res) x)
    ORDER BY m.resource_type, m.resource_id FOR UPDATE;
    WITH r AS (
        SELECT DISTINCT split_part(x, ' ', 1) AS t, split_part(x, ' ', 2) AS i FROM unnest(p_res) x
    ), ev AS (   -- the inbox of each resource past its meter, numbered in resource order
        SELECT e.*, coalesce(m.applied_seq, 0) AS base, m.open_since AS m_open, m.account_id AS m_account,
               m.user_id AS m_user, m.usage_type AS m_usage_type, m.item AS m_item, m.unit AS m_unit,
               m.rate AS m_rate, m.cloud AS m_cloud, m.zone AS m_zone,
               row_number() OVER (PARTITION BY e.resource_type, e.resource_id ORDER BY e.resource_seq) AS rn
        FROM r JOIN inbox e ON e.resource_type = r.t AND e.resource_id = r.i
        LEFT JOIN meters m ON m.resource_type = r.t AND m.resource_id = r.i
        WHERE e.resource_seq > coalesce(m.applied_seq, 0)
    ), go AS (   -- only what is contiguous from the meter's event number on
        SELECT ev.*,
               coalesce(max(resource_seq * 2 + (action = 'open')::int) FILTER (WHERE action IN ('open', 'close'))
                        OVER (PARTITION BY resource_type, resource_id ORDER BY resource_seq
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) % 2 = 1,
                        m_open IS NOT NULL) AS was_open
        FROM ev WHERE resource_seq = base + rn
    ), runs AS (
        SELECT go.*, sum((action = 'open' AND NOT was_open)::int)
                         OVER (PARTITION BY resource_type, resource_id ORDER BY resource_seq) AS run
        FROM go
    ), st AS (   -- open_since after each event (NULL: closed after it)
        SELECT runs.*,
               CASE WHEN action = 'open' OR (was_open AND action IN ('set', 'none')) THEN
                   greatest(CASE WHEN run = 0 THEN m_open END,
                            max(at) FILTER (WHERE action IN ('open', 'set'))
                                OVER (PARTITION BY resource_type, resource_id, run ORDER BY resource_seq))
               END AS os
        FROM runs
    ), prev AS (   -- the meter before each event: open_since and attributes
        SELECT st.*,
               CASE WHEN rn = 1 THEN m_open ELSE lag(os) OVER w END AS p_os,
               CASE WHEN rn = 1 THEN m_account ELSE lag(account_id) OVER w END AS p_account,
               CASE WHEN rn = 1 THEN m_user ELSE lag(user_id) OVER w END AS p_user,
               CASE WHEN rn = 1 THEN m_usage_type ELSE lag(usage_type) OVER w END AS p_usage_type,
               CASE WHEN rn = 1 THEN m_item ELSE lag(item) OVER w END AS p_item,
               CASE WHEN rn = 1 THEN m_unit ELSE lag(unit) OVER w END AS p_unit,
               CASE WHEN rn = 1 THEN m_rate ELSE lag(rate) OVER w END AS p_rate,
               CASE WHEN rn = 1 THEN m_cloud ELSE lag(cloud) OVER w END AS p_cloud,
               CASE WHEN rn = 1 THEN m_zone ELSE lag(zone) OVER w END AS p_zone,
               rn = count(*) OVER (PARTITION BY resource_type, resource_id) AS last
        FROM st WINDOW w AS (PARTITION BY resource_type, resource_id ORDER BY resource_seq)
    ), spans AS (
        SELECT resource_type, resource_id, p_account, p_user, p_usage_type, p_item, p_unit, p_rate, p_cloud,
               p_zone, p_os AS s0, greatest(at, p_os) AS e0
        FROM prev WHERE p_os IS NOT NULL AND action IN ('open', 'close', 'set')
    ), recs AS (
        INSERT INTO usage_records (record_key, resource_type, resource_id, account_id, user_id, usage_type, item,
                                   quantity, unit, start_at, end_at, cloud, zone)
        SELECT p_usage_type || '/' || resource_id || '/' ||
                   to_char(piece.s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               resource_type, resource_id, p_account, p_user, p_usage_type, p_item,
               round(extract(epoch FROM piece.e - piece.s) * p_rate, 6), p_unit, piece.s, piece.e, p_cloud, p_zone
        FROM spans CROSS JOIN LATERAL (
            SELECT greatest(s0, h) AS s, least(e0, h + interval '1 hour') AS e
            FROM generate_series(date_trunc('hour', s0, 'UTC'), e0, interval '1 hour') AS h) AS piece
        WHERE e0 > s0 AND piece.e > piece.s
        ON CONFLICT (record_key) DO NOTHING
    ), moved AS (
        INSERT INTO meters (resource_type, resource_id, applied_seq, open_since, account_id, user_id, usage_type,
                            item, unit, rate, cloud, zone)
        SELECT resource_type, resource_id, resource_seq, os, account_id, user_id, usage_type, item, unit, rate,
               cloud, zone FROM prev WHERE last
        ON CONFLICT (resource_type, resource_id) DO UPDATE SET applied_seq = EXCLUDED.applied_seq,
            open_since = EXCLUDED.open_since, account_id = EXCLUDED.account_id, user_id = EXCLUDED.user_id,
            usage_type = EXCLUDED.usage_type, item = EXCLUDED.item, unit = EXCLUDED.unit, rate = EXCLUDED.rate,
            cloud = EXCLUDED.cloud, zone = EXCLUDED.zone
    )
    DELETE FROM inbox i USING prev p
    WHERE i.resource_type = p.resource_type AND i.resource_id = p.resource_id AND i.resource_seq = p.resource_seq;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION pull(p_log text, p_batch integer) RETURNS integer LANGUAGE plpgsql AS $$
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
    PERFORM apply_meters(coalesce(ids, '{}'));
    UPDATE cursors SET xid = last_xid, seq = last_seq, events = events + n, updated_at = now() WHERE log = p_log;
    RETURN n;
END
$$;

DROP FUNCTION apply_meter(text, text);
