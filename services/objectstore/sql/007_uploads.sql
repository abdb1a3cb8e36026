-- 007_uploads: who started each multipart upload (S3 lets its initiator list and abort it
-- besides the bucket owner) and what its completion answered (a repeated
-- CompleteMultipartUpload answers the same while the object is still that upload's);
-- and the bytes each account stores, against its stored_bytes quota (s3_usage.c).
CREATE TABLE uploads (
    upload_id     text PRIMARY KEY,             -- the backend's id (32 hex)
    bucket_id     text NOT NULL,
    key           text NOT NULL,
    initiator     text,                         -- the account that created it (NULL: anonymous)
    initiator_arn text,                         -- the IAM user that did, NULL for the account itself
    created_at    timestamptz NOT NULL DEFAULT now(),
    result        jsonb                         -- after completion: {"etag", "vid", "xml"}
);
CREATE INDEX uploads_created ON uploads(created_at);
-- bytes: every version of every object in the account's buckets plus the parts of its
-- unfinished uploads, and what writes in progress have reserved; max_bytes: the quota
-- from identity as last asked (max_at), so that a write costs one UPDATE, not a bus call.
CREATE TABLE stored (
    account_id  char(12) PRIMARY KEY,
    bytes       bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    max_bytes   bigint NOT NULL,
    max_at      timestamptz NOT NULL
);
