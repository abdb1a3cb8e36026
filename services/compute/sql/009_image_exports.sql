-- 009_image_exports: CreateImage's work on the instance's host (services/compute/create_image.c).
-- The image service's task (kind 'create') asks for an export with compute.image_export
-- (idempotent, keyed by the new image's id, with a fresh grant URL each time); the host's
-- agent pulls the pending exports of its host (compute.host_exports), writes the instance's
-- disk or root file system to the URL and reports (compute.export_done). Rows outlive any
-- process: a killed agent or compute finds the export still pending and does it again.
CREATE TABLE image_exports (
    image_id     text PRIMARY KEY,                -- the new ami-...
    account_id   char(12) NOT NULL,
    instance_id  text NOT NULL,
    host_id      text NOT NULL,
    driver       text NOT NULL,
    format       text NOT NULL,                   -- tar.gz (container) | qcow2 (qemu)
    url          text NOT NULL,                   -- PUT grant, renewed by every image_export
    no_reboot    boolean NOT NULL DEFAULT false,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    sha256       text NOT NULL DEFAULT '',
    size         bigint NOT NULL DEFAULT 0,
    error        text NOT NULL DEFAULT '',        -- "Code: message" when failed
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX image_exports_pending ON image_exports(host_id) WHERE state = 'pending';
