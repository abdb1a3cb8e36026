-- 002_buckets: bucket names, ownership and canned ACLs. Objects and their index live
-- in the storage backend (RADOS omap or a directory); the bucket id names them there.
CREATE TABLE buckets (
    name        text PRIMARY KEY,              -- global, as in S3
    id          text NOT NULL UNIQUE,          -- backend name: never reused
    account_id  char(12) NOT NULL,
    acl         text NOT NULL DEFAULT 'private' CHECK (acl IN ('private', 'public-read')),
    region      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX buckets_account ON buckets(account_id);
