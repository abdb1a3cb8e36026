-- 015_facts_in_reply: compute's port_create and port_delete answer with the port's facts
-- (ports.c), which compute stores with the port in its own transaction, so the push of
-- the same change (migration 010) would be a second message to compute and a second
-- write there for every launch and every terminate. Such a transaction names its one
-- interface in the transaction-local setting virga.facts_replied (set_config(..., true)
-- in a statement it runs anyway: enis.c), and no push is sent for that interface; any
-- other interface the transaction changes (those a terminate detaches) is pushed as
-- before. A push that is not sent is still repaired by compute's pull if the answer is
-- lost (its digest differs), as a lost push is.
CREATE OR REPLACE FUNCTION eni_facts_notify() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    p text;
    id text := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    IF id = current_setting('virga.facts_replied', true) THEN
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
