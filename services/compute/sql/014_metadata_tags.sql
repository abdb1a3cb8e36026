-- 014_metadata_tags: an instance's tags in its metadata (RunInstances' MetadataOptions
-- InstanceMetadataTags, ModifyInstanceMetadataOptions): off unless turned on, as on AWS
-- (metadata_options.c); on, the metadata service serves /latest/meta-data/tags/instance.
--
-- public_changing_since: set when a stop or a start changes the instance's auto-assigned
-- public address (public_address_lifecycle.c), cleared by its public task once the
-- network has done it. Meanwhile (at most compute.public_address_wait_s) the metadata
-- service answers the instance 503, as if not up yet, so a guest booting after a start
-- reads its new public-ipv4, never none or the old one.
ALTER TABLE instances ADD COLUMN metadata_tags boolean NOT NULL DEFAULT false,
                      ADD COLUMN public_changing_since timestamptz;
-- the reconcile pass looks for marks whose task gave up (public_addresses_reconcile)
CREATE INDEX instances_public_changing ON instances (public_changing_since) WHERE public_changing_since IS NOT NULL;
