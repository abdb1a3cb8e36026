-- 021_instances_type_seq: the number of the instance's type, one more at each
-- ModifyInstanceAttribute instanceType. The change asks the network to hold the new
-- type's interface limit under that number (network.interface_limit_set, network
-- migration 018) before it writes the type, and writes only if the number is still the
-- one it read (a concurrent change of the same instance is refused), so the network
-- always knows whether compute's answer of an instance's limit may be older than a
-- change in flight (interface_limit.c of both services).
ALTER TABLE instances ADD COLUMN type_seq bigint NOT NULL DEFAULT 0;
