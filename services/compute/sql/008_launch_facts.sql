-- 008_launch_facts: what RunInstances needs from other services, kept in compute so the
-- handler never waits on another service (services/compute/launch_facts.c). Rows are
-- answers of image.fetch_url and identity.quota_get, fetched by compute's own refresher
-- thread and refreshed on events (image.changed, identity.changed) and when they age.
CREATE TABLE launch_images (
    account_id  char(12) NOT NULL,
    image_id    text NOT NULL,
    found       boolean NOT NULL,              -- launchable by the account
    facts       jsonb NOT NULL DEFAULT '{}',   -- fetch_url's answer without its grant URL
    code        text NOT NULL DEFAULT '',      -- the refusal (found = false)
    message     text NOT NULL DEFAULT '',
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, image_id)
);
CREATE INDEX launch_images_image ON launch_images(image_id);

CREATE TABLE account_quotas (
    account_id  char(12) PRIMARY KEY,
    quotas      jsonb NOT NULL,                -- identity.quota_get's "quotas"
    fetched_at  timestamptz NOT NULL DEFAULT now()
);

-- network.launch_check's answers (the subnet, VPC, zone and group ids a launch's
-- interface would get, or the EC2 refusal), per account and request (key: SHA-256 of it)
CREATE TABLE launch_networks (
    account_id  char(12) NOT NULL,
    key         char(64) NOT NULL,
    found       boolean NOT NULL,
    facts       jsonb NOT NULL DEFAULT '{}',
    code        text NOT NULL DEFAULT '',
    message     text NOT NULL DEFAULT '',
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);
