-- 003_versioning: a bucket's S3 versioning state. NULL: never versioned (GetBucketVersioning
-- answers an empty configuration, writes replace the one "null" version); a bucket once
-- versioned is Enabled or Suspended and, as in S3, never unversioned again.
ALTER TABLE buckets ADD COLUMN versioning text CHECK (versioning IN ('Enabled', 'Suspended'));
