-- 006_task_next_run: image tasks run on the common task pool (common/task.h), which
-- delays a failed attempt by next_run_at (a backoff) instead of by holding its lease.
ALTER TABLE image_tasks ADD COLUMN next_run_at timestamptz NOT NULL DEFAULT now();
DROP INDEX IF EXISTS image_tasks_active;
CREATE INDEX image_tasks_active ON image_tasks(next_run_at, created_at) WHERE status = 'active';
