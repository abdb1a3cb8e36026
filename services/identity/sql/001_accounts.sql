-- 001_accounts: tenants, their users and access keys.
-- Secrets are stored only encrypted (libsodium secretbox under the master key file);
-- the plaintext leaves the service once, in the reply that creates the key.
CREATE TABLE accounts (
    id          char(12) PRIMARY KEY,            -- 12-digit AWS-style account id
    name        text NOT NULL UNIQUE,
    is_operator boolean NOT NULL DEFAULT false,  -- the operator account sees every tenant
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id          text PRIMARY KEY,                -- AIDA + 17 base32-ish chars
    account_id  char(12) NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        text NOT NULL,
    is_admin    boolean NOT NULL DEFAULT false,  -- account admins are allowed every action
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

CREATE TABLE access_keys (
    id          text PRIMARY KEY,                -- AKIA...
    user_id     text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_box  bytea NOT NULL,                  -- nonce || secretbox(secret)
    status      text NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Inactive')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_keys_user ON access_keys(user_id);
