-- 006_public_ipv4: a public address a launch assigned (network migration 011's
-- auto_assigned) is billed as its own usage, `address.public-ipv4` (item `public-ipv4`,
-- priced by the price list's public_ipv4_hour), apart from elastic IPs'
-- `address.allocated` (item `elastic-ip`, eip_hour): AWS bills an instance's public IPv4
-- address and an elastic IP as separate usage types, at rates that have differed.
--
-- The resource stays `address` (its allocation id): an address's events are applied in
-- its own order to one meter, keyed (resource_type, resource_id), so the meter of an
-- auto-assigned address that is open now goes on taking its events. Whether an address
-- is auto-assigned never changes, so every record of one address has one usage type.
--
-- auto_assigned is read through to_jsonb(): the feed must not fail while the network
-- schema is older than its migration 011 (services migrate independently); such
-- events are elastic IPs' (false).
UPDATE feeds SET query = $q$
    SELECT xid, seq, 'address' AS resource_type, address_id AS resource_id, address_seq AS resource_seq,
           CASE event WHEN 'allocated' THEN 'open' WHEN 'released' THEN 'close' ELSE 'none' END AS action,
           account_id, ''::text AS user_id,
           CASE WHEN auto THEN 'address.public-ipv4' ELSE 'address.allocated' END AS usage_type,
           CASE WHEN auto THEN 'public-ipv4' ELSE 'elastic-ip' END AS item,
           'second' AS unit, 1::numeric AS rate, NULL::numeric AS amount, 'private' AS cloud, ''::text AS zone,
           at, NULL::timestamptz AS until
    FROM (SELECT e.*, coalesce((to_jsonb(e) ->> 'auto_assigned')::boolean, false) AS auto
          FROM network.address_events e) AS e $q$
WHERE log = 'network.address_events';

-- What was taken before this migration as address.allocated: the open meters and the
-- inbox of auto-assigned addresses take the new type, so their span not yet metered is
-- billed as such (hours already metered keep their records: a record is never changed
-- once made, it may have been published).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'network'
               AND table_name = 'address_events' AND column_name = 'auto_assigned') THEN
        UPDATE meters SET usage_type = 'address.public-ipv4', item = 'public-ipv4'
        WHERE resource_type = 'address'
          AND resource_id IN (SELECT address_id FROM network.address_events WHERE auto_assigned);
        UPDATE inbox SET usage_type = 'address.public-ipv4', item = 'public-ipv4'
        WHERE resource_type = 'address'
          AND resource_id IN (SELECT address_id FROM network.address_events WHERE auto_assigned);
    END IF;
END $$;
