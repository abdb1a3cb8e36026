-- 010_network_enis: what the network says of the interfaces attached to instances, kept
-- here so that DescribeInstances and DescribeInstanceAttribute sourceDestCheck read only
-- compute's own tables (network_enis.c). The network pushes each change after its commit
-- (compute.network_interfaces) and compute pulls the whole list when the digests differ.
--
-- One row per interface (an interface is attached to at most one instance). version is
-- the network's (its facts_version: larger for every later change of the interface), and
-- a row is only ever replaced by a larger one, so a push that arrives late never undoes
-- a newer one. A detached or deleted interface keeps its row with no instance (for an
-- hour, then it is purged) so that an older push cannot attach it again.
CREATE TABLE network_enis (
    eni_id        text PRIMARY KEY,
    instance_id   text,                            -- NULL: detached or deleted
    account_id    text NOT NULL DEFAULT '',
    device_index  integer,
    attachment_id text NOT NULL DEFAULT '',
    subnet_id     text NOT NULL DEFAULT '',
    vpc_id        text NOT NULL DEFAULT '',
    mac           text NOT NULL DEFAULT '',
    ip            text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    source_dest_check boolean NOT NULL DEFAULT true,
    groups        jsonb NOT NULL DEFAULT '[]',     -- [{"groupId", "groupName"}]
    attach_time   timestamptz,
    version       bigint NOT NULL,
    stored_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX network_enis_instance ON network_enis (instance_id, device_index) WHERE instance_id IS NOT NULL;
CREATE INDEX network_enis_gone ON network_enis (stored_at) WHERE instance_id IS NULL;
