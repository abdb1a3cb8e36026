-- 016_instances_primary_eni: an instance launched with an existing interface as its
-- primary (NetworkInterfaces DeviceIndex 0 with a NetworkInterfaceId) names it here; its
-- launch task adopts it (network.port_adopt) instead of making a port, and its cleanup
-- gives it back (network.port_delete detaches it: docs/compute.md). One instance not yet
-- terminated per interface: of two RunInstances naming the same interface, the second is
-- refused (InvalidNetworkInterface.InUse) by RunInstances itself (launch_network.c,
-- under the account's launch lock, which both take: an interface is one account's), and
-- this index is the last word if anything else gets there.
ALTER TABLE instances ADD COLUMN primary_eni text;
CREATE UNIQUE INDEX instances_primary_eni ON instances (primary_eni)
    WHERE primary_eni IS NOT NULL AND state <> 'terminated';
