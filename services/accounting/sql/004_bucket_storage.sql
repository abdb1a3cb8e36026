-- 004_bucket_storage: stored bytes are sampled per bucket (objectstore 009): a sample
-- with a bucket is a record of that bucket (resource_type 'bucket', resource_id the
-- bucket's name, as transfer.out); the per-account samples taken before (bucket NULL)
-- stay records of 's3:<account>'. The key carries the sample's seq, so the two kinds
-- of one hour never collide.
UPDATE feeds SET query = $q$
    SELECT xid, seq, CASE WHEN bucket IS NULL THEN 'storage' ELSE 'bucket' END AS resource_type,
           coalesce(bucket, 's3:' || account_id) AS resource_id, 0 AS resource_seq,
           'amount' AS action, account_id, ''::text AS user_id, 'storage.stored' AS usage_type, 's3' AS item,
           'byte-hour' AS unit, 0::numeric AS rate, bytes::numeric AS amount, 'private' AS cloud, ''::text AS zone,
           hour AS at, hour + interval '1 hour' AS until
    FROM objectstore.storage_samples $q$
WHERE log = 'objectstore.storage_samples';
