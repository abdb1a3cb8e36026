-- 003_image_tasks: what the image service does in the background, and what it learns.
--
-- RegisterImage, ImportImage and CopyImage answer at once and leave a task row; worker
-- threads (worker.c) claim rows with a lease, so a task whose worker died is taken over
-- when its lease runs out. Every step of a task can run again: its scratch files and its
-- object-store key are named by the task, the image row is written with ON CONFLICT.
ALTER TABLE images
    ADD COLUMN image_type   text NOT NULL DEFAULT 'machine' CHECK (image_type IN ('machine', 'kernel', 'ramdisk')),
    ADD COLUMN disk_format  text NOT NULL DEFAULT '',   -- raw, qcow2, vmdk, ..., tar.gz (container root fs), kernel, ramdisk
    ADD COLUMN sha256       text NOT NULL DEFAULT '',   -- of the bytes at location, checked by whoever fetches them
    ADD COLUMN state_reason text NOT NULL DEFAULT '',
    ADD COLUMN platform     text NOT NULL DEFAULT '';

CREATE TABLE image_tasks (
    id             text PRIMARY KEY,        -- import-ami-<hex> for ImportImage; the image id otherwise
    kind           text NOT NULL CHECK (kind IN ('register', 'import', 'copy')),
    account_id     char(12) NOT NULL,
    image_id       text NOT NULL,           -- the image it makes (chosen up front: steps are repeatable)
    source         jsonb NOT NULL,          -- {bucket, key, format} or {image_id, location, sha256}
    params         jsonb NOT NULL DEFAULT '{}',   -- architecture, platform, description, ...
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'deleting', 'deleted')),
    status_message text NOT NULL DEFAULT 'pending',
    progress       integer NOT NULL DEFAULT 0,
    result         jsonb NOT NULL DEFAULT '{}',   -- what the source turned out to be (format, size)
    client_token   text NOT NULL DEFAULT '',
    attempts       integer NOT NULL DEFAULT 0,
    lease_owner    text,
    lease_until    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX image_tasks_active ON image_tasks(created_at) WHERE status = 'active';
-- ClientToken makes ImportImage and CopyImage idempotent per account
CREATE UNIQUE INDEX image_tasks_token ON image_tasks(account_id, client_token) WHERE client_token <> '';
