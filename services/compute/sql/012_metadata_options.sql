-- 012_metadata_options: an instance's own metadata options (RunInstances' MetadataOptions,
-- ModifyInstanceMetadataOptions). NULL: not set, the host's agent.metadata_tokens and
-- agent.metadata_hop_limit apply; the endpoint is on unless turned off.
ALTER TABLE instances ADD COLUMN metadata_tokens text CHECK (metadata_tokens IN ('optional', 'required')),
                      ADD COLUMN metadata_hop_limit int CHECK (metadata_hop_limit BETWEEN 1 AND 64),
                      ADD COLUMN metadata_endpoint_disabled boolean NOT NULL DEFAULT false;
