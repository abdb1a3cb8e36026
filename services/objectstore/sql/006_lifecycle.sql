-- 006_lifecycle: a bucket's lifecycle rules and where the expiration pass has got to.
--   buckets.lifecycle  the rules (lifecycle.h describes one), as PutBucketLifecycleConfiguration
--                      stored them; NULL: no configuration
--   lifecycle_cursors  per bucket, the pass's position in the bucket's versions: after
--                      (key_marker, version_marker), with what it knew of key_marker's newer
--                      versions (carry); a pass that ends its budget mid-bucket resumes here,
--                      on whichever object-store instance runs next. Removed with its bucket.
ALTER TABLE buckets ADD COLUMN lifecycle jsonb
    CHECK (jsonb_typeof(lifecycle) = 'array' AND jsonb_array_length(lifecycle) BETWEEN 1 AND 1000);
CREATE TABLE lifecycle_cursors (
    bucket_id       text PRIMARY KEY REFERENCES buckets(id) ON DELETE CASCADE,
    key_marker      text NOT NULL DEFAULT '',
    version_marker  text,
    carry           jsonb,
    passed_at       timestamptz NOT NULL DEFAULT '-infinity'   -- last pass (whole or partial)
);
