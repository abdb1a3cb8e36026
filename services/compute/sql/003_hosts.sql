-- 003_hosts: the host registry, as each host's agent reports it (compute.host_report).
-- The host id is the reporting agent's bus principal (agent-<host id>), never a field of
-- the report: an agent can only speak for its own host.
CREATE TABLE hosts (
    host_id      text PRIMARY KEY,
    inventory    jsonb NOT NULL DEFAULT '{}',
    reports      bigint NOT NULL DEFAULT 1,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now()
);
