-- 005_address_events: the ordered log of elastic IP events for billing (docs/usage.md):
-- allocated, associated, disassociated, released. Written by triggers on `addresses`, so
-- every path that changes an address (the handlers, a cascade) logs in its own
-- transaction and no handler needs to remember to. virga-accounting reads it with a
-- cursor on (xid, seq) (docs/accounting.md); address_seq numbers one address's events in
-- the order its row lock gave them.
ALTER TABLE addresses ADD COLUMN usage_seq integer NOT NULL DEFAULT 0;

CREATE TABLE address_events (
    seq           bigserial PRIMARY KEY,
    xid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    address_id    text NOT NULL,
    address_seq   integer NOT NULL,
    event         text NOT NULL CHECK (event IN ('allocated', 'associated', 'disassociated', 'released')),
    account_id    char(12) NOT NULL,
    public_ip     text NOT NULL,
    eni_id        text,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (address_id, address_seq)
);
CREATE INDEX address_events_cursor ON address_events(xid, seq);

CREATE FUNCTION address_usage_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.usage_seq := 1;
        INSERT INTO address_events (address_id, address_seq, event, account_id, public_ip)
        VALUES (NEW.id, 1, 'allocated', NEW.account_id, host(NEW.public_ip));
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.eni_id IS NOT DISTINCT FROM OLD.eni_id THEN
            RETURN NEW;
        END IF;
        NEW.usage_seq := OLD.usage_seq + 1;
        INSERT INTO address_events (address_id, address_seq, event, account_id, public_ip, eni_id)
        VALUES (NEW.id, NEW.usage_seq, CASE WHEN NEW.eni_id IS NULL THEN 'disassociated' ELSE 'associated' END,
                NEW.account_id, host(NEW.public_ip), NEW.eni_id);
        RETURN NEW;
    END IF;
    INSERT INTO address_events (address_id, address_seq, event, account_id, public_ip)
    VALUES (OLD.id, OLD.usage_seq + 1, 'released', OLD.account_id, host(OLD.public_ip));
    RETURN OLD;
END
$$;
CREATE TRIGGER addresses_usage BEFORE INSERT OR UPDATE OR DELETE ON addresses
    FOR EACH ROW EXECUTE FUNCTION address_usage_event();

-- A new event rings accounting's doorbell at commit (never for a rolled-back change).
CREATE FUNCTION usage_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('virga_usage_events', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER address_events_notify AFTER INSERT ON address_events
    FOR EACH STATEMENT EXECUTE FUNCTION usage_event_notify();
