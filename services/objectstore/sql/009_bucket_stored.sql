-- 009_bucket_stored: the bytes each bucket stores, next to the account's total in
-- stored (007), so that usage is billed per bucket (docs/usage.md).
--
-- bytes: every version of every object in the bucket plus the parts of its unfinished
-- uploads, and what writes in progress have reserved. Changed by the same statement
-- that changes the account's row (s3_usage.c), so the two never disagree by a write.
-- changes/changed_at: bumped by every charge and refund, so the recount (recount.c)
-- can tell that nothing wrote to the bucket while it listed the backend.
-- recounted_at: when the recount last set bytes from the backend's own listing (NULL:
-- never; first in line).
CREATE TABLE bucket_stored (
    bucket_id     text PRIMARY KEY,              -- buckets.id
    account_id    char(12) NOT NULL,
    bytes         bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    changes       bigint NOT NULL DEFAULT 0,
    changed_at    timestamptz NOT NULL DEFAULT '-infinity',
    recounted_at  timestamptz
);
CREATE INDEX bucket_stored_recount ON bucket_stored(recounted_at NULLS FIRST);
-- existing buckets start at 0 and are first in the recount's line
INSERT INTO bucket_stored (bucket_id, account_id) SELECT id, account_id FROM buckets;

-- storage_samples becomes per bucket: bucket names the bucket sampled (NULL: a sample
-- of the whole account, as 008 took them); one sample per bucket and hour.
ALTER TABLE storage_samples ADD COLUMN bucket text;
ALTER TABLE storage_samples DROP CONSTRAINT storage_samples_account_id_hour_key;
CREATE UNIQUE INDEX storage_samples_once ON storage_samples(account_id, coalesce(bucket, ''), hour);
