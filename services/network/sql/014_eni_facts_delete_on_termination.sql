-- 014_eni_facts_delete_on_termination: what compute holds of an attached interface
-- (migration 010's eni_facts, 011's public address) now carries its attachment's
-- DeleteOnTermination (013), so DescribeInstances shows the flag a launch or
-- ModifyNetworkInterfaceAttribute set, not false for every interface beyond the primary.
CREATE OR REPLACE FUNCTION eni_facts(n enis) RETURNS json LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT json_build_object(
        'eni', n.id, 'instance', n.instance_id, 'account', n.account_id, 'index', n.device_index,
        'attachment', n.attachment_id, 'subnet', n.subnet_id, 'vpc', n.vpc_id, 'mac', n.mac::text,
        'ip', host(n.ip), 'description', n.description, 'sdc', n.source_dest_check,
        'dot', n.delete_on_termination,
        'attach_time', extract(epoch FROM n.attach_time)::bigint,
        'groups', (SELECT coalesce(json_agg(json_build_object('groupId', g.id, 'groupName', g.name) ORDER BY g.id),
                                   '[]') FROM eni_groups eg JOIN security_groups g ON g.id = eg.group_id
                   WHERE eg.eni_id = n.id),
        'public_ip', (SELECT host(a.public_ip) FROM addresses a WHERE a.eni_id = n.id),
        'public_owner', (SELECT CASE WHEN a.auto_assigned THEN 'amazon' ELSE a.account_id::text END
                         FROM addresses a WHERE a.eni_id = n.id),
        'version', n.facts_version)
$$;

-- A change of the flag is a new version of the facts (which pushes them), as a change of
-- what 010 compared already is.
CREATE OR REPLACE FUNCTION eni_facts_renew() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
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
        NEW.description, NEW.source_dest_check, NEW.delete_on_termination)
       IS DISTINCT FROM
       (OLD.instance_id, OLD.device_index, OLD.attachment_id, OLD.subnet_id, OLD.vpc_id, OLD.ip, OLD.mac,
        OLD.description, OLD.source_dest_check, OLD.delete_on_termination) THEN
        NEW.facts_version := nextval('eni_facts_seq');
    END IF;
    RETURN NEW;
END $$;

-- The attached interfaces beyond a primary that have the flag: a new version, so
-- compute's pull (its digest differs) fetches their facts with it.
UPDATE enis SET facts_version = nextval('eni_facts_seq')
    WHERE instance_id IS NOT NULL AND delete_on_termination;
