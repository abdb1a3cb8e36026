-- 006_attachments: interfaces attached to a running instance after launch
-- (AttachNetworkInterface), and routes whose target is an interface.
--
-- An instance's interfaces: its primary (made by port_create, device_index 0) and those
-- attached later (device_index 1..15). parent_eni names the primary: an attached interface
-- lives in its primary's place on the host (the same namespace, as eth<device_index>), so
-- it follows the primary's host and plugged state. UNIQUE (instance_id, device_index)
-- makes two concurrent attaches at one index a clean error, not two interfaces.
ALTER TABLE enis ADD COLUMN device_index int CHECK (device_index BETWEEN 0 AND 15);
ALTER TABLE enis ADD COLUMN attachment_id text UNIQUE;
ALTER TABLE enis ADD COLUMN parent_eni text REFERENCES enis (id);
UPDATE enis SET device_index = 0, attachment_id = 'eni-attach-' || substr(id, 5) WHERE instance_id IS NOT NULL;
ALTER TABLE enis ADD CONSTRAINT enis_one_per_index UNIQUE (instance_id, device_index);
ALTER TABLE enis ADD CONSTRAINT enis_attached_whole
    CHECK ((instance_id IS NULL) = (device_index IS NULL));
CREATE INDEX enis_parent ON enis (parent_eni) WHERE parent_eni IS NOT NULL;

-- A route's target: 'local', an internet gateway id, or an interface id (eni-...: the
-- next hop is that interface's address; an InstanceId target is stored as the instance's
-- primary interface and shown with both ids, as EC2 does).
ALTER TABLE routes ADD COLUMN instance_id text;
