-- 004_image_bytes_deleted: deregistered images whose bytes the image service stored
-- itself (imports and copies, in image.bucket) have them deleted by the reconcile pass
-- (cleanup.c); this records that it is done.
ALTER TABLE images ADD COLUMN bytes_deleted boolean NOT NULL DEFAULT false;
CREATE INDEX images_to_collect ON images(id) WHERE state = 'deregistered' AND NOT bytes_deleted;
