-- 023_instances_type_change_since: when a ModifyInstanceAttribute instanceType asked the
-- network to hold the new type's interface limit (network.interface_limit_set, under the
-- number type_seq + 1), until it wrote the type. A change whose process died in between
-- leaves the mark: the reconcile pass takes that number for the instance's current type
-- (interface_limit.c), so the network's record of the change that was never written no
-- longer holds its attaches to the lower of the two limits.
ALTER TABLE instances ADD COLUMN type_change_since timestamptz;
CREATE INDEX instances_type_changing ON instances (type_change_since) WHERE type_change_since IS NOT NULL;
