-- 012_public_ip_on_launch: an interface remembers that its launch gave it a public
-- address (the subnet's MapPublicIpOnLaunch, or RunInstances' AssociatePublicIpAddress),
-- so that when an elastic IP that replaced that address is disassociated from it (or
-- moved to another interface), it gets a new auto-assigned address from the pool, as on
-- AWS (public_addresses.c, addresses.c). An interface that was made without one
-- (CreateNetworkInterface, AssociatePublicIpAddress false) stays without.
-- last_public_ip is the auto-assigned address it had last: the new one is another
-- (AWS gives a new address, not the old one back) unless that is the pool's only free one.
ALTER TABLE enis ADD COLUMN public_ip_on_launch boolean NOT NULL DEFAULT false,
                 ADD COLUMN last_public_ip inet;

-- Interfaces made before this migration: those that still hold their auto-assigned
-- address had one at launch. (One whose address an elastic IP has already replaced
-- cannot be told apart: it gets no new address when that elastic IP goes.)
UPDATE enis n SET public_ip_on_launch = true, last_public_ip = a.public_ip
    FROM addresses a WHERE a.eni_id = n.id AND a.auto_assigned;
