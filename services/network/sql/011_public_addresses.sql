-- 011_public_addresses: instances' public addresses.
--
-- An address a launch gives an interface (the subnet's MapPublicIpOnLaunch, or
-- RunInstances' AssociatePublicIpAddress) is an `addresses` row like an elastic IP's, so
-- the datapath NATs it by the same path (desired.c joins addresses to interfaces), but
-- marked auto_assigned: it belongs to the interface, not to the account's elastic IPs.
-- The tenant's elastic IP actions see only the others (the view elastic_ips: allocation
-- by id or address, association, release, DescribeAddresses, the elastic_ips quota); the
-- interface's deletion deletes it, and an elastic IP associated with the interface
-- replaces it (addresses.c, enis.c), as on AWS.
ALTER TABLE addresses ADD COLUMN auto_assigned boolean NOT NULL DEFAULT false;
CREATE VIEW elastic_ips AS SELECT * FROM addresses WHERE NOT auto_assigned;

-- Billing (docs/usage.md): an auto-assigned address is logged as every address is
-- (AWS bills every public IPv4 address by the hour, elastic or not), marked so that a
-- billing system can tell the two apart. Its allocation carries its association (the
-- interface it was made for), and its release, when the interface still holds it, is
-- preceded by the disassociation, so every address's log reads allocated, (associated,
-- disassociated)*, released. (Its search path is now the schema's, like the other
-- triggers': a change made by hand in psql logs its events too.)
ALTER TABLE address_events ADD COLUMN auto_assigned boolean NOT NULL DEFAULT false;

CREATE OR REPLACE FUNCTION address_usage_event() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.usage_seq := 1;
        INSERT INTO address_events (address_id, address_seq, event, account_id, public_ip, auto_assigned)
        VALUES (NEW.id, 1, 'allocated', NEW.account_id, host(NEW.public_ip), NEW.auto_assigned);
        IF NEW.eni_id IS NOT NULL THEN
            NEW.usage_seq := 2;
            INSERT INTO address_events (address_id, address_seq, event, account_id, public_ip, eni_id, auto_assigned)
            VALUES (NEW.id, 2, 'associated', NEW.account_id, host(NEW.public_ip), NEW.eni_id, NEW.auto_assigned);
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.eni_id IS NOT DISTINCT FROM OLD.eni_id THEN
            RETURN NEW;
        END IF;
        NEW.usage_seq := OLD.usage_seq + 1;
        INSERT INTO address_events (address_id, address_seq, event, account_id, public_ip, eni_id, auto_assigned)
        VALUES (NEW.id, NEW.usage_seq, CASE WHEN NEW.eni_id IS NULL THEN 'disassociated' ELSE 'associated' END,
                NEW.account_id, host(NEW.public_ip), NEW.eni_id, NEW.auto_assigned);
        RETURN NEW;
    END IF;
    IF OLD.eni_id IS NOT NULL THEN
        OLD.usage_seq := OLD.usage_seq + 1;
        INSERT INTO address_events (address_id, address_seq, event, account_id, public_ip, auto_assigned)
        VALUES (OLD.id, OLD.usage_seq, 'disassociated', OLD.account_id, host(OLD.public_ip), OLD.auto_assigned);
    END IF;
    INSERT INTO address_events (address_id, address_seq, event, account_id, public_ip, auto_assigned)
    VALUES (OLD.id, OLD.usage_seq + 1, 'released', OLD.account_id, host(OLD.public_ip), OLD.auto_assigned);
    RETURN OLD;
END
$$;

-- What compute holds of an interface (migration 010) now carries its public address
-- and who owns it: the account for an elastic IP, "amazon" for an auto-assigned one (what
-- EC2 shows as the association's ipOwnerId).
CREATE OR REPLACE FUNCTION eni_facts(n enis) RETURNS json LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT json_build_object(
        'eni', n.id, 'instance', n.instance_id, 'account', n.account_id, 'index', n.device_index,
        'attachment', n.attachment_id, 'subnet', n.subnet_id, 'vpc', n.vpc_id, 'mac', n.mac::text,
        'ip', host(n.ip), 'description', n.description, 'sdc', n.source_dest_check,
        'attach_time', extract(epoch FROM n.attach_time)::bigint,
        'groups', (SELECT coalesce(json_agg(json_build_object('groupId', g.id, 'groupName', g.name) ORDER BY g.id),
                                   '[]') FROM eni_groups eg JOIN security_groups g ON g.id = eg.group_id
                   WHERE eg.eni_id = n.id),
        'public_ip', (SELECT host(a.public_ip) FROM addresses a WHERE a.eni_id = n.id),
        'public_owner', (SELECT CASE WHEN a.auto_assigned THEN 'amazon' ELSE a.account_id::text END
                         FROM addresses a WHERE a.eni_id = n.id),
        'version', n.facts_version)
$$;

-- An attached interface's public address changed (associated, disassociated, an
-- auto-assigned one made or deleted, an elastic IP released or moved): a new version of
-- its facts, which pushes them (migration 010's triggers), as eni_groups_touch does for
-- its groups.
CREATE FUNCTION address_eni_touch() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.eni_id IS NOT NULL AND
       (TG_OP = 'DELETE' OR (NEW.eni_id, NEW.public_ip) IS DISTINCT FROM (OLD.eni_id, OLD.public_ip)) THEN
        UPDATE enis SET facts_version = nextval('eni_facts_seq') WHERE id = OLD.eni_id AND instance_id IS NOT NULL;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.eni_id IS NOT NULL AND
       (TG_OP = 'INSERT' OR (NEW.eni_id, NEW.public_ip) IS DISTINCT FROM (OLD.eni_id, OLD.public_ip)) THEN
        UPDATE enis SET facts_version = nextval('eni_facts_seq') WHERE id = NEW.eni_id AND instance_id IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER addresses_eni_facts AFTER INSERT OR UPDATE OR DELETE ON addresses
    FOR EACH ROW EXECUTE FUNCTION address_eni_touch();

-- Interfaces that already hold an elastic IP: a new version, so compute's pull (its
-- digest differs) fetches their facts with the address.
UPDATE enis SET facts_version = nextval('eni_facts_seq')
    WHERE instance_id IS NOT NULL AND id IN (SELECT eni_id FROM addresses WHERE eni_id IS NOT NULL);
