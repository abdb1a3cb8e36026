-- 013_launch_interfaces: the interfaces RunInstances gives an instance beyond its primary
-- (NetworkInterfaces, DeviceIndex 1..15: new ones, or existing ones by id), attached in
-- one transaction by network.launch_interfaces (attachments.c) like AttachNetworkInterface
-- does. delete_on_termination is EC2's attachment flag: when the instance's primary is
-- deleted (its termination, or a launch that failed), the attached interfaces that have it
-- are deleted with it and the others detached (available again). A new interface at
-- launch has it by default, an existing one and one attached later not; a detach clears
-- it. The primary itself is always deleted with its instance.
ALTER TABLE enis ADD COLUMN delete_on_termination boolean NOT NULL DEFAULT false;
