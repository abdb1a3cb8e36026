-- 007_image_storage_events: the ordered log of what each image stores over time, for
-- billing (docs/usage.md): 'stored' when an image becomes available or its size changes
-- (size = its bytes from then on), 'removed' when it stops being available
-- (deregistered, failed) or its row goes. Written by a trigger on `images`, so every path
-- (RegisterImage, the import pipeline, DeregisterImage) logs in its own transaction.
-- virga-accounting reads it with a cursor on (xid, seq) (docs/accounting.md).
ALTER TABLE images ADD COLUMN usage_seq integer NOT NULL DEFAULT 0;

CREATE TABLE image_storage_events (
    seq           bigserial PRIMARY KEY,
    xid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    image_id      text NOT NULL,
    image_seq     integer NOT NULL,
    event         text NOT NULL CHECK (event IN ('stored', 'removed')),
    account_id    char(12) NOT NULL,
    size          bigint NOT NULL,
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (image_id, image_seq)
);
CREATE INDEX image_storage_events_cursor ON image_storage_events(xid, seq);

CREATE FUNCTION image_storage_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was boolean := CASE WHEN TG_OP = 'INSERT' THEN false ELSE OLD.state = 'available' END;
    now_ boolean := CASE WHEN TG_OP = 'DELETE' THEN false ELSE NEW.state = 'available' END;
    ev text;
BEGIN
    IF now_ AND (NOT was OR (TG_OP = 'UPDATE' AND NEW.size <> OLD.size)) THEN
        ev := 'stored';
    ELSIF was AND NOT now_ THEN
        ev := 'removed';
    ELSE
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO image_storage_events (image_id, image_seq, event, account_id, size)
        VALUES (OLD.id, OLD.usage_seq + 1, ev, OLD.account_id, OLD.size);
        RETURN OLD;
    END IF;
    NEW.usage_seq := CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE OLD.usage_seq END + 1;
    INSERT INTO image_storage_events (image_id, image_seq, event, account_id, size)
    VALUES (NEW.id, NEW.usage_seq, ev, NEW.account_id, NEW.size);
    RETURN NEW;
END
$$;
CREATE TRIGGER images_usage BEFORE INSERT OR UPDATE OR DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION image_storage_event();

CREATE FUNCTION usage_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('virga_usage_events', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER image_storage_events_notify AFTER INSERT ON image_storage_events
    FOR EACH STATEMENT EXECUTE FUNCTION usage_event_notify();
