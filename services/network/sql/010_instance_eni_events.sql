-- 010_instance_eni_events: compute keeps what DescribeInstances shows of an instance's
-- interfaces in a table of its own (compute's network_enis, its migration 010), so it
-- answers without asking the network. The network pushes every change of those facts
-- after commit (instance_enis.c), and compute pulls the whole list when its digest
-- differs (a lost push is repaired).
--
-- facts_version orders the changes of one interface: a new value from one sequence on
-- every change of what compute shows, taken under the row's lock (a BEFORE UPDATE
-- trigger runs on the locked row), so a later change always has the larger version and
-- compute never lets an older push overwrite a newer one. Every write path (ports,
-- attachments, attributes, groups, deletes) is covered by the triggers, so no handler
-- needs to remember to announce anything.
CREATE SEQUENCE eni_facts_seq;
ALTER TABLE enis ADD COLUMN facts_version bigint NOT NULL DEFAULT nextval('eni_facts_seq');
-- when the interface was attached to its instance (EC2's attachTime)
ALTER TABLE enis ADD COLUMN attach_time timestamptz;
UPDATE enis SET attach_time = created_at WHERE instance_id IS NOT NULL;

-- What compute holds of one interface: the shape of a push and of a page of the pull.
CREATE FUNCTION eni_facts(n enis) RETURNS json LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT json_build_object(
        'eni', n.id, 'instance', n.instance_id, 'account', n.account_id, 'index', n.device_index,
        'attachment', n.attachment_id, 'subnet', n.subnet_id, 'vpc', n.vpc_id, 'mac', n.mac::text,
        'ip', host(n.ip), 'description', n.description, 'sdc', n.source_dest_check,
        'attach_time', extract(epoch FROM n.attach_time)::bigint,
        'groups', (SELECT coalesce(json_agg(json_build_object('groupId', g.id, 'groupName', g.name) ORDER BY g.id),
                                   '[]') FROM eni_groups eg JOIN security_groups g ON g.id = eg.group_id
                   WHERE eg.eni_id = n.id),
        'version', n.facts_version)
$$;

-- A new version when what compute shows changed (or the version was set by hand: the
-- groups' trigger below); an attach stamps attach_time.
CREATE FUNCTION eni_facts_renew() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.instance_id IS NOT NULL THEN
            NEW.attach_time := now();
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.instance_id IS DISTINCT FROM OLD.instance_id THEN
        NEW.attach_time := CASE WHEN NEW.instance_id IS NULL THEN NULL ELSE now() END;
    END IF;
    IF NEW.facts_version = OLD.facts_version AND
       (NEW.instance_id, NEW.device_index, NEW.attachment_id, NEW.subnet_id, NEW.vpc_id, NEW.ip, NEW.mac,
        NEW.description, NEW.source_dest_check)
       IS DISTINCT FROM
       (OLD.instance_id, OLD.device_index, OLD.attachment_id, OLD.subnet_id, OLD.vpc_id, OLD.ip, OLD.mac,
        OLD.description, OLD.source_dest_check) THEN
        NEW.facts_version := nextval('eni_facts_seq');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER enis_facts_renew BEFORE INSERT OR UPDATE ON enis
    FOR EACH ROW EXECUTE FUNCTION eni_facts_renew();

-- The push, delivered by PostgreSQL only at commit: the interface's facts as they are at
-- commit (the triggers on insert and update are deferred to then and read the row, so the
-- changes of one transaction, e.g. a port made then given its groups, make identical
-- payloads, which PostgreSQL sends once), or for a deleted interface its id with a new
-- version and no instance. A payload past NOTIFY's limit (8000 bytes; a long description
-- in many groups) becomes a request to resync, which compute answers with its pull.
CREATE FUNCTION eni_facts_notify() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    p text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        p := json_build_object('eni', OLD.id, 'instance', NULL, 'version', nextval('eni_facts_seq'))::text;
    ELSE
        SELECT eni_facts(n)::text INTO p FROM enis n WHERE n.id = NEW.id;
        IF p IS NULL THEN   -- deleted since, in this transaction: gone
            p := json_build_object('eni', NEW.id, 'instance', NULL, 'version', nextval('eni_facts_seq'))::text;
        ELSIF octet_length(p) > 7500 THEN
            p := json_build_object('eni', NEW.id, 'resync', true)::text;
        END IF;
    END IF;
    PERFORM pg_notify('network_instance_enis', p);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER enis_facts_inserted AFTER INSERT ON enis DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.instance_id IS NOT NULL) EXECUTE FUNCTION eni_facts_notify();
CREATE CONSTRAINT TRIGGER enis_facts_updated AFTER UPDATE ON enis DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.facts_version <> OLD.facts_version AND
                       (NEW.instance_id IS NOT NULL OR OLD.instance_id IS NOT NULL))
    EXECUTE FUNCTION eni_facts_notify();
CREATE TRIGGER enis_facts_deleted AFTER DELETE ON enis
    FOR EACH ROW WHEN (OLD.instance_id IS NOT NULL) EXECUTE FUNCTION eni_facts_notify();

-- An attached interface's groups changed: a new version (which pushes its facts).
CREATE FUNCTION eni_groups_touch() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE enis SET facts_version = nextval('eni_facts_seq')
        WHERE id IN (SELECT DISTINCT eni_id FROM changed) AND instance_id IS NOT NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER eni_groups_added AFTER INSERT ON eni_groups REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION eni_groups_touch();
CREATE TRIGGER eni_groups_removed AFTER DELETE ON eni_groups REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION eni_groups_touch();

-- The pull's pages (by id, attached ones) and its digest
CREATE INDEX enis_attached ON enis (id) INCLUDE (facts_version) WHERE instance_id IS NOT NULL;
