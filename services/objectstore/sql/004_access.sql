-- 004_access: everything besides its owner that decides who may use a bucket, and the
-- bucket's own configuration. Each is written by one UPDATE of this row.
--   acl        grants [{"g": account id | AllUsers | AuthenticatedUsers | LogDelivery,
--              "p": READ | WRITE | READ_ACP | WRITE_ACP | FULL_CONTROL}] (was a canned name)
--   ownership  ObjectOwnership; NULL = none configured, which acts as ObjectWriter
--   policy     the bucket policy as the tenant sent it (JSON, at most 20 KB)
--   public_access_block  {"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
--              "RestrictPublicBuckets"} booleans
--   cors       CORS rules [{"id", "origins", "methods", "headers", "expose", "max_age"}]
--   tags       [{"Key", "Value"}]
ALTER TABLE buckets DROP CONSTRAINT IF EXISTS buckets_acl_check;
ALTER TABLE buckets ALTER COLUMN acl DROP DEFAULT;
ALTER TABLE buckets ALTER COLUMN acl TYPE jsonb USING
    jsonb_build_array(jsonb_build_object('g', account_id::text, 'p', 'FULL_CONTROL')) ||
    CASE acl WHEN 'public-read' THEN '[{"g": "AllUsers", "p": "READ"}]'::jsonb ELSE '[]'::jsonb END;
ALTER TABLE buckets ADD CONSTRAINT buckets_acl_grants
    CHECK (jsonb_typeof(acl) = 'array' AND jsonb_array_length(acl) <= 100);
ALTER TABLE buckets
    ADD COLUMN ownership text
        CHECK (ownership IN ('BucketOwnerEnforced', 'BucketOwnerPreferred', 'ObjectWriter')),
    ADD COLUMN policy text CHECK (octet_length(policy) <= 20480),
    ADD COLUMN public_access_block jsonb CHECK (jsonb_typeof(public_access_block) = 'object'),
    ADD COLUMN cors jsonb CHECK (jsonb_typeof(cors) = 'array' AND jsonb_array_length(cors) BETWEEN 1 AND 100),
    ADD COLUMN tags jsonb CHECK (jsonb_typeof(tags) = 'array' AND jsonb_array_length(tags) BETWEEN 1 AND 50);
