-- 015_network_enis_delete_on_termination: an attached interface's DeleteOnTermination, as
-- the network's facts now carry it (its migration 014), so DescribeInstances shows the
-- flag of each interface beyond the primary (the primary's is always true: it goes with
-- its instance).
ALTER TABLE network_enis ADD COLUMN delete_on_termination boolean NOT NULL DEFAULT false;
