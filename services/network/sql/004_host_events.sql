-- 004_host_events: what the hosts' agents need of the network schema.
--
-- The device an interface gets on its host: a veth pair into a stand-in namespace that a
-- container joins ('veth'), or a persistent tap that QEMU opens ('tap').
ALTER TABLE enis ADD COLUMN device_kind text NOT NULL DEFAULT 'veth'
    CHECK (device_kind IN ('veth', 'tap'));

-- A host's generation changed: ring its agent's doorbell. NOTIFY is delivered only when
-- the transaction commits (and never when it rolls back), so an agent woken by it always
-- reads a document with at least that generation (host_events.c publishes it on the bus).
CREATE FUNCTION host_generation_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('network_host_changed', NEW.name || ' ' || NEW.generation);
    RETURN NEW;
END
$$;
CREATE TRIGGER hosts_generation_notify AFTER UPDATE OF generation ON hosts
    FOR EACH ROW WHEN (NEW.generation <> OLD.generation) EXECUTE FUNCTION host_generation_notify();

-- What a create with a client token asked for (a hash of its parameters): a retry with the
-- same token and other parameters is IdempotentParameterMismatch, as on EC2. NULL for
-- interfaces made before (never compared).
ALTER TABLE enis ADD COLUMN request_hash text;
