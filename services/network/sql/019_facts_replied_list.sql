-- 019_facts_replied_list: virga.facts_replied (migration 015, 017) names every interface
-- whose facts go back in the transaction's answer, comma-separated, not only one:
-- network.port_create_many (ports_many.c) answers a reservation's N ports in one
-- transaction, and without this each of them but the last would be pushed to compute
-- too (N - 1 messages and writes the batch is there to save) and bumped by its group's
-- and its public address's triggers. One interface (port_create, port_adopt,
-- port_delete) is the list of one, as before.
CREATE OR REPLACE FUNCTION eni_facts_replied(id text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(id = ANY (string_to_array(nullif(current_setting('virga.facts_replied', true), ''), ',')), false)
$$;

CREATE OR REPLACE FUNCTION eni_facts_notify() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    p text;
    id text := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    IF eni_facts_replied(id) THEN
        RETURN NULL;
    END IF;
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

CREATE OR REPLACE FUNCTION eni_groups_touch() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE enis SET facts_version = nextval('eni_facts_seq')
        WHERE id IN (SELECT DISTINCT eni_id FROM changed) AND instance_id IS NOT NULL AND NOT eni_facts_replied(id);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION address_eni_touch() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.eni_id IS NOT NULL AND NOT eni_facts_replied(OLD.eni_id) AND
       (TG_OP = 'DELETE' OR (NEW.eni_id, NEW.public_ip) IS DISTINCT FROM (OLD.eni_id, OLD.public_ip)) THEN
        UPDATE enis SET facts_version = nextval('eni_facts_seq') WHERE id = OLD.eni_id AND instance_id IS NOT NULL;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.eni_id IS NOT NULL AND NOT eni_facts_replied(NEW.eni_id) AND
       (TG_OP = 'INSERT' OR (NEW.eni_id, NEW.public_ip) IS DISTINCT FROM (OLD.eni_id, OLD.public_ip)) THEN
        UPDATE enis SET facts_version = nextval('eni_facts_seq') WHERE id = NEW.eni_id AND instance_id IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;
