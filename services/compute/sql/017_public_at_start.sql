-- 017_public_at_start: whether a start gives the instance an auto-assigned public address,
-- so that a stop and a start of an instance that has none (its subnet's
-- MapPublicIpOnLaunch off, AssociatePublicIpAddress false) queue no public task
-- (public_address_lifecycle.c). Set by each stop: true once the instance was seen holding a
-- public address at a stop (it stays true: a start that found the pool empty gets one at
-- the next start), false when its first stop found none; NULL (not known: an instance not
-- stopped since its launch, or stopped before its interfaces were made) queues the task.
ALTER TABLE instances ADD COLUMN public_at_start boolean;
