-- 007_hybrid: public cloud regions as hosts (docs/hybrid.md). A host of driver `ec2` is a
-- public EC2-compatible region: `cloud` names it (accounting's 006 adds the same column
-- with the same default; either order of merge works), `max_instances` is its instance
-- limit (0: none). An instance placed there keeps what its agent saw of the remote one.
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS cloud text NOT NULL DEFAULT 'private';
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS max_instances integer NOT NULL DEFAULT 0;
ALTER TABLE instances
    ADD COLUMN IF NOT EXISTS remote_id         text NOT NULL DEFAULT '',   -- the public cloud's instance id
    ADD COLUMN IF NOT EXISTS remote_public_ip  text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS remote_private_ip text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS remote_state      text NOT NULL DEFAULT '';  -- its EC2 state name there
