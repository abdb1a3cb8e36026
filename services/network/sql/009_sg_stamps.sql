-- 009_sg_stamps: what DescribeSecurityGroups shows of an account (its groups, their rules,
-- the groups' tags) gets a fingerprint that is cheap to read, so the network can keep the
-- listing it built and answer the next call from it while nothing changed
-- (security_groups.c, sg_cache.c). Every row of the three tables carries a stamp from one
-- sequence, new on every insert and update; a delete changes the count. The fingerprint is
-- the count and the XOR of the stamps' hashes per table: a concurrent transaction that
-- commits an older stamp after a newer one still changes it (a maximum would not), and no
-- lock is taken, so writers never wait for one another on it.
CREATE SEQUENCE sg_stamp_seq;

ALTER TABLE security_groups ADD COLUMN stamp bigint NOT NULL DEFAULT nextval('sg_stamp_seq');
ALTER TABLE sg_rules ADD COLUMN stamp bigint NOT NULL DEFAULT nextval('sg_stamp_seq');
ALTER TABLE tags ADD COLUMN stamp bigint NOT NULL DEFAULT nextval('sg_stamp_seq');

CREATE FUNCTION sg_stamp_renew() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.stamp := nextval('sg_stamp_seq');
    RETURN NEW;
END $$;

CREATE TRIGGER security_groups_stamp BEFORE UPDATE ON security_groups
    FOR EACH ROW EXECUTE FUNCTION sg_stamp_renew();
CREATE TRIGGER sg_rules_stamp BEFORE UPDATE ON sg_rules
    FOR EACH ROW EXECUTE FUNCTION sg_stamp_renew();
CREATE TRIGGER tags_stamp BEFORE UPDATE ON tags
    FOR EACH ROW EXECUTE FUNCTION sg_stamp_renew();
CREATE INDEX security_groups_account ON security_groups (account_id);
