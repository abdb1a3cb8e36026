-- 018_hosts_observed_seq: the sequence number of the last compute.instances_observed
-- applied for the host. The agent sends its reports one-way (no reply: one message on
-- the broker instead of two), so two of them may reach compute's workers in either
-- order; a report older than the last applied one is rolled back, never applied over a
-- newer one (it could take a guest just started for one that stopped).
ALTER TABLE hosts ADD COLUMN observed_seq bigint NOT NULL DEFAULT 0;
