-- 005_instances: instances, their reservations and interfaces, the console text the
-- agents report, compute's persistent tasks (common/task.h), and the host inventory the
-- scheduler places on (docs/compute.md).

-- The host registry grows what the scheduler needs, from compute.host_report's
-- inventory; `generation` counts changes to what the host should run (the agent's
-- compute.host_instances answer), bumped in the transaction that changes it.
ALTER TABLE hosts
    ADD COLUMN vcpus        integer NOT NULL DEFAULT 0,
    ADD COLUMN memory_mib   bigint NOT NULL DEFAULT 0,
    ADD COLUMN disk_gib     bigint NOT NULL DEFAULT 0,
    ADD COLUMN drivers      text[] NOT NULL DEFAULT '{}',
    ADD COLUMN zone         text NOT NULL DEFAULT '',
    ADD COLUMN labels       jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN state        text NOT NULL DEFAULT 'up' CHECK (state IN ('up', 'down')),
    ADD COLUMN generation   bigint NOT NULL DEFAULT 1,
    ADD COLUMN observed_at  timestamptz;          -- last compute.instances_observed

CREATE TABLE reservations (
    id            text PRIMARY KEY,                -- r-<17 hex>
    account_id    char(12) NOT NULL,
    owner_user    text NOT NULL DEFAULT '',
    client_token  text NOT NULL DEFAULT '',
    request_hash  text NOT NULL DEFAULT '',        -- of the parameters, for ClientToken reuse
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- ClientToken makes RunInstances idempotent per account
CREATE UNIQUE INDEX reservations_token ON reservations(account_id, client_token) WHERE client_token <> '';

CREATE TABLE instances (
    id             text PRIMARY KEY,               -- i-<17 hex>
    reservation_id text NOT NULL REFERENCES reservations(id),
    account_id     char(12) NOT NULL,
    owner_user     text NOT NULL DEFAULT '',
    launch_index   integer NOT NULL DEFAULT 0,
    image_id       text NOT NULL,
    kernel_id      text,
    ramdisk_id     text,
    image          jsonb NOT NULL DEFAULT '{}',    -- image.fetch_url's answers: {image, kernel?, ramdisk?}
    image_kind     text NOT NULL,                  -- container-rootfs | machine
    instance_type  text NOT NULL,
    vcpus          integer NOT NULL,
    memory_mib     bigint NOT NULL,
    disk_gib       bigint NOT NULL DEFAULT 1,
    state          text NOT NULL CHECK (state IN ('pending', 'running', 'stopping', 'stopped',
                                                  'shutting-down', 'terminated')),
    state_reason   text NOT NULL DEFAULT '',       -- "Code: message" (EC2 stateReason)
    transition     text NOT NULL DEFAULT '',       -- EC2 reason (StateTransitionReason)
    host_id        text REFERENCES hosts(host_id),
    zone           text NOT NULL DEFAULT '',
    driver         text NOT NULL DEFAULT '',
    prepared       boolean NOT NULL DEFAULT false, -- ports made: the host's agent is told of it
    changed_gen    bigint NOT NULL DEFAULT 0,      -- host generation of its last desired change
    reboot_seq     integer NOT NULL DEFAULT 0,
    key_name       text,
    user_data      text,                           -- base64, as given
    subnet_id      text,                           -- as asked (NULL: the default subnet)
    private_ip     text,                           -- as asked
    group_ids      jsonb NOT NULL DEFAULT '[]',    -- as asked, resolved names later
    client_token   text NOT NULL DEFAULT '',
    disable_api_termination boolean NOT NULL DEFAULT false,
    observed_power text NOT NULL DEFAULT '',
    observed_error text NOT NULL DEFAULT '',
    launch_time    timestamptz NOT NULL DEFAULT now(),
    terminated_at  timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX instances_account ON instances(account_id, id);
CREATE INDEX instances_host ON instances(host_id) WHERE state <> 'terminated';
CREATE INDEX instances_reservation ON instances(reservation_id);
CREATE INDEX instances_terminated ON instances(terminated_at) WHERE state = 'terminated';

-- The network ports of an instance (network.port_create's answers).
CREATE TABLE instance_interfaces (
    instance_id   text NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    device_index  integer NOT NULL,
    eni_id        text NOT NULL,
    subnet_id     text NOT NULL,
    vpc_id        text NOT NULL,
    mac           text NOT NULL,
    ip            text NOT NULL,
    prefix_len    integer NOT NULL,
    gateway       text NOT NULL,
    groups        jsonb NOT NULL DEFAULT '[]',     -- [{"groupId", "groupName"}]
    deleted       boolean NOT NULL DEFAULT false,  -- the port is gone (after termination)
    PRIMARY KEY (instance_id, device_index)
);
CREATE INDEX instance_interfaces_ip ON instance_interfaces(vpc_id, ip) WHERE NOT deleted;

-- The last console text the host's agent reported (GetConsoleOutput reads only this).
CREATE TABLE instance_console (
    instance_id   text PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE,
    output        text NOT NULL,                   -- base64 of the last <= 64 KiB
    seq           bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- compute's persistent work (common/task.h): launch:<instance>, cleanup:<instance>.
CREATE TABLE tasks (
    id           text PRIMARY KEY,
    kind         text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    lease_owner  text,
    lease_until  timestamptz,
    next_run_at  timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_due ON tasks(next_run_at, created_at) WHERE status = 'active';
