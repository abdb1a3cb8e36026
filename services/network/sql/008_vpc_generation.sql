-- 008_vpc_generation: a generation per VPC, grown in the same statement as the hosts'
-- (hosts_touch_vpc) by every change of what the datapath documents say about the VPC
-- (its subnets and routes, groups, rules, members, peers, gateway). The part of a host's
-- document that is the same on every host running the VPC is built once per VPC
-- generation and shared by those hosts (desired_vpc.c), instead of once per host.
ALTER TABLE vpcs ADD COLUMN generation bigint NOT NULL DEFAULT 1;

-- EC2's source/destination check of an interface (ModifyNetworkInterfaceAttribute
-- SourceDestCheck): on, the datapath drops what the interface sends from, or receives
-- for, an address not its own; off is what a NAT instance or a route's target needs.
ALTER TABLE enis ADD COLUMN source_dest_check boolean NOT NULL DEFAULT true;
