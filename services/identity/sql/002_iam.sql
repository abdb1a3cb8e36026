-- 002_iam: IAM paths and passwords for users, inline user policies, account quotas.
ALTER TABLE users ADD COLUMN path text NOT NULL DEFAULT '/';
ALTER TABLE users ADD COLUMN password_hash text;          -- argon2id (libsodium crypto_pwhash_str)

CREATE TABLE user_policies (
    user_id     text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        text NOT NULL,
    document    text NOT NULL,                            -- the JSON as the tenant sent it
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, name)
);

-- Per-account overrides; a resource without a row uses the configured default
-- (quota.<resource>). Enforced by the services that own each resource.
CREATE TABLE quotas (
    account_id  char(12) NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    resource    text NOT NULL,
    max_value   bigint NOT NULL CHECK (max_value >= 0),
    PRIMARY KEY (account_id, resource)
);
