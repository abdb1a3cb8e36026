-- 002_key_pairs: EC2 key pairs (public halves only: a created key's private half is
-- returned once and never stored) and the tags of compute's resources.
CREATE TABLE key_pairs (
    id           text PRIMARY KEY,                   -- key-<17 hex>
    account_id   char(12) NOT NULL,
    name         text NOT NULL,
    key_type     text NOT NULL CHECK (key_type IN ('rsa', 'ed25519')),
    fingerprint  text NOT NULL,
    public_key   text NOT NULL,                      -- OpenSSH line, for instance metadata
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

CREATE TABLE tags (
    resource_id  text NOT NULL,
    account_id   char(12) NOT NULL,
    key          text NOT NULL,
    value        text NOT NULL DEFAULT '',
    PRIMARY KEY (resource_id, key)
);
CREATE INDEX tags_account ON tags(account_id);
