-- 003_contacts: what S3 ACLs name an account by. An e-mail address (optional, set by the
-- operator: grants to AmazonCustomerByEmail resolve through it) and the canonical user
-- id, derived from the account id exactly as common/ids.c ids_canonical_user() does, so
-- other services compute it without asking and identity finds an account by it.
ALTER TABLE accounts ADD COLUMN email text UNIQUE
    CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1);
ALTER TABLE accounts ADD COLUMN canonical_id text
    GENERATED ALWAYS AS (encode(sha256(('virga-canonical-user:' || id)::bytea), 'hex')) STORED UNIQUE;
