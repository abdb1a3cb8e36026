-- 011_public_addresses: instances' public addresses.
--
-- The public address of each interface as the network pushes it (its facts carry it since
-- network migration 011): public_ip, '' when none, and who owns it (public_ip_owner: the
-- account for an elastic IP, 'amazon' for one the launch assigned), which DescribeInstances
-- shows (ipAddress, each interface's association) and the metadata service serves
-- (public-ipv4).
ALTER TABLE network_enis ADD COLUMN public_ip text NOT NULL DEFAULT '',
                         ADD COLUMN public_ip_owner text NOT NULL DEFAULT '';

-- RunInstances' NetworkInterfaces AssociatePublicIpAddress as asked, for the launch task's
-- port_create: NULL when not given (the subnet's MapPublicIpOnLaunch decides).
ALTER TABLE instances ADD COLUMN associate_public_ip boolean;
