-- 017_replied_no_bump: a transaction whose interface's facts go back in its answer
-- (virga.facts_replied, migration 015: compute's port_create, port_adopt, port_delete)
-- reads those facts after its last change, so the new version that a change of the
-- interface's groups or public address gives it (010's eni_groups_touch, 011's
-- address_eni_touch) is not needed for that interface: the version its row has is
-- already newer than anything compute holds of it (a new row's, or one taken in the
-- same transaction: an attach or detach, a delete's). Each of those bumps was an UPDATE
-- of the interface's row (a new row version, its BEFORE trigger, a deferred AFTER
-- trigger queued), two a launch's port (its default group, its public address) and one
-- a terminate's (the address released): issue 11's launch rate. Every other
-- interface, and every other transaction, is bumped as before.
CREATE OR REPLACE FUNCTION eni_groups_touch() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE enis SET facts_version = nextval('eni_facts_seq')
        WHERE id IN (SELECT DISTINCT eni_id FROM changed) AND instance_id IS NOT NULL
          AND id IS DISTINCT FROM current_setting('virga.facts_replied', true);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION address_eni_touch() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    replied text := current_setting('virga.facts_replied', true);
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.eni_id IS NOT NULL AND OLD.eni_id IS DISTINCT FROM replied AND
       (TG_OP = 'DELETE' OR (NEW.eni_id, NEW.public_ip) IS DISTINCT FROM (OLD.eni_id, OLD.public_ip)) THEN
        UPDATE enis SET facts_version = nextval('eni_facts_seq') WHERE id = OLD.eni_id AND instance_id IS NOT NULL;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.eni_id IS NOT NULL AND NEW.eni_id IS DISTINCT FROM replied AND
       (TG_OP = 'INSERT' OR (NEW.eni_id, NEW.public_ip) IS DISTINCT FROM (OLD.eni_id, OLD.public_ip)) THEN
        UPDATE enis SET facts_version = nextval('eni_facts_seq') WHERE id = NEW.eni_id AND instance_id IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;
