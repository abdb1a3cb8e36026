-- 002_images: the image (AMI) registry. Image bytes live in the object store; a row
-- records where (bucket/key, as RegisterImage's ImageLocation) and what they were
-- (size and ETag when registered), who owns the image and who may launch it.
CREATE TABLE images (
    id                  text PRIMARY KEY,            -- ami-<17 hex>
    account_id          char(12) NOT NULL,
    name                text NOT NULL,
    description         text NOT NULL DEFAULT '',
    location            text NOT NULL,               -- bucket/key in the object store
    size                bigint NOT NULL,
    etag                text NOT NULL,
    architecture        text NOT NULL DEFAULT 'x86_64',
    kernel_id           text,
    ramdisk_id          text,
    root_device_name    text NOT NULL DEFAULT '/dev/sda1',
    virtualization_type text NOT NULL DEFAULT 'hvm',
    state               text NOT NULL DEFAULT 'available'
                        CHECK (state IN ('pending', 'available', 'failed', 'deregistered')),
    is_public           boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now()
);
-- names are unique per account among images not deregistered, as in EC2
CREATE UNIQUE INDEX images_account_name ON images(account_id, name) WHERE state <> 'deregistered';

CREATE TABLE launch_permissions (
    image_id    text NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    account_id  char(12) NOT NULL,
    PRIMARY KEY (image_id, account_id)
);

CREATE TABLE tags (
    resource_id  text NOT NULL,
    account_id   char(12) NOT NULL,
    key          text NOT NULL,
    value        text NOT NULL DEFAULT '',
    PRIMARY KEY (resource_id, key)
);
