-- 005_task_uploads: multipart uploads a task started that may still exist in the object
-- store, [{"location": "bucket/key", "upload_id": "..."}]. A worker records an upload the
-- moment it is created; the reconcile pass aborts the uploads of tasks no worker runs any
-- more (ended, or whose lease ran out: the worker died) and clears the list, so a killed
-- image service leaves no upload behind for the object store's week-long stale limit.
ALTER TABLE image_tasks ADD COLUMN uploads jsonb NOT NULL DEFAULT '[]';
CREATE INDEX image_tasks_uploads ON image_tasks(id) WHERE uploads <> '[]';
