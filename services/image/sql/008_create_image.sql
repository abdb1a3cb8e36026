-- 008_create_image: CreateImage's task (kind 'create', services/image/create.c): the image
-- is made from an instance's disk, exported by its host's agent through compute.
ALTER TABLE image_tasks DROP CONSTRAINT image_tasks_kind_check;
ALTER TABLE image_tasks ADD CONSTRAINT image_tasks_kind_check CHECK (kind IN ('register', 'import', 'copy', 'create'));
